"""The fault suite's processes: its own PostgreSQL and Redis (the project's embedded launcher on a
temp directory, SIGKILLed, stopped and restarted on the same ports by the tests) and the gateway as
child processes (`gateway serve`, `gateway worker`), killed with SIGKILL."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

from gateway.db.database import Database
from gateway.embedded import EmbeddedServers, free_port
from gateway.merchants.service import create_merchant
from gateway.settings import DatabaseSettings
from support import PAYSTACK_SECRET_KEY, Merchant

# --- PostgreSQL and Redis ---------------------------------------------------------------------------


class FaultServers:
    """The suite's own servers. Blocking launcher calls run in a thread, so clients keep running."""

    def __init__(self, servers: EmbeddedServers):
        self.servers = servers

    @property
    def postgres_url(self) -> str:
        return self.servers.postgres.url

    @property
    def redis_url(self) -> str:
        return self.servers.redis.url

    @staticmethod
    def _alive(proc: subprocess.Popen[bytes] | None) -> bool:
        return proc is not None and proc.poll() is None

    async def kill_redis(self) -> None:
        """SIGKILL: no snapshot, no goodbye; the suite's Redis keeps nothing on disk anyway."""
        proc = self.servers.redis._proc
        assert proc is not None
        assert self._alive(proc)
        proc.send_signal(signal.SIGKILL)
        await asyncio.to_thread(proc.wait, 10)

    async def start_redis(self) -> None:
        await asyncio.to_thread(self.servers.redis.start)  # the same port as before

    async def stop_postgres(self) -> None:
        """PostgreSQL's fast shutdown: open transactions rolled back, every connection closed."""
        await asyncio.to_thread(self.servers.postgres.stop)

    async def start_postgres(self) -> None:
        await asyncio.to_thread(self.servers.postgres.start)

    async def ensure_up(self) -> None:
        """Both servers running, whatever the last test did to them."""
        if not self._alive(self.servers.postgres._proc):
            await self.start_postgres()
        if not self._alive(self.servers.redis._proc):
            await self.start_redis()


@contextlib.asynccontextmanager
async def database(url: str) -> AsyncIterator[Database]:
    """A short-lived pool: the suite's PostgreSQL restarts between uses."""
    db = await Database.connect(url, DatabaseSettings(pool_size=2))
    try:
        yield db
    finally:
        await db.close()


async def new_merchant(servers: FaultServers) -> Merchant:
    async with database(servers.postgres_url) as db:
        m = await create_merchant(db, "Fault suite merchant")
    return Merchant(m.merchant_id, m.secret_key)


# --- gateway processes ------------------------------------------------------------------------------


@dataclass
class GatewayProcess:
    """`gateway serve` (an API on `port`) or `gateway worker`, with its output appended to `log`."""

    command: str
    env: dict[str, str]
    log: Path
    port: int | None = None
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def base_url(self) -> str:
        assert self.port is not None
        return f"http://127.0.0.1:{self.port}"

    async def start(self, timeout: float = 60.0) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        env = dict(self.env)
        if self.port is not None:
            env |= {"GATEWAY_HOST": "127.0.0.1", "GATEWAY_PORT": str(self.port)}
        mark = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gateway.cli", self.command],
                env=env,
                cwd=self.log.parent,  # no .env or .data of the checkout is read
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.starts += 1
        deadline = time.monotonic() + timeout
        while not await self._ready(mark):
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"gateway {self.command} exited {self.proc.returncode}:\n{self.output()}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"gateway {self.command} not ready in {timeout:.0f}s:\n{self.output()}")
            await asyncio.sleep(0.05)

    async def _ready(self, mark: int) -> bool:
        if self.port is None:  # a worker: its runtime says so once its loops run
            return b"gateway_started" in self.log.read_bytes()[mark:]
        try:
            async with httpx.AsyncClient(timeout=1) as c:
                return (await c.get(f"{self.base_url}/healthz")).status_code == 200
        except httpx.TransportError:
            return False

    async def kill(self) -> None:
        """SIGKILL: no shutdown of any kind, as a crash or the OOM killer would leave it."""
        assert self.proc is not None
        assert self.proc.poll() is None
        self.proc.send_signal(signal.SIGKILL)
        await asyncio.to_thread(self.proc.wait, 10)

    async def stop(self) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.terminate()
        try:
            return await asyncio.to_thread(self.proc.wait, 30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            await asyncio.to_thread(self.proc.wait, 10)
            raise AssertionError(f"gateway {self.command} did not stop on SIGTERM") from None

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""

    def log_events(self, name: str) -> list[dict[str, Any]]:
        """The JSON log lines whose `event` is `name`."""
        lines = self.log.read_bytes().splitlines() if self.log.exists() else []
        found = []
        for line in lines:
            if line.startswith(b"{"):
                with contextlib.suppress(orjson.JSONDecodeError):
                    entry = orjson.loads(line)
                    if entry.get("event") == name:
                        found.append(entry)
        return found


@contextlib.asynccontextmanager
async def api_process(
    servers: FaultServers, log_dir: Path, paystack_url: str | None = None
) -> AsyncIterator[GatewayProcess]:
    """`gateway serve` on the suite's servers: Paystack at `paystack_url` (the stand-in) if given, the
    sandbox sending no webhooks, background loops elsewhere (a test that wants them starts
    `gateway worker`)."""
    paystack: dict[str, str] = {}
    if paystack_url is not None:
        paystack = {"PAYSTACK__BASE_URL": paystack_url, "PAYSTACK__TEST__SECRET_KEY": PAYSTACK_SECRET_KEY}
    env = gateway_env(
        servers,
        **paystack,
        PROVIDER_TIMEOUT_SECONDS="1",
        # A claim whose request died with its process blocks the key this long (the minimum).
        IDEMPOTENCY__LOCK_SECONDS="5",
        SANDBOX__SEND_WEBHOOKS="false",
        DELIVERY__RUN_IN_PROCESS="false",
        RECONCILER__RUN_IN_PROCESS="false",
        DELIVERY__ALLOW_PRIVATE_TARGETS="true",
    )
    process = GatewayProcess("serve", env, log_dir / "api.log", port=free_port())
    await process.start()
    try:
        yield process
    finally:
        if process.proc is not None and process.proc.poll() is None:
            process.proc.kill()
            await asyncio.to_thread(process.proc.wait, 10)


def gateway_env(servers: FaultServers, **settings: str) -> dict[str, str]:
    """The environment of a gateway process on the suite's servers; `settings` are GATEWAY_ names
    without the prefix (`PROVIDER_TIMEOUT_SECONDS="1"`)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env |= {
        "GATEWAY_DATABASE_URL": servers.postgres_url,
        "GATEWAY_REDIS_URL": servers.redis_url,
        "GATEWAY_ENVIRONMENT": "test",
        "GATEWAY_LOG_LEVEL": "INFO",
        "GATEWAY_LOG_JSON": "true",
        # The faults' loads run on one key each: rate limits on, never reached.
        "GATEWAY_RATE_LIMITS__TEST": "100000/second",
        "GATEWAY_RATE_LIMITS__FAILED_AUTH": "1000000/minute",
    }
    env |= {f"GATEWAY_{k}": v for k, v in settings.items()}
    return env
