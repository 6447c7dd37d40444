"""Cash drawer sessions: open (one per drawer, also when opens race), read and list, replays,
validation, and the events every open and close appends."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import httpx
from standardwebhooks import Webhook

from auth.credentials import add_key
from cash_drawers.drawers import close_session, drawer_name, key, open_session, opened
from receiver import running_receiver
from support import Gateway, Merchant, assert_problem, wait_for

ID_RE = re.compile(r"^cds_[0-9a-hjkmnp-tv-z]{26}$")


async def sessions_of(gateway: Gateway, merchant: Merchant) -> int:
    return int(
        await gateway.scalar("SELECT count(*) FROM cash_sessions WHERE merchant_id = :m", m=merchant.id)
    )


async def key_id(gateway: Gateway, merchant: Merchant) -> str:
    found: str = await gateway.scalar("SELECT id FROM api_keys WHERE merchant_id = :m", m=merchant.id)
    return found


async def test_open_records_the_float_the_currency_and_who_opened_it(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    drawer = drawer_name()
    r = await open_session(
        client, merchant, drawer, opening_float=20_000, opened_by="Amina", metadata={"shift": "am"}
    )
    assert r.status_code == 201, r.text
    s = r.json()
    assert ID_RE.match(s["id"]), s["id"]
    assert {k: s[k] for k in ("object", "drawer", "status", "currency", "opening_float", "livemode")} == {
        "object": "cash_session",
        "drawer": drawer,
        "status": "open",
        "currency": "KES",
        "opening_float": 20_000,
        "livemode": False,
    }
    assert s["opened_by"] == {"api_key": await key_id(gateway, merchant), "name": "Amina"}
    assert s["closed_by"] is None
    assert s["closed_at"] is None
    assert [s[k] for k in ("counted", "payments_total", "refunds_total", "expected", "difference")] == [
        None
    ] * 5
    assert s["metadata"] == {"shift": "am"}
    got = await client.get(f"/v1/cash-drawers/{drawer}/sessions/{s['id']}", headers=merchant.auth)
    assert got.status_code == 200
    assert got.json() == s
    # An empty drawer may open: a float of 0.
    assert (await open_session(client, merchant, drawer_name(), opening_float=0)).status_code == 201


async def test_one_open_session_per_drawer(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, other_merchant: Merchant
) -> None:
    drawer = drawer_name()
    first = await opened(client, merchant, drawer)
    problem = assert_problem(await open_session(client, merchant, drawer), 409, "cash_session_already_open")
    assert problem["cash_session"] == first["id"]
    assert problem["param"] == "drawer"
    assert await sessions_of(gateway, merchant) == 1
    # Another drawer of the merchant, and the same name at another merchant, are other drawers.
    await opened(client, merchant, drawer_name())
    await opened(client, other_merchant, drawer)
    # Closed, the drawer opens again.
    assert (await close_session(client, merchant, drawer, first["id"], 5_000)).status_code == 200
    second = await opened(client, merchant, drawer)
    assert second["id"] != first["id"]


async def test_opens_racing_on_one_drawer_get_exactly_one_session(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    for _ in range(5):
        drawer = drawer_name()
        answers = await asyncio.gather(*(open_session(client, merchant, drawer) for _ in range(8)))
        statuses = sorted(r.status_code for r in answers)
        assert statuses == [201] + [409] * 7, [r.text for r in answers]
        winner = next(r.json()["id"] for r in answers if r.status_code == 201)
        for r in answers:
            if r.status_code == 409:
                assert_problem(r, 409, "cash_session_already_open")
        count = await gateway.scalar(
            "SELECT count(*) FROM cash_sessions WHERE merchant_id = :m AND drawer = :d",
            m=merchant.id,
            d=drawer,
        )
        assert count == 1
        assert await gateway.scalar("SELECT id FROM cash_sessions WHERE drawer = :d", d=drawer) == winner


async def test_a_retry_with_the_key_answers_the_same_session(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    drawer = drawer_name()
    headers = key()
    first = await open_session(client, merchant, drawer, headers=headers)
    again = await open_session(client, merchant, drawer, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert_problem(
        await open_session(client, merchant, drawer, headers=headers, opening_float=1),
        422,
        "idempotency_key_reused",
    )
    # Redis' stored answer gone, PostgreSQL still knows the key: the same session, no second one.
    await gateway.ctx.redis.flushdb()
    from_db = await open_session(client, merchant, drawer, headers=headers)
    assert from_db.status_code == 201
    assert from_db.json()["id"] == first.json()["id"]
    assert from_db.headers["idempotent-replayed"] == "true"
    assert await sessions_of(gateway, merchant) == 1
    # The close's key too: a retry answers the closed session, another key is 409.
    close_key = key()
    closed = await close_session(client, merchant, drawer, first.json()["id"], 4_000, headers=close_key)
    assert closed.status_code == 200
    await gateway.ctx.redis.flushdb()
    retried = await close_session(client, merchant, drawer, first.json()["id"], 4_000, headers=close_key)
    assert retried.status_code == 200
    assert retried.json() == closed.json()
    assert retried.headers["idempotent-replayed"] == "true"
    assert_problem(
        await close_session(client, merchant, drawer, first.json()["id"], 4_000), 409, "cash_session_closed"
    )


async def test_list_and_read_a_drawers_sessions(
    client: httpx.AsyncClient, merchant: Merchant, other_merchant: Merchant
) -> None:
    drawer, elsewhere = drawer_name(), drawer_name()
    ids = []
    for counted in (1_000, 2_000):
        s = await opened(client, merchant, drawer)
        assert (await close_session(client, merchant, drawer, s["id"], counted)).status_code == 200
        ids.append(s["id"])
    ids.append((await opened(client, merchant, drawer))["id"])
    other = await opened(client, merchant, elsewhere)

    async def listed(**params: Any) -> dict[str, Any]:
        r = await client.get(f"/v1/cash-drawers/{drawer}/sessions", headers=merchant.auth, params=params)
        assert r.status_code == 200, r.text
        return dict(r.json())

    page = await listed()
    assert page["object"] == "list"
    assert page["has_more"] is False
    assert [s["id"] for s in page["data"]] == ids[::-1]
    assert [s["id"] for s in (await listed(status="open"))["data"]] == [ids[2]]
    assert [s["id"] for s in (await listed(status="closed"))["data"]] == [ids[1], ids[0]]
    one = await listed(limit=1)
    assert ([s["id"] for s in one["data"]], one["has_more"]) == ([ids[2]], True)
    rest = await listed(limit=2, starting_after=ids[2])
    assert ([s["id"] for s in rest["data"]], rest["has_more"]) == ([ids[1], ids[0]], False)
    back = await listed(ending_before=ids[0])
    assert [s["id"] for s in back["data"]] == [ids[2], ids[1]]
    # A cursor from another drawer is not one of this list's.
    r = await client.get(
        f"/v1/cash-drawers/{drawer}/sessions", headers=merchant.auth, params={"starting_after": other["id"]}
    )
    assert_problem(r, 422, "invalid_cursor")
    # Read through another drawer, or by another merchant: absent.
    wrong_drawer = await client.get(f"/v1/cash-drawers/{elsewhere}/sessions/{ids[0]}", headers=merchant.auth)
    assert_problem(wrong_drawer, 404, "resource_missing")
    theirs = await client.get(f"/v1/cash-drawers/{drawer}/sessions/{ids[0]}", headers=other_merchant.auth)
    assert_problem(theirs, 404, "resource_missing")
    empty = await client.get(f"/v1/cash-drawers/{drawer}/sessions", headers=other_merchant.auth)
    assert empty.json()["data"] == []


async def test_bad_requests_write_nothing(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    drawer = drawer_name()
    cases: list[tuple[str, dict[str, Any], int, str]] = [
        ("till 1", {"opening_float": 1, "currency": "KES"}, 422, "validation_error"),
        ("-till", {"opening_float": 1, "currency": "KES"}, 422, "validation_error"),
        ("t" * 65, {"opening_float": 1, "currency": "KES"}, 422, "validation_error"),
        (drawer, {"opening_float": -1, "currency": "KES"}, 422, "validation_error"),
        (drawer, {"opening_float": 10.5, "currency": "KES"}, 422, "validation_error"),
        (drawer, {"opening_float": "100", "currency": "KES"}, 422, "validation_error"),
        (drawer, {"opening_float": 10**13, "currency": "KES"}, 422, "amount_too_large"),
        (drawer, {"opening_float": 1, "currency": "kes"}, 422, "invalid_currency"),
        (drawer, {"opening_float": 1}, 422, "validation_error"),
        (drawer, {"opening_float": 1, "currency": "KES", "till": "x"}, 422, "validation_error"),
        (drawer, {"opening_float": 1, "currency": "KES", "opened_by": ""}, 422, "validation_error"),
    ]
    for name, body, status, code in cases:
        r = await client.post(
            f"/v1/cash-drawers/{name}/sessions", json=body, headers={**merchant.auth, **key()}
        )
        assert_problem(r, status, code)
    no_key = await client.post(
        f"/v1/cash-drawers/{drawer}/sessions",
        json={"opening_float": 1, "currency": "KES"},
        headers=merchant.auth,
    )
    assert_problem(no_key, 400, "idempotency_key_missing")
    publishable = await add_key(gateway, merchant.id, "publishable")
    r = await client.post(
        f"/v1/cash-drawers/{drawer}/sessions",
        json={"opening_float": 1, "currency": "KES"},
        headers={**publishable.auth, **key()},
    )
    assert_problem(r, 403, "insufficient_scope")
    assert await sessions_of(gateway, merchant) == 0
    s = await opened(client, merchant, drawer)
    for body in ({"counted": -1}, {"counted": 1.5}, {}, {"counted": 1, "closed_by": "x" * 101}):
        r = await client.post(
            f"/v1/cash-drawers/{drawer}/sessions/{s['id']}/close",
            json=body,
            headers={**merchant.auth, **key()},
        )
        assert_problem(r, 422, "validation_error")
    missing = await close_session(client, merchant, drawer, "cds_" + "0" * 26, 1)
    assert_problem(missing, 404, "resource_missing")
    assert await gateway.scalar("SELECT status FROM cash_sessions WHERE id = :id", id=s["id"]) == "open"
    assert await gateway.scalar("SELECT count(*) FROM events WHERE merchant_id = :m", m=merchant.id) == 1


async def test_opening_and_closing_append_events_sent_as_webhooks(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    async with running_receiver() as rx:
        r = await client.post(
            "/v1/webhook-endpoints",
            json={"url": rx.url, "enabled_events": ["cash_session.*"]},
            headers=merchant.auth,
        )
        assert r.status_code == 201, r.text
        secret = r.json()["secret"]
        drawer = drawer_name()
        s = await opened(client, merchant, drawer)
        closed = await close_session(client, merchant, drawer, s["id"], 4_500, closed_by="Baraka")
        assert closed.status_code == 200
        await wait_for(lambda: _received(rx, 2))
    events = await client.get("/v1/events", headers=merchant.auth, params={"type": "cash_session.*"})
    listed = events.json()["data"]
    assert [e["type"] for e in listed] == ["cash_session.closed", "cash_session.opened"]
    assert listed[0]["data"]["object"] == closed.json()
    assert listed[0]["data"]["previous_status"] == "open"
    assert listed[1]["data"]["object"]["status"] == "open"
    assert listed[1]["data"]["previous_status"] is None
    sent = {}
    for received in rx.received:
        event = Webhook(secret).verify(received.body, received.headers)
        sent[event["type"]] = event
    assert sorted(sent) == ["cash_session.closed", "cash_session.opened"]
    assert sent["cash_session.closed"]["data"]["object"]["difference"] == -500
    assert json.loads(rx.received[0].body)["data"]["object"]["id"] == s["id"]


async def _received(rx: Any, n: int) -> bool:
    return len(rx.received) >= n
