"""PUT and GET /v1/routing-rules: the whole ordered list replaced at once, checked before anything is
written, in the key's mode."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from auth.credentials import add_key
from provider_account_data import live_key
from support import Gateway, Merchant, assert_problem

RULES: list[dict[str, Any]] = [
    {"provider": "mpesa", "currency": "KES", "phone_country": "KE", "amount_max": 100_000},
    {"provider": "stripe", "payment_method_type": "card"},
    {"provider": "paystack", "currency": "NGN", "amount_min": 1_000},
    {"provider": "flutterwave"},
]


def shown(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    keys = ("provider", "currency", "phone_country", "payment_method_type", "amount_min", "amount_max")
    return [{"position": i + 1} | {k: r.get(k) for k in keys} for i, r in enumerate(rules)]


async def rule_rows(gateway: Gateway, merchant: Merchant) -> int:
    count: int = await gateway.scalar(
        "SELECT count(*) FROM routing_rules WHERE merchant_id = :m", m=merchant.id
    )
    return count


async def test_put_replaces_the_ordered_list_and_get_reads_it(
    client: httpx.AsyncClient, merchant: Merchant, gateway: Gateway
) -> None:
    r = await client.get("/v1/routing-rules", headers=merchant.auth)
    assert r.status_code == 200
    assert r.json() == {"object": "routing_rules", "livemode": False, "rules": []}

    r = await client.put("/v1/routing-rules", json={"rules": RULES}, headers=merchant.auth)
    assert r.status_code == 200, r.text
    assert r.json() == {"object": "routing_rules", "livemode": False, "rules": shown(RULES)}
    r = await client.get("/v1/routing-rules", headers=merchant.auth)
    assert r.json()["rules"] == shown(RULES)
    assert await rule_rows(gateway, merchant) == 4

    # A second PUT replaces the list whole, in its new order.
    new = [RULES[3], RULES[0]]
    r = await client.put("/v1/routing-rules", json={"rules": new}, headers=merchant.auth)
    assert r.json()["rules"] == shown(new)
    assert (await client.get("/v1/routing-rules", headers=merchant.auth)).json()["rules"] == shown(new)
    assert await rule_rows(gateway, merchant) == 2

    r = await client.put("/v1/routing-rules", json={"rules": []}, headers=merchant.auth)
    assert r.json()["rules"] == []
    assert await rule_rows(gateway, merchant) == 0


async def test_rules_are_per_mode_and_per_merchant(
    client: httpx.AsyncClient, merchant: Merchant, other_merchant: Merchant, gateway: Gateway
) -> None:
    await client.put("/v1/routing-rules", json={"rules": RULES}, headers=merchant.auth)
    live = await live_key(gateway, merchant)
    r = await client.get("/v1/routing-rules", headers=live)
    assert r.json() == {"object": "routing_rules", "livemode": True, "rules": []}
    assert (await client.get("/v1/routing-rules", headers=other_merchant.auth)).json()["rules"] == []


@pytest.mark.parametrize(
    ("rule", "status", "code", "param"),
    [
        ({"provider": "nope"}, 422, "provider_unknown", "rules[1].provider"),
        ({"provider": "auto"}, 422, "provider_unknown", "rules[1].provider"),
        ({"provider": "wave", "currency": "KES"}, 422, "currency_not_supported", "rules[1].currency"),
        ({"provider": "stripe", "amount_min": 500, "amount_max": 100}, 422, "validation_error", None),
        ({"provider": "stripe", "phone_country": "ZZ"}, 422, "validation_error", None),
        ({"provider": "stripe", "phone_country": "ke"}, 422, "validation_error", None),
        ({"provider": "stripe", "currency": "kes"}, 422, "invalid_currency", None),
        ({"provider": "stripe", "payment_method_type": "cheque"}, 422, "validation_error", None),
        ({"provider": "stripe", "amount_min": 0}, 422, "validation_error", None),
        ({"provider": "stripe", "colour": "red"}, 422, "validation_error", None),
    ],
)
async def test_a_bad_rule_refuses_the_whole_list_and_changes_nothing(
    client: httpx.AsyncClient,
    merchant: Merchant,
    gateway: Gateway,
    rule: dict[str, Any],
    status: int,
    code: str,
    param: str | None,
) -> None:
    await client.put("/v1/routing-rules", json={"rules": RULES[:2]}, headers=merchant.auth)
    r = await client.put("/v1/routing-rules", json={"rules": [RULES[3], rule]}, headers=merchant.auth)
    problem = assert_problem(r, status, code)
    if param is not None:
        assert problem["param"] == param
    assert (await client.get("/v1/routing-rules", headers=merchant.auth)).json()["rules"] == shown(RULES[:2])
    assert await rule_rows(gateway, merchant) == 2


async def test_a_provider_not_configured_in_the_keys_mode_is_refused(
    client: httpx.AsyncClient, merchant: Merchant, gateway: Gateway
) -> None:
    live = await live_key(gateway, merchant)
    r = await client.put("/v1/routing-rules", json={"rules": [{"provider": "sandbox"}]}, headers=live)
    problem = assert_problem(r, 422, "provider_not_configured")
    assert problem["param"] == "rules[0].provider"
    assert await rule_rows(gateway, merchant) == 0


async def test_too_many_rules_are_refused(client: httpx.AsyncClient, merchant: Merchant) -> None:
    r = await client.put(
        "/v1/routing-rules", json={"rules": [{"provider": "stripe"}] * 51}, headers=merchant.auth
    )
    assert_problem(r, 422, "validation_error")


async def test_the_routes_need_the_provider_accounts_scope(
    client: httpx.AsyncClient, merchant: Merchant, gateway: Gateway
) -> None:
    narrow = await add_key(gateway, merchant.id, "restricted", scopes=["payments:write"])
    auth = {"Authorization": f"Bearer {narrow.secret}"}
    assert_problem(await client.get("/v1/routing-rules", headers=auth), 403, "insufficient_scope")
    r = await client.put("/v1/routing-rules", json={"rules": RULES}, headers=auth)
    assert_problem(r, 403, "insufficient_scope")
    wide = await add_key(gateway, merchant.id, "restricted", scopes=["provider_accounts:write"])
    r = await client.put(
        "/v1/routing-rules", json={"rules": RULES}, headers={"Authorization": f"Bearer {wide.secret}"}
    )
    assert r.status_code == 200, r.text
    assert_problem(await client.get("/v1/routing-rules"), 401, "authentication_required")
