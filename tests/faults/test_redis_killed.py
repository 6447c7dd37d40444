"""Redis SIGKILLed while merchants create payments: Redis is the fast path, PostgreSQL the guarantee.

The API (`gateway serve`) charges saved cards at a Paystack stand-in that counts every charge. Redis
dies a quarter of the way through a create loop and comes back empty (the suite's Redis keeps no
snapshot) after twenty more creates answered without it; then every key is sent again.
"""

from __future__ import annotations

import asyncio
import uuid

import httpx

from faults.counting import Tally, ledger, report, until_final
from faults.peers import FakePaystack, paystack_reference
from faults.processes import FaultServers, database
from support import Merchant, wait_for

N = 60
BODY = {
    "amount": 2_500,
    "currency": "NGN",
    "provider": "paystack",
    "payment_method": "AUTH_faultsuite01",
    "customer": {"email": "amina@example.com"},
}


async def test_no_duplicate_and_no_500_when_redis_is_killed_during_a_create_loop(
    merchant_client: httpx.AsyncClient,
    fault_servers: FaultServers,
    fault_merchant: Merchant,
    paystack: FakePaystack,
) -> None:
    paystack.answer_after = 0.02  # a provider round trip, so the loop spans the outage
    keys = [f"redis-kill-{uuid.uuid4()}" for _ in range(N)]
    tally = Tally()
    answered: list[str] = []
    gate = asyncio.Semaphore(6)

    async def create(key: str) -> httpx.Response:
        async with gate:
            r = await until_final(merchant_client, tally, "/v1/payments", key=key, body=BODY)
        answered.append(key)
        return r

    loop = asyncio.gather(*(create(k) for k in keys))

    async def answered_at_least(n: int) -> bool:
        return len(answered) >= n or loop.done()

    await wait_for(lambda: answered_at_least(N // 4), timeout=30)
    await fault_servers.kill_redis()
    killed_at = len(answered)
    await wait_for(lambda: answered_at_least(killed_at + 20), timeout=30)
    without_redis = len(answered) - killed_at
    await fault_servers.start_redis()
    first = await loop

    # Redis is back and empty: every key again, as clients that never saw their answer would.
    again_tally = Tally()
    again = await asyncio.gather(
        *(until_final(merchant_client, again_tally, "/v1/payments", key=k, body=BODY) for k in keys)
    )

    assert [r.status_code for r in first] == [201] * N, tally.summary()
    assert {r.json()["status"] for r in first} == {"succeeded"}
    ids = [r.json()["id"] for r in first]
    assert len(set(ids)) == N
    assert without_redis >= 20  # the fault landed mid-loop
    # No 500: a create without Redis either works (PostgreSQL holds the key) or is a 503.
    assert set(tally.statuses) <= {201, 503}, tally.summary()
    assert set(tally.codes) <= {"503 service_unavailable"}, tally.summary()
    assert tally.unavailable_without_retry_after == 0
    assert not tally.transport_errors, tally.summary()
    # The same keys after Redis returned: the same payments, replayed from PostgreSQL.
    assert [r.status_code for r in again] == [201] * N, again_tally.summary()
    assert [r.json()["id"] for r in again] == ids
    assert [r.headers.get("idempotent-replayed") for r in again] == ["true"] * N
    assert set(again_tally.statuses) == {201}, again_tally.summary()

    references = {paystack_reference(i) for i in ids}
    charges = paystack.count("charge")
    assert set(charges) == references
    assert set(charges.values()) == {1}  # one provider call per payment, replays included
    assert set(paystack.transactions) == references
    async with database(fault_servers.postgres_url) as db:
        book = await ledger(db, fault_merchant.id)
    assert book.payments == {"succeeded": N}
    assert book.keys_with_two_payments == 0
    assert book.events == {"payment.created": N, "payment.succeeded": N}
    assert book.repeated_events == []
    report(
        "redis_sigkill",
        keys=N,
        requests=tally.sent + again_tally.sent,
        answered_without_redis=without_redis,
        statuses=dict(tally.statuses),
        retry_statuses=dict(again_tally.statuses),
        replayed_first_pass=tally.replayed,
        payments=sum(book.payments.values()),
        events=sum(book.events.values()),
        provider_charges=charges.total(),
    )
