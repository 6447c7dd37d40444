"""PostgreSQL restarted, then stopped for 5 s, while merchants create payments and refund others.

Requests are started at a steady pace over the whole window (the sandbox answers in process, so
PostgreSQL is the only thing in the way); each client retries its own key after Retry-After, as a
generated client would. The scenario runs once (module fixture); one test holds the books to the
cent after the retries, the other holds what the API said during the outage: 503
`service_unavailable` with Retry-After, quickly, and nothing else.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from faults.counting import ANSWER_BOUND, Ledger, Tally, ledger, merchant_client_of, report, until_final
from faults.processes import FaultServers, api_process, database, new_merchant
from gateway.embedded import EmbeddedServers

PAID = 30  # payments made before the faults, each then refunded in two parts during them
AMOUNT = 1_000
PARTS = (400, 600)
CREATES = 60
PACE = 0.08  # seconds between two requests' starts: 120 requests over ~10 s
OUTAGE = 5.0


def payment_body() -> dict[str, Any]:
    return {"amount": AMOUNT, "currency": "KES", "provider": "sandbox", "payment_method": "pm_success"}


@dataclass
class Outcome:
    tally: Tally  # every answer during the faults and the retries
    creates: list[httpx.Response]  # each create's final answer
    refunds: list[httpx.Response]
    paid: list[str]  # the payments refunded during the faults
    book: Ledger
    timeline: dict[str, float]


@pytest.fixture(scope="module")
async def outage(fault_servers_root: EmbeddedServers, tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    servers = FaultServers(fault_servers_root)
    await servers.ensure_up()
    merchant = await new_merchant(servers)
    log_dir: Path = tmp_path_factory.mktemp("postgres-outage")
    async with api_process(servers, log_dir) as api, merchant_client_of(api, merchant) as client:
        return await run_outage(client, servers, merchant.id)


async def run_outage(client: httpx.AsyncClient, servers: FaultServers, merchant_id: str) -> Outcome:
    setup = Tally()
    paid = []
    for _ in range(PAID):
        r = await until_final(client, setup, "/v1/payments", key=str(uuid.uuid4()), body=payment_body())
        assert (r.status_code, r.json()["status"]) == (201, "succeeded")
        paid.append(r.json()["id"])
    # Interleaved: a create, a refund, a create, a refund ...
    work: list[tuple[str, str, dict[str, Any]]] = []
    for i in range(CREATES):
        work.append(("/v1/payments", f"pg-create-{uuid.uuid4()}", payment_body()))
        payment, part = paid[i // 2], PARTS[i % 2]
        work.append((f"/v1/payments/{payment}/refunds", f"pg-refund-{uuid.uuid4()}", {"amount": part}))

    tally = Tally()

    async def send(n: int, url: str, key: str, body: dict[str, Any]) -> httpx.Response:
        await asyncio.sleep(n * PACE)
        return await until_final(client, tally, url, key=key, body=body, deadline=90)

    started = time.monotonic()
    load = asyncio.gather(*(send(n, *w) for n, w in enumerate(work)))
    timeline: dict[str, float] = {}

    def mark(name: str) -> None:
        timeline[name] = round(time.monotonic() - started, 1)

    try:
        await asyncio.sleep(1.5)
        mark("restart")
        await servers.stop_postgres()
        await servers.start_postgres()
        mark("restarted")
        await asyncio.sleep(1.5)
        mark("stop")
        await servers.stop_postgres()
        await asyncio.sleep(OUTAGE)
        await servers.start_postgres()
        mark("started")
    finally:
        await servers.ensure_up()
        answers = await load
    mark("all_answered")
    async with database(servers.postgres_url) as db:
        book = await ledger(db, merchant_id)
    return Outcome(tally, answers[0::2], answers[1::2], paid, book, timeline)


async def test_after_a_postgres_restart_and_outage_retried_keys_leave_exact_totals(outage: Outcome) -> None:
    tally, book = outage.tally, outage.book
    assert [r.status_code for r in outage.creates] == [201] * CREATES, tally.summary()
    assert {r.json()["status"] for r in outage.creates} == {"succeeded"}
    assert [r.status_code for r in outage.refunds] == [201] * CREATES, tally.summary()
    assert {r.json()["status"] for r in outage.refunds} == {"succeeded"}
    assert tally.slowest < ANSWER_BOUND  # no request hung: each was answered (or dropped) quickly
    assert not any(name.endswith("Timeout") for name in tally.transport_errors), tally.summary()

    assert book.payments == {"refunded": PAID, "succeeded": CREATES}
    assert book.keys_with_two_payments == 0
    assert book.refunds == {"succeeded": CREATES}
    assert all(book.amount_refunded[p] == AMOUNT for p in outage.paid)
    assert book.amount_refunded == book.refunded_by_refunds
    assert sum(book.amount_refunded.values()) == PAID * AMOUNT
    # One event per transition: each payment created and succeeded once, each refund created and
    # succeeded once, each refunded payment partially refunded once and then refunded once.
    assert book.events == {
        "payment.created": PAID + CREATES,
        "payment.succeeded": PAID + CREATES,
        "refund.created": CREATES,
        "refund.succeeded": CREATES,
        "payment.partially_refunded": PAID,
        "payment.refunded": PAID,
    }
    assert book.repeated_events == []
    report(
        "postgres_restart_and_5s_stop",
        timeline=outage.timeline,
        creates=CREATES,
        refunds=CREATES,
        requests=tally.sent,
        statuses=dict(tally.statuses),
        codes=dict(tally.codes),
        transport_errors=dict(tally.transport_errors),
        slowest_answer_s=round(tally.slowest, 2),
        payments=sum(book.payments.values()),
        refund_rows=sum(book.refunds.values()),
        amount_refunded=sum(book.amount_refunded.values()),
        events=sum(book.events.values()),
    )


async def test_during_a_postgres_restart_and_outage_the_api_answers_503_with_retry_after(
    outage: Outcome,
) -> None:
    tally = outage.tally
    assert tally.statuses[503] > 0, tally.summary()  # the outage was seen
    # 503 service_unavailable with Retry-After, or a key still held by its first request (409
    # idempotency_key_in_use, with Retry-After too); never a 500, never a dropped connection.
    assert set(tally.statuses) <= {201, 409, 503}, tally.summary()
    assert set(tally.codes) <= {"503 service_unavailable", "409 idempotency_key_in_use"}, tally.summary()
    assert tally.unavailable_without_retry_after == 0
    assert not tally.transport_errors, tally.summary()
