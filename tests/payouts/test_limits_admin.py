"""The operator sets a merchant's payout limits through the admin API (GET/PUT
/v1/admin/merchants/{id}/payout-limits); payouts are then held to them, in that merchant's mode only."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from gateway.kit.ids import new_id
from gateway.payouts.limits import Limit, resolve
from gateway.payouts.models import PayoutLimit
from gateway.settings import PayoutSettings
from payouts.helpers import body, create
from support import ADMIN_TOKEN, Gateway, Merchant, assert_problem, configured_app

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
# The session gateway's defaults (GATEWAY_PAYOUTS__MAX_PER_PAYOUT / MAX_PER_DAY).
DEFAULT_PER_PAYOUT, DEFAULT_PER_DAY = 10_000_000, 50_000_000


def url(merchant_id: str) -> str:
    return f"/v1/admin/merchants/{merchant_id}/payout-limits"


async def put(
    client: httpx.AsyncClient, merchant_id: str, rows: list[dict[str, Any]], livemode: bool = False
) -> httpx.Response:
    return await client.put(url(merchant_id), json={"livemode": livemode, "limits": rows}, headers=ADMIN)


async def rows(gateway: Gateway, merchant: Merchant) -> list[str]:
    """The merchant's payout_limits rows, as text, in a fixed order."""
    found = await gateway.ctx.db.fetch(
        "SELECT row(livemode, currency, max_per_payout, max_per_day)::text AS r FROM payout_limits "
        "WHERE merchant_id = $1 ORDER BY livemode, currency",
        merchant.id,
    )
    return [r["r"] for r in found]


async def payouts(gateway: Gateway, merchant: Merchant) -> int:
    n: int = await gateway.scalar("SELECT count(*) FROM payouts WHERE merchant_id = :m", m=merchant.id)
    return n


def effective(answer: dict[str, Any], mode: str, currency: str) -> tuple[Any, ...]:
    e = next(x for x in answer[mode]["effective"] if x["currency"] == currency)
    return (e["max_per_payout"], e["max_per_payout_source"], e["max_per_day"], e["max_per_day_source"])


async def test_without_own_limits_the_defaults_are_shown_as_such(
    client: httpx.AsyncClient, merchant: Merchant
) -> None:
    r = await client.get(url(merchant.id), headers=ADMIN)
    assert r.status_code == 200, r.text
    got = r.json()
    assert (got["object"], got["merchant"], sorted(got)) == (
        "payout_limits",
        merchant.id,
        ["live", "merchant", "object", "test"],
    )
    for mode, livemode in (("test", False), ("live", True)):
        assert (got[mode]["livemode"], got[mode]["limits"]) == (livemode, [])
        assert got[mode]["effective"] == [
            {
                "currency": "*",
                "max_per_payout": DEFAULT_PER_PAYOUT,
                "max_per_payout_source": "default",
                "max_per_day": DEFAULT_PER_DAY,
                "max_per_day_source": "default",
            }
        ]


async def test_set_limits_then_payouts_are_held_to_them(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    r = await put(
        client,
        merchant.id,
        [
            {"currency": "*", "max_per_day": 30_000},
            {"currency": "KES", "max_per_payout": 4_000, "max_per_day": None},
        ],
    )
    assert r.status_code == 200, r.text
    got = r.json()
    assert [(x["currency"], x["max_per_payout"], x["max_per_day"]) for x in got["test"]["limits"]] == [
        ("KES", 4_000, None),
        ("*", None, 30_000),
    ]
    assert got["live"]["limits"] == []
    # KES: its own per payout; per day from the merchant's "*" row, before any default.
    assert effective(got, "test", "KES") == (4_000, "merchant", 30_000, "merchant")
    assert effective(got, "test", "*") == (DEFAULT_PER_PAYOUT, "default", 30_000, "merchant")
    assert effective(got, "live", "*") == (DEFAULT_PER_PAYOUT, "default", DEFAULT_PER_DAY, "default")
    assert (await client.get(url(merchant.id), headers=ADMIN)).json() == got
    assert await rows(gateway, merchant) == ["(f,*,,30000)", "(f,KES,4000,)"]

    calls = gateway.calls("sandbox.create_payout")
    over = assert_problem(await create(client, merchant, body(amount=4_001)), 422, "payout_limit_exceeded")
    assert (over["limit"], over["limit_amount"], over["currency"]) == ("per_payout", 4_000, "KES")
    assert (await payouts(gateway, merchant), gateway.calls("sandbox.create_payout")) == (0, calls)

    assert (await create(client, merchant, body(amount=4_000))).status_code == 201
    assert gateway.calls("sandbox.create_payout") == calls + 1
    # UGX has no row of its own: the "*" row's 30 000 a day holds, counted apart from KES.
    assert (await create(client, merchant, body(amount=30_000, currency="UGX"))).status_code == 201
    over = assert_problem(
        await create(client, merchant, body(amount=1, currency="UGX")), 422, "payout_limit_exceeded"
    )
    assert (over["limit"], over["limit_amount"], over["remaining"]) == ("per_day", 30_000, 0)
    assert (await payouts(gateway, merchant), gateway.calls("sandbox.create_payout")) == (2, calls + 2)


async def test_a_put_replaces_the_modes_rows_and_an_empty_list_restores_the_defaults(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    assert (await put(client, merchant.id, [{"currency": "KES", "max_per_payout": 4_000}])).status_code == 200
    live = await put(client, merchant.id, [{"currency": "KES", "max_per_payout": 9}], livemode=True)
    assert live.status_code == 200
    r = await put(client, merchant.id, [{"currency": "UGX", "max_per_day": 70_000}])
    assert r.status_code == 200, r.text
    assert await rows(gateway, merchant) == ["(f,UGX,,70000)", "(t,KES,9,)"]  # KES test row gone
    assert [e["currency"] for e in r.json()["test"]["effective"]] == ["UGX", "*"]
    assert effective(r.json(), "test", "UGX") == (DEFAULT_PER_PAYOUT, "default", 70_000, "merchant")
    # The old KES limit no longer holds; the live mode's 9 never held for test payouts.
    assert (await create(client, merchant, body(amount=4_001))).status_code == 201

    r = await put(client, merchant.id, [])
    assert (r.status_code, r.json()["test"]["limits"]) == (200, [])
    assert await rows(gateway, merchant) == ["(t,KES,9,)"]


async def test_one_merchants_limits_do_not_touch_another(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, other_merchant: Merchant
) -> None:
    r = await put(client, merchant.id, [{"currency": "*", "max_per_payout": 100}])
    assert r.status_code == 200
    other = (await client.get(url(other_merchant.id), headers=ADMIN)).json()
    assert (other["test"]["limits"], effective(other, "test", "*")[:2]) == (
        [],
        (DEFAULT_PER_PAYOUT, "default"),
    )
    assert_problem(await create(client, merchant, body(amount=101)), 422, "payout_limit_exceeded")
    assert (await create(client, other_merchant, body(amount=101))).status_code == 201
    assert await rows(gateway, other_merchant) == []


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"livemode": False, "limits": [{"currency": "kes", "max_per_payout": 1}]}, "invalid_currency"),
        ({"livemode": False, "limits": [{"currency": "XYZ", "max_per_payout": 1}]}, "invalid_currency"),
        ({"livemode": False, "limits": [{"currency": "**", "max_per_payout": 1}]}, "invalid_currency"),
        ({"livemode": False, "limits": [{"currency": "KES", "max_per_payout": 0}]}, "validation_error"),
        ({"livemode": False, "limits": [{"currency": "KES", "max_per_day": -5}]}, "validation_error"),
        ({"livemode": False, "limits": [{"currency": "KES", "max_per_day": 1.5}]}, "validation_error"),
        ({"livemode": False, "limits": [{"currency": "KES", "max_per_day": "100"}]}, "validation_error"),
        ({"livemode": False, "limits": [{"currency": "KES", "max_per_day": 10**12}]}, "amount_too_large"),
        ({"livemode": False, "limits": [{"currency": "KES"}]}, "validation_error"),
        (
            {"livemode": False, "limits": [{"currency": "KES", "max_per_payout": 9, "max_per_day": 8}]},
            "validation_error",
        ),
        (
            {"livemode": False, "limits": [{"currency": "KES", "max_per_day": 9}, {"currency": "KES"}]},
            "validation_error",
        ),
        ({"livemode": "false", "limits": []}, "validation_error"),
        ({"limits": []}, "validation_error"),
        (
            {"livemode": False, "limits": [{"currency": "KES", "max_per_day": 9, "note": "x"}]},
            "validation_error",
        ),
    ],
    ids=[
        "lower-case",
        "not-iso",
        "two-stars",
        "zero",
        "negative",
        "float",
        "string",
        "too-large",
        "no-limit",
        "per-payout-above-per-day",
        "duplicate",
        "livemode-string",
        "no-livemode",
        "unknown-field",
    ],
)
async def test_bad_limits_are_422_and_write_nothing(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, payload: dict[str, Any], code: str
) -> None:
    assert (await put(client, merchant.id, [{"currency": "KES", "max_per_payout": 4_000}])).status_code == 200
    before = await rows(gateway, merchant)
    r = await client.put(url(merchant.id), json=payload, headers=ADMIN)
    assert_problem(r, 422, code)
    assert await rows(gateway, merchant) == before == ["(f,KES,4000,)"]


async def test_the_error_types_name_what_is_wrong(client: httpx.AsyncClient, merchant: Merchant) -> None:
    for limits, kind in (
        ([{"currency": "KES"}], "limit_required"),
        ([{"currency": "KES", "max_per_payout": 9, "max_per_day": 8}], "invalid_limit_range"),
        ([{"currency": "*", "max_per_day": 9}, {"currency": "*", "max_per_day": 9}], "duplicate_currency"),
    ):
        problem = assert_problem(await put(client, merchant.id, limits), 422, "validation_error")
        assert [e["type"] for e in problem["errors"]] == [kind]


async def test_an_unknown_merchant_is_404_and_nothing_is_written(
    client: httpx.AsyncClient, gateway: Gateway
) -> None:
    missing = new_id("mer")
    for r in (
        await client.get(url(missing), headers=ADMIN),
        await put(client, missing, [{"currency": "KES", "max_per_payout": 1}]),
    ):
        assert assert_problem(r, 404, "resource_missing")["param"] == "id"
    assert await gateway.scalar("SELECT count(*) FROM payout_limits WHERE merchant_id = :m", m=missing) == 0


async def test_a_merchant_key_or_no_token_is_401(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    for headers in ({}, merchant.auth):
        r = await client.put(
            url(merchant.id),
            json={"livemode": False, "limits": [{"currency": "KES", "max_per_payout": 1}]},
            headers=headers,
        )
        assert_problem(r, 401, "invalid_admin_token")
        assert_problem(await client.get(url(merchant.id), headers=headers), 401, "invalid_admin_token")
    assert await rows(gateway, merchant) == []


async def test_with_the_admin_api_off_the_routes_do_not_exist(gateway: Gateway, merchant: Merchant) -> None:
    settings = gateway.ctx.settings.model_copy(update={"admin_token": None})
    async with configured_app(settings) as c:
        unknown = await c.get("/v1/no-such-route")
        payload = {"livemode": False, "limits": [{"currency": "KES", "max_per_payout": 1}]}
        for r in (
            await c.get(url(merchant.id), headers=ADMIN),
            await c.put(url(merchant.id), json=payload, headers=ADMIN),
            await c.post(url(merchant.id), json=payload),
        ):
            problem = assert_problem(r, 404, "not_found")
            assert problem["detail"] == unknown.json()["detail"]
    assert await rows(gateway, merchant) == []


def test_the_order_a_limit_is_picked_in() -> None:
    """The merchant's row for the currency, its "*" row, the default for the currency, the default's
    "*"; a null passes to the next, nothing at all is no limit."""
    now = datetime.now(UTC)
    settings = PayoutSettings(max_per_payout={"KES": 700}, max_per_day={"KES": 900, "*": 800})
    mine = [
        PayoutLimit("mer_x", False, "*", 50, None, now),
        PayoutLimit("mer_x", False, "UGX", None, 60, now),
    ]
    kes, ugx, usd = (resolve(mine, settings, c) for c in ("KES", "UGX", "USD"))
    assert (kes.per_payout, kes.per_day) == (Limit(50, "merchant"), Limit(900, "default"))
    assert (ugx.per_payout, ugx.per_day) == (Limit(50, "merchant"), Limit(60, "merchant"))
    assert (usd.per_payout, usd.per_day) == (Limit(50, "merchant"), Limit(800, "default"))
    bare = resolve([], settings, "USD")
    assert (bare.per_payout, bare.per_day) == (Limit(None, "none"), Limit(800, "default"))
