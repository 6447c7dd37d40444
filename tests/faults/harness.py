"""Real processes for the fault suite, and the counting it asserts on.

- `FaultServers`: the suite's own PostgreSQL and Redis (the project's embedded launcher on a temp
  directory), which tests SIGKILL, stop and restart on the same ports.
- `GatewayProcess`: `gateway serve` or `gateway worker` as a child process, killed with SIGKILL.
- `FakePaystack`: Paystack's charge and verify endpoints on 127.0.0.1, shaped as
  /work/shared/providers.md (and tests/drivers/paystack.py) describe them, counting every call per
  reference; it can answer late, not in time, or with 5xx, after it has taken the charge.
- `Tally` and `until_final`: a merchant's client that retries the same key on 503 (honouring
  Retry-After), 409 `idempotency_key_in_use` and a broken connection, and counts every answer.
- `ledger`: what PostgreSQL holds for one merchant, counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from drivers.paystack import charge_answer, transaction, verify_answer
from gateway.db.database import Database
from gateway.embedded import EmbeddedServers, free_port
from gateway.merchants.service import create_merchant
from gateway.settings import DatabaseSettings
from receiver import Received, serving
from support import PAYSTACK_SECRET_KEY, Merchant

# Every answer of the API must come within this (seconds): an outage is answered, never waited out.
ANSWER_BOUND = 10.0
# What a merchant's client retries with the same key; anything else is the request's answer.
RETRIED = frozenset({409, 500, 503})


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


@contextlib.asynccontextmanager
async def merchant_client_of(api: GatewayProcess, merchant: Merchant) -> AsyncIterator[httpx.AsyncClient]:
    """The merchant's client of the API process; every answer must come within ANSWER_BOUND."""
    limits = httpx.Limits(max_connections=50)
    async with httpx.AsyncClient(
        base_url=api.base_url, headers=merchant.auth, timeout=ANSWER_BOUND, limits=limits
    ) as c:
        yield c


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
    }
    env |= {f"GATEWAY_{k}": v for k, v in settings.items()}
    return env


# --- a provider on 127.0.0.1 ------------------------------------------------------------------------

DECLINED_CARD = "AUTH_declined0"  # the saved card FakePaystack declines; any other AUTH_ code pays


@dataclass
class FakePaystack:
    """Paystack's `POST /transaction/charge_authorization` and `GET /transaction/verify/{reference}`.

    A charge is taken (the transaction exists at Paystack) before anything is answered, as on the
    real service, where a timeout or a 5xx says nothing about whether the charge happened. A repeated
    reference is refused as Paystack refuses it ("Duplicate Transaction Reference"), so a second
    charge can never happen here: `charges` counts how often the gateway tried.

    `mode`: "ok" answers the charge after `answer_after` seconds; "timeout" answers after
    `hold_seconds` (longer than the gateway waits); "error" answers 500, 502 and 503 in turn.
    """

    port: int
    secret_key: str
    mode: str = "ok"
    answer_after: float = 0.0
    hold_seconds: float = 3.0
    transactions: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: Counter[tuple[str, str]] = field(default_factory=Counter)
    errors_sent: Counter[int] = field(default_factory=Counter)
    in_flight: int = 0  # charges taken and not answered yet

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def count(self, operation: str, references: Collection[str] | None = None) -> Counter[str]:
        """Calls of `operation` ("charge", "verify") per reference."""
        return Counter(
            {
                ref: n
                for (op, ref), n in self.calls.items()
                if op == operation and (references is None or ref in references)
            }
        )

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        path, method = scope["path"], scope["method"]
        if request.headers.get("authorization") != f"Bearer {self.secret_key}":
            status, answer = 401, {"status": False, "message": "Invalid key"}
        elif method == "POST" and path == "/transaction/charge_authorization":
            try:
                body = orjson.loads(await request.body())
            except ClientDisconnect:  # the gateway died while sending it: no charge was asked for
                return
            self.in_flight += 1
            try:
                reply = await self._charge(body)
            finally:
                self.in_flight -= 1
            if isinstance(reply, Response):
                await reply(scope, receive, send)
                return
            status, answer = reply
        elif method == "GET" and path.startswith("/transaction/verify/"):
            status, answer = self._verify(path.rsplit("/", 1)[-1])
        else:
            status, answer = 404, {"status": False, "message": "Not found"}
        await Response(orjson.dumps(answer), status, media_type="application/json")(scope, receive, send)

    async def _charge(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]] | Response:
        ref = body["reference"]
        self.calls["charge", ref] += 1
        if ref in self.transactions:
            return 400, {"status": False, "message": "Duplicate Transaction Reference"}
        declined = body["authorization_code"] == DECLINED_CARD
        tx = transaction(
            ref,
            body["amount"],
            body["currency"],
            "failed" if declined else "success",
            "Declined" if declined else "Successful",
        )
        self.transactions[ref] = tx  # taken: whatever reaches the gateway now, Paystack has it
        if self.mode == "timeout":
            await asyncio.sleep(self.hold_seconds)
        elif self.mode == "error":
            status = (500, 502, 503)[sum(self.errors_sent.values()) % 3]
            self.errors_sent[status] += 1
            if status == 500:
                return Response(b'{"status":false,"message":"An error occurred"}', 500)
            return Response(b"upstream connect error or disconnect/reset before headers", status)
        await asyncio.sleep(self.answer_after)
        return 200, charge_answer(tx)

    def _verify(self, ref: str) -> tuple[int, dict[str, Any]]:
        self.calls["verify", ref] += 1
        tx = self.transactions.get(ref)
        if tx is None:
            return 400, {"status": False, "message": "Transaction reference not found"}
        return 200, verify_answer(tx)


@contextlib.asynccontextmanager
async def fake_paystack(port: int, secret_key: str) -> AsyncIterator[FakePaystack]:
    app = FakePaystack(port, secret_key)
    async with serving(app, port, force_exit=True):  # a held charge does not hold the test's end
        yield app


# --- a merchant's webhook receiver -----------------------------------------------------------------


@dataclass
class HoldingReceiver:
    """A merchant's webhook endpoint on 127.0.0.1 that records every arrival as it comes in and,
    while `holding`, keeps its answer back until `release()`: deliveries stay in flight."""

    port: int
    arrivals: list[Received] = field(default_factory=list)
    held: list[str] = field(default_factory=list)  # webhook-ids of the deliveries held
    holding: bool = False
    _release: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def release(self) -> None:
        self.holding = False
        self._release.set()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        try:
            body = await request.body()
        except ClientDisconnect:  # the worker died mid-send: nothing arrived
            return
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.arrivals.append(Received(headers, body))
        if self.holding:
            self.held.append(headers["webhook-id"])
            await self._release.wait()
        await Response(b"ok", 200)(scope, receive, send)


@contextlib.asynccontextmanager
async def holding_receiver(port: int) -> AsyncIterator[HoldingReceiver]:
    app = HoldingReceiver(port)
    async with serving(app, port, force_exit=True):
        yield app


# --- a merchant's client ----------------------------------------------------------------------------


@dataclass
class Tally:
    """Every answer (and every broken connection) the clients got."""

    statuses: Counter[int] = field(default_factory=Counter)
    codes: Counter[str] = field(default_factory=Counter)  # problem codes, with their status
    transport_errors: Counter[str] = field(default_factory=Counter)
    unavailable_without_retry_after: int = 0
    replayed: int = 0
    slowest: float = 0.0

    @property
    def sent(self) -> int:
        return self.statuses.total() + self.transport_errors.total()

    def record(self, r: httpx.Response, seconds: float) -> None:
        self.statuses[r.status_code] += 1
        self.slowest = max(self.slowest, seconds)
        if r.headers.get("content-type", "").startswith("application/problem+json"):
            self.codes[f"{r.status_code} {r.json().get('code')}"] += 1
        if r.status_code == 503 and "retry-after" not in r.headers:
            self.unavailable_without_retry_after += 1
        if r.headers.get("idempotent-replayed") == "true":
            self.replayed += 1

    def summary(self) -> str:
        return (
            f"sent={self.sent} statuses={dict(sorted(self.statuses.items()))} codes={dict(self.codes)} "
            f"transport_errors={dict(self.transport_errors)} replayed={self.replayed} "
            f"slowest={self.slowest:.2f}s"
        )


async def until_final(
    client: httpx.AsyncClient,
    tally: Tally,
    url: str,
    *,
    key: str,
    body: dict[str, Any] | None = None,
    retried: Collection[int] = RETRIED,
    deadline: float = 60.0,
) -> httpx.Response:
    """POSTs with `key` until the answer is not one a client retries; the same key every time."""
    give_up = time.monotonic() + deadline
    while True:
        started = time.monotonic()
        wait = 0.1
        try:
            r = await client.post(url, json=body, headers={"Idempotency-Key": key})
        except httpx.TransportError as e:  # the API is down or the connection broke: retry
            tally.transport_errors[type(e).__name__] += 1
            tally.slowest = max(tally.slowest, time.monotonic() - started)
        else:
            tally.record(r, time.monotonic() - started)
            if r.status_code not in retried:
                return r
            with contextlib.suppress(ValueError):
                wait = float(r.headers.get("retry-after", wait))
        if time.monotonic() > give_up:
            raise AssertionError(f"{url} with key {key} did not finish in {deadline:.0f}s: {tally.summary()}")
        await asyncio.sleep(min(wait, 1.0))  # Retry-After, capped so the suite stays quick


def report(fault: str, **figures: object) -> None:
    """The figures of a fault, one line (shown with `pytest -s` or `-rP`; the closing note quotes them)."""
    print(f"FAULT {fault}: " + " ".join(f"{k}={v}" for k, v in figures.items()), flush=True)


def paystack_reference(payment_id: str) -> str:
    """The reference the gateway gives Paystack for a test-mode payment (docs/providers/paystack.md)."""
    prefix, body = payment_id.split("_", 1)
    return f"{prefix}-{body}-test"


# --- what PostgreSQL holds --------------------------------------------------------------------------


@dataclass
class Ledger:
    payments: Counter[str]  # by status
    refunds: Counter[str]  # by status
    events: Counter[str]  # by type
    # (type, object) pairs with more than one event: one transition, one event
    repeated_events: list[tuple[str, str, int]]
    keys_with_two_payments: int
    amount_refunded: dict[str, int]  # per payment
    refunded_by_refunds: dict[str, int]  # succeeded refunds' sum, per payment


async def ledger(db: Database, merchant_id: str) -> Ledger:
    payments = await db.fetch(
        "SELECT id, status, amount_refunded FROM payments WHERE merchant_id = $1", merchant_id
    )
    refunds = await db.fetch(
        "SELECT payment_id, status, amount FROM refunds WHERE merchant_id = $1", merchant_id
    )
    events = await db.fetch(
        "SELECT type, coalesce(refund_id, payment_id) AS object, count(*) AS n FROM events "
        "WHERE merchant_id = $1 GROUP BY 1, 2",
        merchant_id,
    )
    doubled = await db.fetchval(
        "SELECT count(*) FROM (SELECT idempotency_key FROM payments WHERE merchant_id = $1 "
        "GROUP BY 1 HAVING count(*) > 1) AS d",
        merchant_id,
    )
    by_refunds: Counter[str] = Counter()
    for r in refunds:
        if r["status"] == "succeeded":
            by_refunds[r["payment_id"]] += r["amount"]
    return Ledger(
        payments=Counter(p["status"] for p in payments),
        refunds=Counter(r["status"] for r in refunds),
        events=Counter({t: n for t, n in _sum_by_type(events).items()}),
        repeated_events=sorted((e["type"], e["object"], e["n"]) for e in events if e["n"] > 1),
        keys_with_two_payments=int(doubled),
        amount_refunded={p["id"]: p["amount_refunded"] for p in payments},
        refunded_by_refunds={p["id"]: by_refunds[p["id"]] for p in payments},
    )


def _sum_by_type(rows: list[Any]) -> Counter[str]:
    out: Counter[str] = Counter()
    for row in rows:
        out[row["type"]] += row["n"]
    return out
