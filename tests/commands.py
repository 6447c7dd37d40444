"""The `gateway` command run as a subprocess, as a person runs it: `python -m gateway.cli ...`."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

# What `gateway merchants create` says when it has no database and no `gateway dev` runs beside it.
NO_DEV = "Set GATEWAY_DATABASE_URL, or run this beside a running `make dev` (gateway dev)."


def clean_env(**settings: str) -> dict[str, str]:
    """The environment without any gateway setting of the test process, plus `settings`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("GATEWAY_") and k not in ("DATABASE_URL", "REDIS_URL")
    }
    return env | settings


async def gateway_cli(
    cwd: Path, env: dict[str, str], *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Runs the command in `cwd` (an empty directory: no .env is read) off the event loop; `stdin` is
    what it reads there (nothing when None)."""

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gateway.cli", *args],
            env=env,
            cwd=cwd,
            input=stdin if stdin is not None else "",
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    return await asyncio.to_thread(run)
