"""The image's HEALTHCHECK, run as the Dockerfile writes it, follows GATEWAY_PORT.

(hadolint and the Compose schema check run in `make check-container`; no Docker engine is needed.)
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.embedded import free_port
from support import Gateway

DOCKERFILE = Path(__file__).parents[1] / "Dockerfile"


def healthcheck() -> list[str]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    found = re.search(r"^HEALTHCHECK .*?\bCMD (\[.*\])$", text, re.M)
    assert found, "no HEALTHCHECK CMD in exec form"
    command: list[str] = json.loads(found.group(1))
    return command


@pytest.mark.parametrize("serving", [True, False])
async def test_the_healthcheck_asks_the_port_the_gateway_serves_on(gateway: Gateway, serving: bool) -> None:
    port = gateway.base_url.rsplit(":", 1)[1] if serving else str(free_port())
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")} | {"GATEWAY_PORT": port}
    command = healthcheck()
    assert command[0] == "python"
    r = await asyncio.to_thread(
        subprocess.run, [sys.executable, *command[1:]], env=env, capture_output=True, text=True, timeout=30
    )
    if serving:
        assert (r.returncode, r.stderr) == (0, "")
    else:
        assert r.returncode == 1
        assert "Connection refused" in r.stderr
