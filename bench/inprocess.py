"""The gateway's CPU per request in process: the app called over ASGI by 16 tasks, no HTTP server.

Not part of the product. For deciding small changes, which `make bench` cannot tell from its noise:
the process's CPU time per request (its asyncpg and redis-py clients included, PostgreSQL's and
Redis's own processes not), over three timed rounds after a warm-up. Run it before and after a
change, alternately, and compare the rounds:

    .venv/bin/python -m bench.inprocess get|list|create|webhook [seconds per round: 3]

`webhook`: the sandbox's signed webhooks (as bench/provider.py sends them) completing payments made
with `pm_action_success`, timed alone. `BENCH_CPROFILE=1` runs each round under cProfile and prints
its top functions (the rounds' figures then include its overhead); its per-call overhead inflates
small functions several times, so use it to find candidates and the plain rounds to judge them
(bench/README.md).
"""

from __future__ import annotations

import asyncio
import cProfile
import functools
import gc
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import uvloop

from bench.provider import signed_headers, webhook_for
from gateway.cli import run_migrations
from gateway.db.database import Database
from gateway.embedded import EmbeddedServers
from gateway.main import create_app
from gateway.merchants.service import create_merchant
from gateway.settings import DatabaseSettings, Settings

TASKS = 16
Headers = list[tuple[bytes, bytes]]


async def call(
    app: Any, method: str, path: str, headers: Headers, body: bytes = b"", query: bytes = b""
) -> tuple[int, bytes]:
    """One request through the app's ASGI interface: (status, body)."""
    sent = False
    out: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:  # after the body: wait as a client that says nothing more would
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        out.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": [*headers, (b"host", b"inprocess")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    await app(scope, receive, send)
    return out[0]["status"], b"".join(m.get("body", b"") for m in out[1:])


def _create_body(method: str) -> bytes:
    return orjson.dumps(
        {
            "amount": 2500,
            "currency": "KES",
            "provider": "sandbox",
            "payment_method": method,
            "customer": {"email": "jane@example.com", "phone": "+254700000001"},
        }
    )


async def _create(app: Any, auth: Headers, method: str) -> dict[str, Any]:
    headers = [
        *auth,
        (b"content-type", b"application/json"),
        (b"idempotency-key", os.urandom(8).hex().encode()),
    ]
    status, body = await call(app, "POST", "/v1/payments", headers, _create_body(method))
    if status != 201:
        raise RuntimeError(f"create: {status} {body!r}")
    answer: dict[str, Any] = orjson.loads(body)
    return answer


def _report(kind: str, rounds: list[tuple[float, int]]) -> None:
    for cpu, n in rounds:
        print(f"{kind}: {cpu / n * 1e6:.1f} µs CPU per request over {n}", flush=True)


async def _timed(requests: list[Callable[[], Awaitable[None]]]) -> tuple[float, int]:
    """CPU seconds to run `requests` on TASKS tasks."""
    gc.collect()
    started = time.process_time()

    async def worker(w: int) -> None:
        for request in requests[w::TASKS]:
            await request()

    if os.environ.get("BENCH_CPROFILE"):
        profile = cProfile.Profile()
        profile.enable()
        await asyncio.gather(*(worker(w) for w in range(TASKS)))
        profile.disable()
        pstats.Stats(profile).sort_stats("tottime").print_stats(40)
    else:
        await asyncio.gather(*(worker(w) for w in range(TASKS)))
    return time.process_time() - started, len(requests)


async def _reads(app: Any, auth: Headers, kind: str, seconds: float) -> None:
    ids = [(await _create(app, auth, "pm_success"))["id"] for _ in range(20)]

    async def get(i: int) -> None:
        status, body = await call(app, "GET", f"/v1/payments/{ids[i % len(ids)]}", auth)
        if status != 200:
            raise RuntimeError(f"get: {status} {body!r}")

    async def page(i: int) -> None:
        status, body = await call(app, "GET", "/v1/payments", auth, query=b"limit=10&status=succeeded")
        if status != 200:
            raise RuntimeError(f"list: {status} {body!r}")

    async def create(i: int) -> None:
        await _create(app, auth, "pm_success")

    one = {"get": get, "list": page, "create": create}[kind]
    # How many fit in `seconds`, from a warm-up; then that many per round.
    started, n = time.perf_counter(), 0
    while time.perf_counter() - started < seconds / 3:
        await asyncio.gather(*(one(n + w) for w in range(TASKS)))
        n += TASKS
    count = int(n * 3)
    rounds = [await _timed([functools.partial(one, i) for i in range(count)]) for _ in range(3)]
    _report(kind, rounds)


async def _webhooks(app: Any, auth: Headers, count: int) -> None:
    rounds = []
    for _ in range(3):
        payments = [await _create(app, auth, "pm_action_success") for _ in range(count)]
        requests: list[Callable[[], Awaitable[None]]] = []
        for p in payments:
            msg_id, body = webhook_for(p, "succeeded")
            headers = [(k.encode(), v.encode()) for k, v in signed_headers(msg_id, body).items()]

            async def deliver(body: bytes, headers: Headers) -> None:
                status, answer = await call(app, "POST", "/v1/webhooks/sandbox", headers, body)
                if status != 200:
                    raise RuntimeError(f"webhook: {status} {answer!r}")

            requests.append(functools.partial(deliver, body, headers))
        rounds.append(await _timed(requests))
    _report("webhook", rounds)


async def _run(servers: EmbeddedServers, kind: str, seconds: float) -> None:
    db = await Database.connect(servers.postgres.url, DatabaseSettings(pool_size=2))
    made = await create_merchant(db, "In-process bench")
    await db.close()
    settings = Settings(
        database_url=servers.postgres.url,
        redis_url=servers.redis.url,
        log_level="WARNING",
        # As the bench runs the gateway (bench/run.py): the limiter counts, the sandbox sends nothing.
        rate_limits={"test": "100000/second", "live": "100000/second"},
        sandbox={"send_webhooks": False},
    )
    app = create_app(settings)
    auth = [(b"authorization", b"Bearer " + made.secret_key.encode())]
    async with app.router.lifespan_context(app):
        if kind == "webhook":
            await _webhooks(app, auth, int(1500 * seconds))
        else:
            await _reads(app, auth, kind, seconds)


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[1] not in ("get", "list", "create", "webhook"):
        print(__doc__)
        return 2
    seconds = float(argv[2]) if len(argv) > 2 else 3.0
    with (
        tempfile.TemporaryDirectory(prefix="gateway-inprocess-", ignore_cleanup_errors=True) as scratch,
        EmbeddedServers(Path(scratch) / "servers", ephemeral=True) as servers,
    ):
        run_migrations(servers.postgres.url)
        uvloop.run(_run(servers, argv[1], seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
