"""`gateway serve --host --port --workers` as a real process: the flags win over the environment, the
environment alone still works, and every worker's settings agree with the socket it serves on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from gateway.embedded import EmbeddedServers, free_port
from gateway.settings import Settings
from support import Merchant, wait_for


def children(pid: int) -> list[int]:
    found = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:  # the field after the state is the parent's pid
            found.append(int(stat_file.parent.name))
    return found


@pytest.mark.parametrize("how", ["flags-over-env", "env-only"])
async def test_serve_binds_where_it_is_told_with_the_workers_asked_for(
    servers: EmbeddedServers, merchant: Merchant, tmp_path: Path, how: str
) -> None:
    port, elsewhere = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_") and k != "WEB_CONCURRENCY"}
    env |= {
        "GATEWAY_DATABASE_URL": servers.postgres.url,
        "GATEWAY_REDIS_URL": servers.redis.url,
        "GATEWAY_LOG_LEVEL": "WARNING",
        "GATEWAY_RECONCILER__RUN_IN_PROCESS": "false",
        "GATEWAY_DELIVERY__RUN_IN_PROCESS": "false",
        # The sandbox reports the outcome to the gateway's own public URL, built from host and port.
        "GATEWAY_SANDBOX__ACTION_DELAY_SECONDS": "0.2",
    }
    if how == "flags-over-env":
        env |= {"GATEWAY_HOST": "127.0.0.2", "GATEWAY_PORT": str(elsewhere), "GATEWAY_WORKERS": "1"}
        args = ["--host", "127.0.0.1", "--port", str(port), "--workers", "2"]
    else:
        env |= {"GATEWAY_HOST": "127.0.0.1", "GATEWAY_PORT": str(port), "GATEWAY_WORKERS": "2"}
        args = []
    log = tmp_path / "serve.log"
    server = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "serve", *args], env=env, cwd=tmp_path, stderr=log.open("wb")
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as c:

            async def up() -> bool:
                assert server.poll() is None, log.read_text()
                try:
                    return (await c.get("/healthz")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_for(up, timeout=60)

            async def two_workers() -> bool:
                return len(workers(server.pid)) == 2

            await wait_for(two_workers, timeout=30)
            if how == "flags-over-env":
                with pytest.raises(httpx.ConnectError):
                    await c.get(f"http://127.0.0.2:{elsewhere}/healthz")

            created = await c.post(
                "/v1/payments",
                json={
                    "amount": 900,
                    "currency": "KES",
                    "provider": "sandbox",
                    "payment_method": "pm_action_success",
                },
                headers=merchant.auth | {"Idempotency-Key": str(uuid.uuid4())},
            )
            assert created.status_code == 201, created.text
            assert created.json()["status"] == "requires_action"

            async def settled() -> bool:
                r = await c.get(f"/v1/payments/{created.json()['id']}", headers=merchant.auth)
                return bool(r.json()["status"] == "succeeded")

            # Reached only if the worker that made the payment built its webhook URL from this port.
            await wait_for(settled, timeout=20)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    assert server.returncode == 0, log.read_text()


def workers(pid: int) -> list[int]:
    """uvicorn's worker processes under its supervisor (multiprocessing may add a resource tracker)."""
    return [p for p in children(pid) if b"resource_tracker" not in cmdline(p)]


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


async def test_serve_refuses_a_port_out_of_range(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "serve", "--port", "70000"],
        env={k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (r.returncode, r.stdout) == (2, "")
    assert "Invalid value for '--port'" in r.stderr


def test_workers_come_from_gateway_workers_or_uvicorns_web_concurrency(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("GATEWAY_WORKERS", raising=False)
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    assert Settings(_env_file=None).workers == 1
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    assert Settings(_env_file=None).workers == 3
    monkeypatch.setenv("GATEWAY_WORKERS", "4")
    assert Settings(_env_file=None).workers == 4
    monkeypatch.setenv("GATEWAY_WORKERS", "0")
    with pytest.raises(ValidationError, match="GATEWAY_WORKERS"):
        Settings(_env_file=None)
