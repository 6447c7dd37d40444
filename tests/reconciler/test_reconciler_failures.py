"""The reconciler when the provider cannot answer, its doubling backoff, and its run loop.

Paystack stands in for any HTTP provider (respx answers as tests/drivers/paystack.py describes); the
reconciler under test is built on the session gateway's database and provider registry. Other
tests' unsettled rows are pushed a day ahead first, as tests/refunds/test_lock_order.py does, so each
round asks about this test's payment only.

The warning is read from a real `gateway worker` process's log (Paystack there is a local HTTP
server): in this process, structlog loggers cached before the last `configure_logging` (every
create_app calls it) keep their old processors, which structlog.testing.capture_logs cannot reach.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import respx
from starlette.responses import Response

from drivers.paystack import PaystackDriver, reference
from gateway.embedded import EmbeddedServers, free_port
from gateway.reconciler.service import Reconciler
from gateway.settings import ReconcilerSettings
from receiver import serving
from support import PAYSTACK_API, PAYSTACK_SECRET_KEY, Gateway, Merchant, others_wait, servers_env, wait_for

DRIVER = PaystackDriver()


def reconciler(gateway: Gateway, **settings: Any) -> Reconciler:
    return Reconciler(
        gateway.ctx.db, gateway.ctx.registry, ReconcilerSettings(run_in_process=False, **settings)
    )


async def waiting_payment(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, provider_http: respx.Router
) -> dict[str, Any]:
    """A Paystack payment waiting for its customer; it alone is due for a question."""
    DRIVER.mock_create(provider_http, "action")
    r = await client.post(
        "/v1/payments",
        json=DRIVER.create_body("action"),
        headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert (r.status_code, r.json()["status"]) == (201, "requires_action"), r.text
    p = dict(r.json())
    await others_wait(gateway, p["id"])
    await make_due(gateway, p["id"])
    return p


async def make_due(gateway: Gateway, payment_id: str) -> None:
    await gateway.execute("UPDATE payments SET next_reconcile_at = now() WHERE id = :p", p=payment_id)


async def reconcile_state(gateway: Gateway, payment_id: str) -> tuple[int, float]:
    """(reconcile_attempts, seconds from now to the next question)."""
    row = await gateway.scalar(
        "SELECT json_build_object('n', reconcile_attempts, "
        "'in', extract(epoch FROM next_reconcile_at - clock_timestamp())) FROM payments WHERE id = :p",
        p=payment_id,
    )
    return int(row["n"]), float(row["in"])


async def trail(client: httpx.AsyncClient, merchant: Merchant, payment_id: str) -> list[tuple[str, str]]:
    r = await client.get(f"/v1/payments/{payment_id}/events", headers=merchant.auth, params={"limit": 100})
    return [(e["type"], e["source"]) for e in reversed(r.json()["data"])]


def verify_route(provider_http: respx.Router, payment_id: str) -> respx.Route:
    return provider_http.get(f"{PAYSTACK_API}/transaction/verify/{reference(payment_id)}")


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(500, json={"status": False, "message": "An error occurred"}),
        httpx.Response(503, text="upstream connect error"),
        httpx.ReadTimeout("timed out"),
    ],
    ids=["500", "503", "timeout"],
)
async def test_a_provider_failure_leaves_the_payment_and_pushes_the_question_back(
    client: httpx.AsyncClient,
    gateway: Gateway,
    merchant: Merchant,
    provider_http: respx.Router,
    answer: httpx.Response | Exception,
) -> None:
    p = await waiting_payment(client, gateway, merchant, provider_http)
    route = verify_route(provider_http, p["id"])
    if isinstance(answer, Exception):
        route.mock(side_effect=answer)
    else:
        route.mock(return_value=answer)
    before = (await client.get(f"/v1/payments/{p['id']}", headers=merchant.auth)).json()

    asked = await reconciler(gateway, backoff_seconds=100, max_backoff_seconds=1_000).run_once()

    assert asked == 1
    assert route.call_count == 1
    after = (await client.get(f"/v1/payments/{p['id']}", headers=merchant.auth)).json()
    assert after == before  # nothing learned, nothing changed
    assert await trail(client, merchant, p["id"]) == [
        ("payment.created", "api"),
        ("payment.requires_action", "api"),
    ]
    attempts, wait = await reconcile_state(gateway, p["id"])
    assert attempts == 1
    assert 95 < wait <= 100  # the next question, a backoff away
    # Not due again yet: the next round leaves it (and the provider) alone.
    assert await reconciler(gateway, backoff_seconds=100, max_backoff_seconds=1_000).run_once() == 0
    assert route.call_count == 1


async def test_the_backoff_doubles_up_to_its_maximum(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, provider_http: respx.Router
) -> None:
    p = await waiting_payment(client, gateway, merchant, provider_http)
    route = verify_route(provider_http, p["id"]).respond(500, json={"status": False, "message": "down"})
    r = reconciler(gateway, backoff_seconds=10, max_backoff_seconds=70)
    waits = []
    for round_no in range(1, 7):
        assert await r.run_once() == 1
        attempts, wait = await reconcile_state(gateway, p["id"])
        assert attempts == round_no
        waits.append(wait)
        await make_due(gateway, p["id"])  # time passes
    assert route.call_count == 6
    expected = [10, 20, 40, 70, 70, 70]
    assert all(e - 5 < w <= e for w, e in zip(waits, expected, strict=True)), waits
    assert (await client.get(f"/v1/payments/{p['id']}", headers=merchant.auth)).json()["status"] == (
        "requires_action"
    )


async def test_run_asks_round_after_round_until_stopped_and_then_exits_promptly(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, provider_http: respx.Router
) -> None:
    p = await waiting_payment(client, gateway, merchant, provider_http)
    route = verify_route(provider_http, p["id"]).respond(500, json={"status": False, "message": "down"})
    # Rounds 50 ms apart; the payment is due again 20 ms after each question.
    r = reconciler(gateway, interval_seconds=0.05, backoff_seconds=0.01, max_backoff_seconds=0.02)
    stop = asyncio.Event()
    task = asyncio.create_task(r.run(stop))
    deadline = asyncio.get_running_loop().time() + 10
    while route.call_count < 3:
        assert not task.done()
        assert asyncio.get_running_loop().time() < deadline, "the loop did not keep asking"
        await asyncio.sleep(0.02)
    stop.set()
    await asyncio.wait_for(task, timeout=1)
    asked = route.call_count
    await asyncio.sleep(0.3)
    assert route.call_count == asked  # nothing after the stop
    assert (await reconcile_state(gateway, p["id"]))[0] == asked


async def test_stop_cuts_a_long_wait_between_rounds_short(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, provider_http: respx.Router
) -> None:
    p = await waiting_payment(client, gateway, merchant, provider_http)
    route = verify_route(provider_http, p["id"]).respond(500, json={"status": False, "message": "down"})
    r = reconciler(gateway, interval_seconds=3_600)
    stop = asyncio.Event()
    task = asyncio.create_task(r.run(stop))
    deadline = asyncio.get_running_loop().time() + 10
    while route.call_count < 1:  # the first round runs at once
        assert asyncio.get_running_loop().time() < deadline, "no first round"
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.1)
    assert not task.done()  # waiting for the next round, an hour away
    started = asyncio.get_running_loop().time()
    stop.set()
    await asyncio.wait_for(task, timeout=2)
    assert asyncio.get_running_loop().time() - started < 0.5
    assert route.call_count == 1


# --- the warning, from a `gateway worker` process ---------------------------------------------------


@dataclass
class LocalPaystack:
    """Paystack's verify endpoint on 127.0.0.1: 503 for one reference, no answer in time for another."""

    port: int
    unavailable: str = ""
    silent: str = ""
    asked: list[str] = field(default_factory=list)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        ref = scope["path"].rsplit("/", 1)[-1]
        self.asked.append(ref)
        if ref == self.silent:
            await asyncio.sleep(5)
        await Response(b"upstream connect error", status_code=503)(scope, receive, send)


@contextlib.asynccontextmanager
async def local_paystack() -> AsyncIterator[LocalPaystack]:
    app = LocalPaystack(free_port())
    async with serving(app, app.port, force_exit=True):
        yield app


async def test_a_worker_process_logs_each_provider_failure_once_as_a_warning(
    client: httpx.AsyncClient,
    gateway: Gateway,
    merchant: Merchant,
    provider_http: respx.Router,
    servers: EmbeddedServers,
    tmp_path: Path,
) -> None:
    down = await waiting_payment(client, gateway, merchant, provider_http)
    slow = await waiting_payment(client, gateway, merchant, provider_http)
    await make_due(gateway, down["id"])  # the second call pushed the first one a day ahead
    log_path = tmp_path / "worker.log"
    async with local_paystack() as paystack:
        paystack.unavailable, paystack.silent = reference(down["id"]), reference(slow["id"])
        env = {
            **os.environ,
            **servers_env(servers),
            "GATEWAY_LOG_LEVEL": "WARNING",
            "GATEWAY_LOG_JSON": "true",
            "GATEWAY_PAYSTACK__BASE_URL": f"http://127.0.0.1:{paystack.port}",
            "GATEWAY_PAYSTACK__TEST__SECRET_KEY": PAYSTACK_SECRET_KEY,
            "GATEWAY_PROVIDER_TIMEOUT_SECONDS": "0.5",
            "GATEWAY_RECONCILER__INTERVAL_SECONDS": "0.2",
            "GATEWAY_RECONCILER__BACKOFF_SECONDS": "100",
            "GATEWAY_DELIVERY__ALLOW_PRIVATE_TARGETS": "true",
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "worker"], env=env, stderr=log_path.open("wb")
        )
        try:

            async def warned() -> bool:
                return len(warnings(log_path)) >= 2

            await wait_for(warned, timeout=60)
            await asyncio.sleep(1.0)  # five more rounds: nothing more is asked or logged
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    assert proc.returncode == 0
    got = sorted((w["payment_id"], w["error"], w["level"]) for w in warnings(log_path))
    assert got == sorted(
        [(down["id"], "ProviderUnavailable", "warning"), (slow["id"], "ProviderTimedOut", "warning")]
    )
    assert sorted(paystack.asked) == sorted([reference(down["id"]), reference(slow["id"])])
    for p in (down, slow):
        after = (await client.get(f"/v1/payments/{p['id']}", headers=merchant.auth)).json()
        assert after["status"] == "requires_action"
        attempts, wait = await reconcile_state(gateway, p["id"])
        assert attempts == 1
        assert 90 < wait <= 100


def warnings(log_path: Path) -> list[dict[str, Any]]:
    lines = [orjson.loads(line) for line in log_path.read_bytes().splitlines() if line.startswith(b"{")]
    return [e for e in lines if e.get("event") == "reconcile_provider_failed"]
