"""A payout's life on the sandbox: answered at once, settled later by the provider's webhook or by the
reconciler's question, never sent twice (a timeout or an error leaves it pending, never resubmitted);
every move is a payout.* event, delivered to the merchant's endpoints like any other."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import orjson
from standardwebhooks.webhooks import Webhook

from gateway.reconciler.service import Reconciler
from gateway.settings import PayoutSettings, ReconcilerSettings
from payouts.helpers import (
    PENDING_THEN_FAILS,
    PENDING_THEN_SUCCEEDS,
    PROVIDER_ERROR,
    STAYS_PENDING,
    SUCCEEDS,
    TIMES_OUT,
    body,
    create,
    created,
    key,
    payout_events,
    unsubmitted,
)
from receiver import running_receiver
from support import Gateway, Merchant, signed, wait_for, with_sandbox


def reconciler(gateway: Gateway, **payouts: Any) -> Reconciler:
    ctx = gateway.ctx
    return Reconciler(
        ctx.db,
        ctx.registry,
        ReconcilerSettings(run_in_process=False),
        PayoutSettings(**payouts) if payouts else ctx.settings.payouts,
    )


async def make_due(gateway: Gateway, payout_id: str, age_seconds: float = 0) -> None:
    """Time passes: the payout's next question is now, and it was submitted `age_seconds` ago."""
    await gateway.execute(
        "UPDATE payouts SET next_reconcile_at = now(), "
        "submitted_at = submitted_at - make_interval(secs => :a), "
        "created_at = created_at - make_interval(secs => :a) "
        "WHERE id = :id",
        id=payout_id,
        a=float(age_seconds),
    )


async def status(gateway: Gateway, payout_id: str) -> str:
    s: str = await gateway.scalar("SELECT status FROM payouts WHERE id = :id", id=payout_id)
    return s


async def test_a_timeout_leaves_the_payout_pending_never_sent_again_and_the_reconciler_settles_it(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    calls = gateway.calls("sandbox.create_payout")
    headers = key()
    r = await create(client, merchant, body(TIMES_OUT), headers)
    assert r.status_code == 201, r.text
    p = r.json()
    assert (p["status"], p["provider_reference"]) == ("pending", None)
    assert p["submitted_at"] is not None
    # The merchant retries: the same payout, and the provider is not asked again.
    await gateway.ctx.redis.flushdb()
    again = await create(client, merchant, body(TIMES_OUT), headers)
    assert (again.status_code, again.json()["id"], again.json()["status"]) == (201, p["id"], "pending")
    assert gateway.calls("sandbox.create_payout") == calls + 1

    fetches = gateway.calls("sandbox.fetch_payout")
    await make_due(gateway, p["id"], age_seconds=120)
    await reconciler(gateway).run_once()
    assert gateway.calls("sandbox.fetch_payout") == fetches + 1
    assert gateway.calls("sandbox.create_payout") == calls + 1
    done = (await client.get(f"/v1/payouts/{p['id']}", headers=merchant.auth)).json()
    assert (done["status"], done["provider_reference"]) == ("succeeded", "sbxpo_" + p["id"][3:])
    assert await payout_events(gateway, p["id"]) == [
        ("payout.created", "api"),
        ("payout.succeeded", "reconciler"),
    ]


async def test_a_payout_the_provider_never_received_fails_and_gives_its_amount_back(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    calls = gateway.calls("sandbox.create_payout")
    p = await created(client, merchant, body(PROVIDER_ERROR, amount=7_000))
    assert p["status"] == "pending"
    total = "SELECT total FROM payout_daily_totals WHERE merchant_id = :m"
    assert await gateway.scalar(total, m=merchant.id) == 7_000
    await make_due(gateway, p["id"], age_seconds=120)
    await reconciler(gateway).run_once()
    done = (await client.get(f"/v1/payouts/{p['id']}", headers=merchant.auth)).json()
    assert (done["status"], done["failure_code"]) == ("failed", "provider_not_found")
    assert await gateway.scalar(total, m=merchant.id) == 0
    assert gateway.calls("sandbox.create_payout") == calls + 1


async def test_a_payout_still_in_flight_stays_pending_and_is_asked_about_again_later(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    p = await created(client, merchant, body(STAYS_PENDING))
    await make_due(gateway, p["id"], age_seconds=120)
    await reconciler(gateway).run_once()
    assert await status(gateway, p["id"]) == "pending"
    due = await gateway.scalar(
        "SELECT next_reconcile_at > now() AND reconcile_attempts = 1 FROM payouts WHERE id = :id", id=p["id"]
    )
    assert due is True
    assert await payout_events(gateway, p["id"]) == [("payout.created", "api")]


async def test_the_providers_webhook_settles_a_pending_payout_and_the_merchant_hears_of_it(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    async with running_receiver() as rx:
        r = await client.post(
            "/v1/webhook-endpoints",
            json={"url": rx.url, "enabled_events": ["payout.*"]},
            headers=merchant.auth,
        )
        assert r.status_code == 201, r.text
        secret = r.json()["secret"]
        p = await created(client, merchant, body(PENDING_THEN_SUCCEEDS))
        assert p["status"] == "pending"

        async def settled() -> bool:
            return await status(gateway, p["id"]) == "succeeded" and len(rx.received) == 2

        await wait_for(settled)
    assert await payout_events(gateway, p["id"]) == [
        ("payout.created", "api"),
        ("payout.succeeded", "webhook"),
    ]
    by_type = {json.loads(x.body)["type"]: x for x in rx.received}
    assert sorted(by_type) == ["payout.created", "payout.succeeded"]
    event = Webhook(secret).verify(by_type["payout.succeeded"].body, by_type["payout.succeeded"].headers)
    obj = event["data"]["object"]
    assert (obj["id"], obj["object"], obj["status"]) == (p["id"], "payout", "succeeded")
    assert obj["destination"]["phone"] == "+254••••••111"  # masked in events too


async def test_a_failure_by_webhook_and_its_duplicate_move_the_payout_once(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    async with with_sandbox(gateway, send_webhooks=False) as quiet:
        r = await quiet.post(
            "/v1/payouts", json=body(PENDING_THEN_FAILS, amount=3_000), headers={**merchant.auth, **key()}
        )
        assert r.status_code == 201, r.text
    p = r.json()
    data: dict[str, Any] = {
        "object": "payout",
        "reference": p["provider_reference"],
        "payout_id": p["id"],
        "status": "failed",
        "amount": 3_000,
        "currency": "KES",
        "failure_code": "account_closed",
        "failure_message": "The recipient's account is closed.",
    }
    payload = {
        "id": f"sbevt_{uuid.uuid4().hex}",
        "type": "payout.failed",
        "created": 1,
        "data": data,
    }
    raw = orjson.dumps(payload)
    for _ in range(2):
        sent = await client.post("/v1/webhooks/sandbox", content=raw, headers=signed(raw))
        assert sent.status_code == 200, sent.text
    done = (await client.get(f"/v1/payouts/{p['id']}", headers=merchant.auth)).json()
    assert (done["status"], done["failure_code"]) == ("failed", "account_closed")
    assert await payout_events(gateway, p["id"]) == [("payout.created", "api"), ("payout.failed", "webhook")]
    # A late success about a failed payout is refused and recorded, never applied.
    late_payload = {
        **payload,
        "id": "sbevt_late",
        "type": "payout.succeeded",
        "data": {**data, "status": "succeeded"},
    }
    late = orjson.dumps(late_payload)
    assert (await client.post("/v1/webhooks/sandbox", content=late, headers=signed(late))).status_code == 200
    assert await status(gateway, p["id"]) == "failed"
    assert (await payout_events(gateway, p["id"]))[-1] == ("payout.transition_rejected", "webhook")


async def test_a_webhook_about_another_merchants_reference_or_an_unknown_payout_moves_nothing(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    raw = orjson.dumps(
        {
            "id": "sbevt_unknown",
            "type": "payout.succeeded",
            "created": 1,
            "data": {
                "object": "payout",
                "reference": "sbxpo_nothing",
                "payout_id": "po_nothing",
                "status": "succeeded",
                "amount": 1,
                "currency": "KES",
            },
        }
    )
    assert (await client.post("/v1/webhooks/sandbox", content=raw, headers=signed(raw))).status_code == 200
    outcome = await gateway.scalar(
        "SELECT outcome FROM inbound_webhooks "
        "WHERE provider = 'sandbox' AND provider_event_id = 'sbevt_unknown'"
    )
    assert outcome == "unmatched"


async def test_the_reconciler_cancels_a_payout_whose_request_died_before_sending_it(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    payout = await unsubmitted(gateway, merchant, body(SUCCEEDS, amount=2_500), str(uuid.uuid4()))
    calls = gateway.calls("sandbox.create_payout")
    await reconciler(gateway).run_once()  # too recent: left for the merchant's retry
    assert await status(gateway, payout.id) == "pending"
    await gateway.execute(
        "UPDATE payouts SET created_at = created_at - interval '1 hour' WHERE id = :id", id=payout.id
    )
    await reconciler(gateway, unsubmitted_cancel_after_seconds=900).run_once()
    assert await status(gateway, payout.id) == "canceled"
    assert await payout_events(gateway, payout.id) == [
        ("payout.created", "api"),
        ("payout.canceled", "reconciler"),
    ]
    assert gateway.calls("sandbox.create_payout") == calls
    total = await gateway.scalar(
        "SELECT total FROM payout_daily_totals WHERE merchant_id = :m", m=merchant.id
    )
    assert total == 0


async def test_a_live_key_never_pays_out_through_the_simulator(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    from provider_account_data import live_key

    live = await live_key(gateway, merchant)
    calls = gateway.calls("sandbox.create_payout")
    r = await client.post("/v1/payouts", json=body(), headers={**live, **key()})
    assert r.status_code == 422
    assert r.json()["code"] == "provider_not_configured"
    assert gateway.calls("sandbox.create_payout") == calls
