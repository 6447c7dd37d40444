"""A refund and its payment are locked in one order (payment, then refund) by every caller, so the
reconciler, provider webhooks and the refund API racing on one payment never deadlock."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import httpx
import structlog

from gateway.reconciler.service import Reconciler
from gateway.settings import ReconcilerSettings
from support import Gateway, Merchant, others_wait, signed, wait_for, with_sandbox

ROUNDS = 200


def refund_webhook(refund: dict[str, Any]) -> bytes:
    """The sandbox's refund notification, as the provider would send it."""
    reference = "sbxre_" + refund["id"].split("_", 1)[1]
    return json.dumps(
        {
            "id": f"sbevt_{reference}_succeeded",
            "type": "refund.succeeded",
            "created": int(time.time()),
            "data": {
                "object": "refund",
                "reference": reference,
                "refund_id": refund["id"],
                "payment_id": refund["payment"],
                "status": "succeeded",
                "amount": refund["amount"],
                "currency": refund["currency"],
                "failure_code": None,
                "failure_message": None,
            },
        }
    ).encode()


async def deadlocks(gateway: Gateway) -> int:
    await gateway.scalar("SELECT pg_stat_force_next_flush()")
    return int(
        await gateway.scalar("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
    )


async def test_reconciler_webhooks_and_refund_api_racing_on_one_payment_never_deadlock(
    client: httpx.AsyncClient,
    gateway: Gateway,
    merchant: Merchant,
) -> None:
    async with with_sandbox(gateway, send_webhooks=False) as quiet:  # refunds stay pending until told
        await _race(quiet, client, gateway, merchant)


async def _race(
    quiet_client: httpx.AsyncClient, client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    async def post(path: str, body: dict[str, Any]) -> httpx.Response:
        return await quiet_client.post(
            path, json=body, headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())}
        )

    r = await post(
        "/v1/payments",
        {"amount": 3 * ROUNDS, "currency": "KES", "provider": "sandbox", "payment_method": "pm_refund_async"},
    )
    assert (r.status_code, r.json()["status"]) == (201, "succeeded")
    payment_id = r.json()["id"]
    refunds = []
    for _ in range(ROUNDS):
        r = await post(f"/v1/payments/{payment_id}/refunds", {"amount": 1})
        assert (r.status_code, r.json()["status"]) == (201, "pending")
        refunds.append(r.json())
    # Every pending refund is due, and old enough that the sandbox answers "succeeded" when asked.
    await gateway.execute(
        "UPDATE refunds SET next_reconcile_at = now() + interval '1 hour', "
        "created_at = created_at - interval '1 hour' WHERE payment_id = :p",
        p=payment_id,
    )
    await others_wait(gateway, payment_id)  # each round's reconciler asks about its refund only
    reconciler = Reconciler(
        gateway.ctx.db, gateway.ctx.registry, ReconcilerSettings(run_in_process=False, batch_size=1)
    )
    before = await deadlocks(gateway)

    with structlog.testing.capture_logs() as logs:
        for refund in refunds:
            await gateway.execute(
                "UPDATE refunds SET next_reconcile_at = now() WHERE id = :r", r=refund["id"]
            )
            body = refund_webhook(refund)
            asked, hooked, created = await asyncio.gather(
                reconciler.run_once(),  # locks the refund with its payment
                client.post("/v1/webhooks/sandbox", content=body, headers=signed(body)),  # the same refund
                post(f"/v1/payments/{payment_id}/refunds", {"amount": 1}),  # locks the payment
            )
            assert asked in (0, 1)  # 0: the webhook had already settled the refund
            assert hooked.status_code == 200
            assert (created.status_code, created.json()["status"]) == (201, "pending")

    async def all_processed() -> bool:
        n = await gateway.scalar(
            "SELECT count(*) FROM inbound_webhooks WHERE provider = 'sandbox' AND processed_at IS NOT NULL "
            "AND payload->'data'->>'payment_id' = :p",
            p=payment_id,
        )
        return bool(n == ROUNDS)

    await wait_for(all_processed, timeout=60)
    failures = [e for e in logs if e["log_level"] in ("error", "critical") or "deadlock" in str(e).lower()]
    assert failures == []
    outcomes = await gateway.scalar(
        "SELECT json_agg(DISTINCT coalesce(last_error, outcome)) FROM inbound_webhooks "
        "WHERE provider = 'sandbox' AND payload->'data'->>'payment_id' = :p",
        p=payment_id,
    )
    assert set(outcomes) <= {"processed", "no_change"}
    # Each raced refund succeeded once, and the payment counts each once.
    settled = await gateway.scalar(
        "SELECT count(*) FROM events WHERE type = 'refund.succeeded' AND payment_id = :p", p=payment_id
    )
    assert settled == ROUNDS
    payment = (await client.get(f"/v1/payments/{payment_id}", headers=merchant.auth)).json()
    assert (payment["status"], payment["amount_refunded"]) == ("partially_refunded", ROUNDS)
    assert await deadlocks(gateway) == before
