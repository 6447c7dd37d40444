"""GET /v1/events: the same rows the state machines write, filtered, paged, tenant-scoped; and the
Redis fan-out that live streams read."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import orjson

from gateway.events.publisher import channel
from support import Gateway, Merchant


async def pay(client: httpx.AsyncClient, merchant: Merchant, method: str = "pm_success") -> dict[str, Any]:
    r = await client.post(
        "/v1/payments",
        json={"amount": 1200, "currency": "KES", "provider": "sandbox", "payment_method": method},
        headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())},
    )
    return dict(r.json() if r.status_code == 201 else r.json()["payment"])


async def test_events_list_filters_and_retrieve(
    client: httpx.AsyncClient, merchant: Merchant, other_merchant: Merchant
) -> None:
    ok = await pay(client, merchant)
    declined = await pay(client, merchant, "pm_card_declined")
    r = await client.post(
        f"/v1/payments/{ok['id']}/refunds",
        json={"amount": 200},
        headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert r.status_code == 201
    await pay(client, other_merchant)

    everything = (await client.get("/v1/events", headers=merchant.auth, params={"limit": 100})).json()
    assert [e["type"] for e in everything["data"]] == [
        "payment.partially_refunded",
        "refund.succeeded",
        "refund.created",
        "payment.failed",
        "payment.created",
        "payment.succeeded",
        "payment.created",
    ]
    ids = [e["id"] for e in everything["data"]]
    assert ids == sorted(ids, reverse=True)

    def types(params: dict[str, Any]) -> Any:
        return client.get("/v1/events", headers=merchant.auth, params={"limit": 100, **params})

    refunds_only = (await types({"type": "refund.*"})).json()["data"]
    assert [e["type"] for e in refunds_only] == ["refund.succeeded", "refund.created"]
    assert refunds_only[0]["data"]["object"]["object"] == "refund"
    exact = (await types({"type": "payment.failed,refund.created"})).json()["data"]
    assert [e["type"] for e in exact] == ["refund.created", "payment.failed"]
    of_payment = (await types({"payment": declined["id"]})).json()["data"]
    assert [e["type"] for e in of_payment] == ["payment.failed", "payment.created"]
    assert of_payment[0]["data"]["previous_status"] == "pending"
    assert of_payment[0]["data"]["object"]["status"] == "failed"

    one = await client.get(f"/v1/events/{ids[0]}", headers=merchant.auth)
    assert one.status_code == 200
    assert one.json() == everything["data"][0]
    hidden = await client.get(f"/v1/events/{ids[0]}", headers=other_merchant.auth)
    assert (hidden.status_code, hidden.json()["code"]) == (404, "resource_missing")
    theirs = (await client.get("/v1/events", headers=other_merchant.auth)).json()["data"]
    assert [e["type"] for e in theirs] == ["payment.succeeded", "payment.created"]

    bad = await client.get("/v1/events", headers=merchant.auth, params={"starting_after": ok["id"]})
    assert (bad.status_code, bad.json()["code"]) == (422, "invalid_cursor")


async def test_committed_events_are_published_to_redis(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    pubsub = gateway.ctx.redis.pubsub()
    await pubsub.subscribe(channel(merchant.id, False))
    try:
        await pubsub.get_message(timeout=1)  # the subscribe confirmation
        p = await pay(client, merchant)
        got: list[dict[str, Any]] = []
        deadline = asyncio.get_running_loop().time() + 5
        while len(got) < 2 and asyncio.get_running_loop().time() < deadline:
            msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
            if msg is not None:
                got.append(orjson.loads(msg["data"]))
        assert [(e["type"], e["data"]["object"]["id"]) for e in got] == [
            ("payment.created", p["id"]),
            ("payment.succeeded", p["id"]),
        ]
        stored = (await client.get(f"/v1/events/{got[1]['id']}", headers=merchant.auth)).json()
        assert stored == got[1]
    finally:
        await pubsub.unsubscribe()
        await pubsub.aclose()  # type: ignore[no-untyped-call]
