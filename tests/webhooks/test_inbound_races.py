"""Deliveries that race for one payment, and the inline way that applies a notification that proves
itself: unlocked (a read, then a commit guarded by the row's version) where it can decide, else the
locking way, which it falls back to when the payment moved or the event was stored already. Each
result is applied once, each event stored once."""

from __future__ import annotations

import asyncio
import json

import httpx

from gateway.webhooks.inbound import service
from support import Gateway, Merchant, signed, wait_for
from webhooks.inbound_helpers import (
    create_waiting,
    inbox_count,
    outcomes,
    payment_state,
    sandbox_event,
    store_unprocessed,
)


async def test_a_copy_of_an_event_stored_but_not_processed_is_a_duplicate(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    """The provider sends again an event whose first delivery was stored and not processed yet (its
    inline attempt failed): the copy's unlocked commit meets the stored row (Conflict), the locking way
    drops it as a duplicate, and the stored one is applied once, by the sweeper."""
    p = await create_waiting(client, merchant)
    body = sandbox_event(p, "succeeded")
    payload = json.loads(body)
    await store_unprocessed(gateway, payload)

    again = await client.post("/v1/webhooks/sandbox", content=body, headers=signed(body))

    assert again.status_code == 200
    assert await payment_state(client, merchant, p["id"]) == ("requires_action", 2)  # nothing applied

    async def swept() -> bool:
        return (await payment_state(client, merchant, p["id"]))[0] == "succeeded"

    await wait_for(swept, timeout=15)
    assert await payment_state(client, merchant, p["id"]) == ("succeeded", 3)
    assert await inbox_count(gateway, p["id"]) == 1
    assert await outcomes(gateway, p["id"]) == ["processed"]


async def test_racing_events_of_one_result_move_the_payment_once(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    p = await create_waiting(client, merchant)
    bodies = [sandbox_event(p, "succeeded") for _ in range(12)]  # twelve event ids

    answers = await asyncio.gather(
        *(client.post("/v1/webhooks/sandbox", content=b, headers=signed(b)) for b in bodies)
    )

    assert [a.status_code for a in answers] == [200] * 12
    # Applied before the answers (a signed notification): created, requires_action, succeeded.
    assert await payment_state(client, merchant, p["id"]) == ("succeeded", 3)
    assert await outcomes(gateway, p["id"]) == ["no_change"] * 11 + ["processed"]


async def test_racing_copies_of_one_event_store_it_once(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    p = await create_waiting(client, merchant)
    body = sandbox_event(p, "succeeded", event_id="sbevt_race_" + p["id"])

    answers = await asyncio.gather(
        *(client.post("/v1/webhooks/sandbox", content=body, headers=signed(body)) for _ in range(12))
    )

    assert [a.status_code for a in answers] == [200] * 12
    assert await inbox_count(gateway, p["id"]) == 1
    assert await outcomes(gateway, p["id"]) == ["processed"]
    assert await payment_state(client, merchant, p["id"]) == ("succeeded", 3)


async def test_a_result_racing_another_result_applies_the_first_to_commit(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    """A success and a failure at once: whichever commits first wins, the other is refused by the
    state machine (a terminal payment does not move), and both events are stored with their outcome."""
    p = await create_waiting(client, merchant)
    bodies = [sandbox_event(p, "succeeded"), sandbox_event(p, "failed")]

    answers = await asyncio.gather(
        *(client.post("/v1/webhooks/sandbox", content=b, headers=signed(b)) for b in bodies)
    )

    assert [a.status_code for a in answers] == [200, 200]
    assert await outcomes(gateway, p["id"]) == ["no_change", "processed"]
    got = (await client.get(f"/v1/payments/{p['id']}", headers=merchant.auth)).json()
    trail = (await client.get(f"/v1/payments/{p['id']}/events", headers=merchant.auth)).json()["data"]
    loser = "failed" if got["status"] == "succeeded" else "succeeded"
    assert [e["type"] for e in reversed(trail)] == [
        "payment.created",
        "payment.requires_action",
        f"payment.{got['status']}",
        "payment.transition_rejected",
    ]
    assert trail[0]["data"]["object"]["rejected"] == {"target_status": loser, "reason": "illegal_transition"}


async def _unlocked(gateway: Gateway, body: bytes) -> str | None:
    """The inline webhook's unlocked way (`service._store_and_apply_unlocked`) on a signed sandbox
    notification, as `receive` calls it."""
    provider = gateway.ctx.registry.get("sandbox")
    assert provider is not None
    [event] = provider.verify_webhook(signed(body), body)
    return await service._store_and_apply_unlocked(
        gateway.ctx.db, provider, service.Source("sandbox", ""), event
    )


async def test_a_result_naming_its_reference_is_applied_the_unlocked_way(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    p = await create_waiting(client, merchant)

    assert await _unlocked(gateway, sandbox_event(p, "succeeded")) == "processed"

    assert await payment_state(client, merchant, p["id"]) == ("succeeded", 3)
    assert await outcomes(gateway, p["id"]) == ["processed"]
    attempts = await gateway.scalar(
        "SELECT attempts FROM inbound_webhooks WHERE payload->'data'->>'payment_id' = :p", p=p["id"]
    )
    assert attempts == 1


async def test_what_the_unlocked_way_cannot_decide_it_leaves_to_the_locking_way_unwritten(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    """No reference (found by the id it names), or a reference no payment holds now (an earlier
    attempt's, or none): nothing read as decided, nothing written."""
    p = await create_waiting(client, merchant)

    assert await _unlocked(gateway, sandbox_event(p, "succeeded", reference=None)) is None
    assert await _unlocked(gateway, sandbox_event(p, "succeeded", reference="sbx_no_such")) is None

    assert await inbox_count(gateway, p["id"]) == 0
    assert await payment_state(client, merchant, p["id"]) == ("requires_action", 2)
