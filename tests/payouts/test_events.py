"""payout.* events in the merchant's event log and its live stream, as any event is."""

from __future__ import annotations

import httpx

from payouts.helpers import FAILS, SUCCEEDS, body, created
from sse import Stream
from support import Merchant


async def test_payout_events_are_in_the_event_log_with_the_masked_payout(
    client: httpx.AsyncClient, merchant: Merchant
) -> None:
    p = await created(client, merchant, body(FAILS))
    r = await client.get("/v1/events", headers=merchant.auth, params={"type": "payout.*"})
    assert r.status_code == 200
    events = r.json()["data"]
    assert [(e["type"], e["source"]) for e in events] == [("payout.failed", "api"), ("payout.created", "api")]
    failed = events[0]["data"]
    assert failed["previous_status"] == "pending"
    assert (failed["object"]["id"], failed["object"]["status"]) == (p["id"], "failed")
    assert failed["object"]["failure_code"] == "recipient_invalid"
    assert failed["object"]["destination"]["phone"] == "+254••••••222"
    one = await client.get(f"/v1/events/{events[1]['id']}", headers=merchant.auth)
    assert one.json()["data"]["object"]["status"] == "pending"


async def test_payout_events_reach_the_live_stream(client: httpx.AsyncClient, merchant: Merchant) -> None:
    async with client.stream(
        "GET", "/v1/events/stream", headers=merchant.auth, params={"type": "payout.*"}
    ) as r:
        stream = Stream(r)
        assert await stream.ready() == []
        p = await created(client, merchant, body(SUCCEEDS))
        got = await stream.events(2)
    assert [(m.data["type"], m.data["data"]["object"]["id"]) for m in got] == [
        ("payout.created", p["id"]),
        ("payout.succeeded", p["id"]),
    ]
