"""Payments made with `"provider": "auto"` (or without a provider, by a merchant with rules): the first
rule that holds picks the provider, by currency, phone country, method type and amount, in order; no
rule that holds is 422 no_route, with nothing written and no provider called."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
import respx

from drivers.flutterwave import DRIVER as FLUTTERWAVE
from drivers.mpesa import DRIVER as MPESA
from drivers.mpesa import PHONE as KENYAN_PHONE
from drivers.paystack import DRIVER as PAYSTACK
from drivers.stripe import DRIVER as STRIPE
from drivers.stripe import RETURN_URL
from support import FLUTTERWAVE_API, MPESA_API, PAYSTACK_API, STRIPE_API, Gateway, Merchant, assert_problem

UGANDAN_PHONE = "+256772123456"
RULES: list[dict[str, Any]] = [
    {"provider": "mpesa", "currency": "KES", "phone_country": "KE", "amount_max": 100_000},
    {"provider": "stripe", "payment_method_type": "card"},
    {"provider": "paystack", "currency": "NGN", "amount_min": 1_000},
    {"provider": "flutterwave"},
]
CREATE_PATHS = {
    "mpesa": f"{MPESA_API}/mpesa/stkpush/v1/processrequest",
    "stripe": f"{STRIPE_API}/v1/payment_intents",
    "paystack": f"{PAYSTACK_API}/transaction/initialize",
    "flutterwave": f"{FLUTTERWAVE_API}/v3/payments",
}


def create_calls(router: respx.Router) -> dict[str, int]:
    """How often each provider was asked to create a payment."""
    counts = dict.fromkeys(CREATE_PATHS, 0)
    for call in router.calls:
        for name, url in CREATE_PATHS.items():
            if call.request.method == "POST" and str(call.request.url).split("?")[0] == url:
                counts[name] += 1
    return counts


def body(amount: int, currency: str, phone: str | None = None, **extra: Any) -> dict[str, Any]:
    customer: dict[str, Any] = {"name": "Amina Otieno", "email": "amina@example.com"}
    if phone:
        customer["phone"] = phone
    base = {"amount": amount, "currency": currency, "provider": "auto", "customer": customer}
    return base | {"return_url": RETURN_URL} | extra


async def create(client: httpx.AsyncClient, merchant: Merchant, payload: dict[str, Any]) -> httpx.Response:
    return await client.post(
        "/v1/payments", json=payload, headers=merchant.auth | {"Idempotency-Key": str(uuid.uuid4())}
    )


async def put_rules(client: httpx.AsyncClient, merchant: Merchant, rules: list[dict[str, Any]]) -> None:
    r = await client.put("/v1/routing-rules", json={"rules": rules}, headers=merchant.auth)
    assert r.status_code == 200, r.text


@pytest.fixture
def providers(provider_http: respx.Router) -> respx.Router:
    for driver in (MPESA, STRIPE, PAYSTACK, FLUTTERWAVE):
        driver.mock_create(provider_http, "action")
    return provider_http


CARD = {
    "payment_method_type": "card",
    "payment_method": "pm_card_threeDSecure2Required",
    "return_url": RETURN_URL,
}


@pytest.mark.parametrize(
    ("payload", "chosen", "route"),
    [
        # Rule 1: KES, a Kenyan phone, at most 1,000.00.
        (body(5_000, "KES", KENYAN_PHONE), "mpesa", ["mpesa", "flutterwave"]),
        # Above rule 1's amount_max; not a card; not NGN: the catch-all.
        (body(500_000, "KES", KENYAN_PHONE), "flutterwave", ["flutterwave"]),
        # Not a Kenyan phone: rule 2 by method type.
        (body(5_000, "KES", UGANDAN_PHONE, **CARD), "stripe", ["stripe", "flutterwave"]),
        # Rule 3 by currency and amount_min; below it, the catch-all.
        (body(5_000, "NGN"), "paystack", ["paystack", "flutterwave"]),
        (body(500, "NGN"), "flutterwave", ["flutterwave"]),
        # Rules 1 and 2 both hold: the first in order wins, the second is its fallback.
        (
            body(5_000, "KES", KENYAN_PHONE, payment_method_type="card"),
            "mpesa",
            ["mpesa", "stripe", "flutterwave"],
        ),
    ],
)
async def test_the_first_rule_that_holds_chooses_the_provider(
    client: httpx.AsyncClient,
    merchant: Merchant,
    providers: respx.Router,
    payload: dict[str, Any],
    chosen: str,
    route: list[str],
) -> None:
    await put_rules(client, merchant, RULES)
    r = await create(client, merchant, payload)
    assert r.status_code == 201, r.text
    p = r.json()
    assert (p["provider"], p["status"]) == (chosen, "requires_action")
    assert p["routing"] == {
        "route": route,
        "attempts": [{"number": 1, "provider": chosen, "outcome": "current"}],
    }
    assert create_calls(providers) == {name: int(name == chosen) for name in CREATE_PATHS}
    attempts = (await client.get(f"/v1/payments/{p['id']}/attempts", headers=merchant.auth)).json()["data"]
    assert [(a["number"], a["provider"], a["status"]) for a in attempts] == [(1, chosen, "requires_action")]
    # The payment as GET shows it, and as its created event carries it.
    got = (await client.get(f"/v1/payments/{p['id']}", headers=merchant.auth)).json()
    assert got["routing"] == p["routing"]
    events = (await client.get(f"/v1/payments/{p['id']}/events", headers=merchant.auth)).json()["data"]
    created = next(e for e in events if e["type"] == "payment.created")
    assert created["data"]["object"]["routing"] == p["routing"]


async def test_a_payment_without_a_provider_is_routed_where_the_merchant_has_rules(
    client: httpx.AsyncClient, merchant: Merchant, providers: respx.Router
) -> None:
    payload = body(5_000, "NGN")
    del payload["provider"]
    r = await create(client, merchant, payload)  # no rules: the customer chooses, as ever
    assert (r.status_code, r.json()["status"], r.json()["provider"], r.json()["routing"]) == (
        201,
        "requires_payment_method",
        None,
        None,
    )
    await put_rules(client, merchant, RULES)
    r = await create(client, merchant, payload)
    assert (r.status_code, r.json()["provider"]) == (201, "paystack")
    assert create_calls(providers)["paystack"] == 1


async def test_no_rule_that_holds_is_no_route_and_writes_nothing(
    client: httpx.AsyncClient, merchant: Merchant, gateway: Gateway, providers: respx.Router
) -> None:
    r = await create(client, merchant, body(5_000, "KES", KENYAN_PHONE))
    assert assert_problem(r, 422, "no_route")["refused"] == []  # no rules at all
    await put_rules(client, merchant, [{"provider": "mpesa", "currency": "KES"}])
    assert_problem(await create(client, merchant, body(5_000, "USD", KENYAN_PHONE)), 422, "no_route")
    # The only rule holds, but its provider cannot take the payment (M-Pesa needs a phone number).
    problem = assert_problem(await create(client, merchant, body(5_000, "KES")), 422, "no_route")
    assert [(x["provider"], x["code"]) for x in problem["refused"]] == [("mpesa", "invalid_phone")]
    count = await gateway.scalar("SELECT count(*) FROM payments WHERE merchant_id = :m", m=merchant.id)
    assert count == 0
    assert not [c for c in providers.calls if c.request.url.host != "127.0.0.1"]


async def test_payment_method_type_is_for_routed_payments_only(
    client: httpx.AsyncClient, merchant: Merchant
) -> None:
    r = await create(client, merchant, body(5_000, "KES", provider="sandbox", payment_method_type="card"))
    assert_problem(r, 422, "validation_error")
