"""Provider timeouts and a 5xx storm: one provider call per payment, then the provider's final word.

The Paystack stand-in takes every charge (half of them pay, half are declined) and then either
answers too late (the gateway waits 1 s) or answers 500, 502 and 503 in turn. The gateway answers
504 / 502 at once, leaves each payment pending and never charges twice. Then the reconciler
(`gateway worker`) settles the timed-out ones and `POST /sync` the 5xx ones, each with one verify;
the clients' retries of their keys get the settled payments back without a provider call.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import httpx

from faults.counting import Tally, ledger, report, until_final
from faults.peers import DECLINED_CARD, FakePaystack, paystack_reference
from faults.processes import FaultServers, GatewayProcess, database, gateway_env
from support import PAYSTACK_SECRET_KEY, Merchant, wait_for

TIMEOUTS = 10
STORM = 12


def body(n: int) -> dict[str, Any]:
    return {
        "amount": 5_000 + n,
        "currency": "NGN",
        "provider": "paystack",
        "payment_method": DECLINED_CARD if n % 2 else "AUTH_faultsuite05",
        "customer": {"email": "amina@example.com"},
    }


async def test_one_provider_call_per_payment_and_sync_or_the_reconciler_settles_them(
    merchant_client: httpx.AsyncClient,
    fault_servers: FaultServers,
    fault_merchant: Merchant,
    paystack: FakePaystack,
    tmp_path: Path,
) -> None:
    tally = Tally()
    no_retry: frozenset[int] = frozenset()  # each first answer is what is asserted

    async def create(n: int, key: str) -> httpx.Response:
        return await until_final(
            merchant_client, tally, "/v1/payments", key=key, body=body(n), retried=no_retry
        )

    keys = [f"provider-fault-{uuid.uuid4()}" for _ in range(TIMEOUTS + STORM)]
    paystack.mode, paystack.hold_seconds = "timeout", 2.5
    timed_out = await asyncio.gather(*(create(n, keys[n]) for n in range(TIMEOUTS)))
    paystack.mode = "error"
    stormed = await asyncio.gather(*(create(n, keys[n]) for n in range(TIMEOUTS, TIMEOUTS + STORM)))
    paystack.mode = "ok"

    assert [(r.status_code, r.json()["code"]) for r in timed_out] == [(504, "provider_timeout")] * TIMEOUTS
    assert [(r.status_code, r.json()["code"]) for r in stormed] == [(502, "provider_error")] * STORM
    assert tally.slowest < 3  # the provider timeout (1 s), not the provider's 2.5 s
    assert paystack.errors_sent == {500: 4, 502: 4, 503: 4}
    timeout_ids = [r.json()["payment"]["id"] for r in timed_out]
    storm_ids = [r.json()["payment"]["id"] for r in stormed]
    ids = timeout_ids + storm_ids
    references = [paystack_reference(i) for i in ids]
    async with database(fault_servers.postgres_url) as db:
        assert (await ledger(db, fault_merchant.id)).payments == {"pending": TIMEOUTS + STORM}

    # 5xx storm over: the merchant asks (sync), once per payment.
    synced = [await merchant_client.post(f"/v1/payments/{i}/sync") for i in storm_ids]
    assert [r.status_code for r in synced] == [200] * STORM
    expected = ["failed" if n % 2 else "succeeded" for n in range(TIMEOUTS + STORM)]
    assert [r.json()["status"] for r in synced] == expected[TIMEOUTS:]

    # Timeouts: the reconciler asks, in a `gateway worker`, once they are due (now, not in 120 s).
    env = gateway_env(
        fault_servers,
        PAYSTACK__BASE_URL=paystack.base_url,
        PAYSTACK__TEST__SECRET_KEY=PAYSTACK_SECRET_KEY,
        PROVIDER_TIMEOUT_SECONDS="1",
        RECONCILER__INTERVAL_SECONDS="0.2",
        DELIVERY__ALLOW_PRIVATE_TARGETS="true",
    )
    worker = GatewayProcess("worker", env, tmp_path / "worker.log")
    async with database(fault_servers.postgres_url) as db:
        await db.execute(
            "UPDATE payments SET next_reconcile_at = now() WHERE id = ANY($1::text[])", timeout_ids
        )
        await worker.start()
        try:

            async def settled() -> bool:
                return not await db.fetchval(
                    "SELECT count(*) FROM payments WHERE merchant_id = $1 AND status = 'pending'",
                    fault_merchant.id,
                )

            await wait_for(settled, timeout=30)
        finally:
            assert await worker.stop() == 0
        book = await ledger(db, fault_merchant.id)
        sources = dict(
            await db.fetch(
                "SELECT payment_id, source FROM events "
                "WHERE merchant_id = $1 AND previous_status IS NOT NULL",
                fault_merchant.id,
            )
        )

    # The clients retry their keys: the settled payments, replayed, nothing sent to the provider.
    again_tally = Tally()
    again = [
        await until_final(merchant_client, again_tally, "/v1/payments", key=k, body=body(n), retried=no_retry)
        for n, k in enumerate(keys)
    ]
    assert [r.status_code for r in again] == [402 if s == "failed" else 201 for s in expected]
    assert [r.json()["payment"]["id"] if r.status_code == 402 else r.json()["id"] for r in again] == ids
    assert again_tally.replayed == TIMEOUTS + STORM

    charges, verifies = paystack.count("charge"), paystack.count("verify")
    assert charges == dict.fromkeys(references, 1)  # one charge per payment, retries included
    assert verifies == dict.fromkeys(references, 1)  # one question per payment, then it is settled
    half = (TIMEOUTS + STORM) // 2
    assert book.payments == {"succeeded": half, "failed": half}
    assert book.events == {"payment.created": 2 * half, "payment.succeeded": half, "payment.failed": half}
    assert book.repeated_events == []
    assert [sources[i] for i in timeout_ids] == ["reconciler"] * TIMEOUTS
    assert [sources[i] for i in storm_ids] == ["sync"] * STORM
    report(
        "provider_timeouts_and_5xx_storm",
        payments=len(ids),
        first_answers={"504 provider_timeout": TIMEOUTS, "502 provider_error": STORM},
        provider_5xx_sent=dict(paystack.errors_sent),
        provider_charges=charges.total(),
        provider_verifies=verifies.total(),
        settled_by_reconciler=TIMEOUTS,
        settled_by_sync=STORM,
        final=dict(book.payments),
        events=sum(book.events.values()),
        retries_replayed=again_tally.replayed,
    )
