"""What a close adds up: the float, the cash payments taken into the session and the cash refunds
paid out of it; and what a payment, a confirm or a refund may name as its session."""

from __future__ import annotations

from typing import Any

import httpx

from auth.credentials import add_key
from cash_drawers.drawers import close_session, drawer_name, key, opened, pay_cash, refund
from support import Gateway, Merchant, assert_problem


async def paid(
    client: httpx.AsyncClient, merchant: Merchant, session_id: str | None, amount: int
) -> dict[str, Any]:
    r = await pay_cash(client, merchant, session_id, amount)
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "succeeded"
    assert r.json()["cash_session"] == session_id
    return dict(r.json())


async def closed(
    client: httpx.AsyncClient, merchant: Merchant, drawer: str, session_id: str, counted: int, **extra: Any
) -> dict[str, Any]:
    r = await close_session(client, merchant, drawer, session_id, counted, **extra)
    assert r.status_code == 200, r.text
    return dict(r.json())


def totals(s: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(s[k] for k in ("payments_total", "refunds_total", "expected", "counted", "difference"))


async def test_close_records_expected_and_the_drawer_over_or_short(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    drawer, other_drawer = drawer_name(), drawer_name()
    s = await opened(client, merchant, drawer, opening_float=5_000)
    other = await opened(client, merchant, other_drawer, opening_float=0)
    await paid(client, merchant, s["id"], 1_200)
    await paid(client, merchant, s["id"], 800)
    await paid(client, merchant, None, 999)  # cash outside any drawer
    await paid(client, merchant, other["id"], 300)  # another drawer's
    card = await pay_cash(client, merchant, None, 5_000, provider="sandbox")
    assert card.status_code == 201
    over = await closed(client, merchant, drawer, s["id"], 7_100, closed_by="Baraka")
    assert over["status"] == "closed"
    assert totals(over) == (2_000, 0, 7_000, 7_100, 100)
    key_id = await gateway.scalar("SELECT id FROM api_keys WHERE merchant_id = :m", m=merchant.id)
    assert over["closed_by"] == {"api_key": key_id, "name": "Baraka"}
    assert over["closed_at"] is not None
    short = await closed(client, merchant, other_drawer, other["id"], 250)
    assert totals(short) == (300, 0, 300, 250, -50)
    assert short["closed_by"] == {"api_key": key_id, "name": None}
    # An empty session: expected is the float.
    empty = await opened(client, merchant, drawer, opening_float=4_000)
    assert totals(await closed(client, merchant, drawer, empty["id"], 4_000)) == (0, 0, 4_000, 4_000, 0)


async def test_cash_refunds_leave_the_drawer_open_when_they_are_made(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    drawer = drawer_name()
    a = await opened(client, merchant, drawer, opening_float=1_000)
    p = await paid(client, merchant, a["id"], 3_000)
    r = await refund(client, merchant, p["id"], 1_000)
    assert r.status_code == 201, r.text
    assert (r.json()["status"], r.json()["cash_session"]) == ("succeeded", a["id"])
    assert totals(await closed(client, merchant, drawer, a["id"], 3_000)) == (3_000, 1_000, 3_000, 3_000, 0)
    # The drawer closed and not open again: nowhere for the cash to come from; nothing written.
    before = await gateway.scalar("SELECT count(*) FROM refunds WHERE payment_id = :p", p=p["id"])
    problem = assert_problem(await refund(client, merchant, p["id"], 500), 409, "cash_drawer_not_open")
    assert problem["param"] == "cash_session"
    assert await gateway.scalar("SELECT count(*) FROM refunds WHERE payment_id = :p", p=p["id"]) == before
    # The drawer's next session pays it out, and counts it at its close.
    b = await opened(client, merchant, drawer, opening_float=2_000)
    later = await refund(client, merchant, p["id"], 500)
    assert later.status_code == 201, later.text
    assert later.json()["cash_session"] == b["id"]
    got = await client.get(f"/v1/refunds/{later.json()['id']}", headers=merchant.auth)
    assert got.json()["cash_session"] == b["id"]
    # Or the merchant names the session the cash leaves from: another drawer's.
    elsewhere = drawer_name()
    c = await opened(client, merchant, elsewhere, opening_float=700)
    named = await refund(client, merchant, p["id"], 200, cash_session=c["id"])
    assert named.status_code == 201, named.text
    assert named.json()["cash_session"] == c["id"]
    assert totals(await closed(client, merchant, drawer, b["id"], 1_400)) == (0, 500, 1_500, 1_400, -100)
    assert totals(await closed(client, merchant, elsewhere, c["id"], 500)) == (0, 200, 500, 500, 0)
    payment = (await client.get(f"/v1/payments/{p['id']}", headers=merchant.auth)).json()
    assert (payment["status"], payment["amount_refunded"]) == ("partially_refunded", 1_700)
    # A refund that names a closed session, or names one for a payment that is not cash: refused.
    assert_problem(
        await refund(client, merchant, p["id"], 100, cash_session=c["id"]), 409, "cash_session_closed"
    )
    card = await pay_cash(client, merchant, None, 900, provider="sandbox")
    d = await opened(client, merchant, drawer_name())
    assert_problem(
        await refund(client, merchant, card.json()["id"], 100, cash_session=d["id"]),
        422,
        "cash_session_not_allowed",
    )
    # Cash taken outside any drawer is refunded outside any drawer.
    loose = await paid(client, merchant, None, 400)
    r = await refund(client, merchant, loose["id"], 400)
    assert (r.status_code, r.json()["cash_session"]) == (201, None)


async def test_what_a_payment_may_name_as_its_session(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, other_merchant: Merchant
) -> None:
    drawer = drawer_name()
    s = await opened(client, merchant, drawer)
    usd = await opened(client, merchant, drawer_name(), currency="USD")
    theirs = await opened(client, other_merchant, drawer_name())
    done = await opened(client, merchant, drawer_name())
    await closed(client, merchant, done["drawer"], done["id"], 5_000)
    live = await add_key(gateway, merchant.id, livemode=True)
    cases: list[tuple[dict[str, Any], dict[str, str], int, str]] = [
        (
            {"provider": "sandbox", "payment_method": "pm_success", "cash_session": s["id"]},
            {},
            422,
            "cash_session_not_allowed",
        ),
        ({"cash_session": s["id"]}, {}, 422, "cash_session_not_allowed"),
        ({"provider": "cash", "cash_session": "cds_" + "0" * 26}, {}, 404, "resource_missing"),
        ({"provider": "cash", "cash_session": theirs["id"]}, {}, 404, "resource_missing"),
        ({"provider": "cash", "cash_session": s["id"]}, live.auth, 404, "resource_missing"),
        ({"provider": "cash", "cash_session": usd["id"]}, {}, 422, "cash_session_currency_mismatch"),
        ({"provider": "cash", "cash_session": done["id"]}, {}, 409, "cash_session_closed"),
        ({"provider": "cash", "cash_session": "x" * 41}, {}, 422, "validation_error"),
    ]
    for body, auth, status, code in cases:
        r = await client.post(
            "/v1/payments",
            json={"amount": 1_000, "currency": "KES", **body},
            headers={**merchant.auth, **auth, **key()},
        )
        problem = assert_problem(r, status, code)
        if status != 422 or code != "validation_error":
            assert problem["param"] == "cash_session"
    assert_problem(await pay_cash(client, merchant, usd["id"], 1_000), 422, "cash_session_currency_mismatch")
    assert await gateway.scalar("SELECT count(*) FROM payments WHERE merchant_id = :m", m=merchant.id) == 0
    assert (
        await gateway.scalar(
            "SELECT count(*) FROM events WHERE merchant_id = :m AND type LIKE 'payment.%'", m=merchant.id
        )
        == 0
    )
    # The right one: the payment shows its session, GET too.
    p = await paid(client, merchant, s["id"], 1_000)
    got = await client.get(f"/v1/payments/{p['id']}", headers=merchant.auth)
    assert got.json()["cash_session"] == s["id"]
    assert got.json()["payment_method_details"] == {"type": "cash", "till": None}


async def test_a_retry_of_a_cash_payment_after_the_close_answers_the_payment(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    drawer = drawer_name()
    s = await opened(client, merchant, drawer)
    headers = key()
    first = await pay_cash(client, merchant, s["id"], 700, headers=headers)
    assert first.status_code == 201
    await closed(client, merchant, drawer, s["id"], 5_700)
    await gateway.ctx.redis.flushdb()  # PostgreSQL answers: the payment exists, closed session or not
    again = await pay_cash(client, merchant, s["id"], 700, headers=headers)
    assert again.status_code == 201, again.text
    assert again.json()["id"] == first.json()["id"]
    assert await gateway.scalar("SELECT count(*) FROM payments WHERE merchant_id = :m", m=merchant.id) == 1


async def test_a_confirm_with_cash_names_the_session(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    drawer = drawer_name()
    s = await opened(client, merchant, drawer, opening_float=100)

    async def unconfirmed() -> str:
        r = await client.post(
            "/v1/payments", json={"amount": 2_500, "currency": "KES"}, headers={**merchant.auth, **key()}
        )
        assert r.json()["status"] == "requires_payment_method"
        return str(r.json()["id"])

    async def confirm(payment_id: str, **body: Any) -> httpx.Response:
        return await client.post(
            f"/v1/payments/{payment_id}/confirm", json=body, headers={**merchant.auth, **key()}
        )

    first = await unconfirmed()
    refused = await confirm(first, provider="sandbox", payment_method="pm_success", cash_session=s["id"])
    assert_problem(refused, 422, "cash_session_not_allowed")
    r = await confirm(first, provider="cash", cash_session=s["id"])
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["cash_session"]) == ("succeeded", s["id"])
    assert totals(await closed(client, merchant, drawer, s["id"], 2_600)) == (2_500, 0, 2_600, 2_600, 0)
    second = await unconfirmed()
    assert_problem(await confirm(second, provider="cash", cash_session=s["id"]), 409, "cash_session_closed")
    after = (await client.get(f"/v1/payments/{second}", headers=merchant.auth)).json()
    assert (after["status"], after["provider"], after["cash_session"]) == (
        "requires_payment_method",
        None,
        None,
    )
    assert await gateway.scalar("SELECT count(*) FROM payment_attempts WHERE payment_id = :p", p=second) == 0
