"""What a payment says about how it was paid (`payment_method_details`), for every provider.

Each driver (tests/drivers/) makes its provider pay the payment with the provider's own payload
shapes and says what the gateway must then show; this file checks the payment (GET), its events'
data.object (the same rendering the merchant's webhooks send) and that no full card or phone number
the provider sent reaches an event. (No log call of the gateway takes a number or a payload.)
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import orjson
import pytest
import respx

import drivers
from drivers.base import Driver
from gateway.providers import details
from gateway.providers.flutterwave import transformers as flutterwave
from gateway.providers.paystack import transformers as paystack
from support import Gateway, Merchant, wait_for

DRIVERS: list[Driver] = drivers.discover()
NO_QUERY = {"sandbox": "the sandbox's customer-step scenario never ends by itself (its webhook does)"}


@pytest.fixture(params=DRIVERS, ids=lambda d: d.name)
def driver(request: pytest.FixtureRequest) -> Driver:
    d: Driver = request.param
    return d


async def get(client: httpx.AsyncClient, merchant: Merchant, path: str) -> dict[str, Any]:
    r = await client.get(path, headers=merchant.auth)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def pay(
    client: httpx.AsyncClient, merchant: Merchant, driver: Driver, router: respx.Router, via: str
) -> dict[str, Any]:
    """A payment of `driver`'s provider, waiting for its customer and then paid; the provider says so
    by its webhook or, asked by a sync, by its status query."""
    headers = {**merchant.auth, "Idempotency-Key": str(uuid.uuid4())}
    driver.mock_create(router, "action")
    r = await client.post("/v1/payments", json=driver.create_body("action"), headers=headers)
    assert r.status_code == 201, r.text
    p = dict(r.json())
    if not driver.asynchronous:
        return p
    assert (p["status"], p["payment_method_details"]) == ("requires_action", None)
    if via == "webhook":
        hook_headers, body = driver.success_webhook(p)
        r = await client.post(driver.webhook_path(hook_headers), content=body, headers=hook_headers)
        assert r.status_code == 200, r.text
    else:
        driver.mock_fetch(router, p, "succeeded")
        r = await client.post(f"/v1/payments/{p['id']}/sync", headers=merchant.auth)
        assert r.status_code == 200, r.text

    async def succeeded() -> bool:
        return bool((await get(client, merchant, f"/v1/payments/{p['id']}"))["status"] == "succeeded")

    await wait_for(succeeded)
    return await get(client, merchant, f"/v1/payments/{p['id']}")


def _without_merchant_input(data: dict[str, Any]) -> dict[str, Any]:
    """An event's payment without what echoes the merchant's own request (customer.phone, and the
    prompt's phone in next_action): what is left is what the gateway itself said."""
    return {**data, "customer": {**data["customer"], "phone": None}, "next_action": None}


@pytest.mark.parametrize("via", ["webhook", "query"])
async def test_a_paid_payment_says_how_it_was_paid(
    client: httpx.AsyncClient,
    merchant: Merchant,
    gateway: Gateway,
    driver: Driver,
    provider_http: respx.Router,
    via: str,
) -> None:
    if not driver.asynchronous and via == "query":
        pytest.skip(f"{driver.name} answers at once: nothing to query")
    if via == "query" and driver.name in NO_QUERY:
        pytest.skip(NO_QUERY[driver.name])
    p = await pay(client, merchant, driver, provider_http, via)
    expected = driver.method_details(p, via)
    assert p["payment_method_details"] == expected

    events = (await get(client, merchant, f"/v1/payments/{p['id']}/events?limit=100"))["data"]
    by_type = {e["type"]: e["data"]["object"] for e in events}
    assert by_type["payment.succeeded"]["payment_method_details"] == expected
    assert by_type["payment.created"]["payment_method_details"] is None

    rows = await gateway.ctx.db.fetch("SELECT type, data FROM events WHERE payment_id = $1", p["id"])
    assert sorted(r["type"] for r in rows) == sorted(e["type"] for e in events)
    said = orjson.dumps([_without_merchant_input(r["data"]) for r in rows]).decode()
    for number in driver.full_numbers(p):
        # In any format: the last nine digits (a national number) are already too much.
        assert number[-9:] not in said, f"{number} in an event"


# --- answered in process: the sandbox and cash -------------------------------------------------------


def sandbox_card(last4: str) -> dict[str, Any]:
    return {
        "type": "card",
        "brand": "visa",
        "last4": last4,
        "exp_month": 12,
        "exp_year": 2034,
        "funding": "credit",
        "country": "US",
    }


@pytest.mark.parametrize(
    ("method", "status", "last4"),
    [("pm_success", 201, "4242"), ("pm_card_declined", 402, "0002"), ("pm_insufficient_funds", 402, "9995")],
)
async def test_the_sandbox_pays_with_test_cards_merchants_can_print(
    client: httpx.AsyncClient, merchant: Merchant, method: str, status: int, last4: str
) -> None:
    r = await client.post(
        "/v1/payments",
        json={"amount": 1_500, "currency": "KES", "provider": "sandbox", "payment_method": method},
        headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert r.status_code == status, r.text
    p = r.json() if status == 201 else r.json()["payment"]
    assert p["payment_method_details"] == sandbox_card(last4)
    assert (await get(client, merchant, f"/v1/payments/{p['id']}"))["payment_method_details"] == sandbox_card(
        last4
    )


async def test_a_sandbox_payment_waiting_for_its_customer_has_no_details_yet(
    client: httpx.AsyncClient, merchant: Merchant
) -> None:
    r = await client.post(
        "/v1/payments",
        json={"amount": 1_500, "currency": "KES", "provider": "sandbox", "payment_method": "pm_action_never"},
        headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert (r.status_code, r.json()["status"], r.json()["payment_method_details"]) == (
        201,
        "requires_action",
        None,
    )


@pytest.mark.parametrize(("method", "till"), [("till-3", "till-3"), (None, None)])
async def test_cash_names_its_till_when_the_merchant_does(
    client: httpx.AsyncClient, merchant: Merchant, method: str | None, till: str | None
) -> None:
    body = {"amount": 20_000, "currency": "UGX", "provider": "cash"} | (
        {"payment_method": method} if method else {}
    )
    r = await client.post(
        "/v1/payments", json=body, headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())}
    )
    assert r.status_code == 201, r.text
    assert r.json()["payment_method_details"] == {"type": "cash", "till": till}


# --- the providers' values, mapped (pure) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "brand"),
    [
        ("visa ", "visa"),
        ("VISA", "visa"),
        ("Mastercard", "mastercard"),
        ("MASTERCARD  CREDIT", "mastercard"),
        ("American Express", "amex"),
        ("VERVE", "verve"),
        ("cartes_bancaires", "cartes_bancaires"),
        ("", None),
        (None, None),
    ],
)
def test_card_brands_in_our_words(raw: Any, brand: str | None) -> None:
    assert details.card_brand(raw) == brand


def test_only_the_last_four_digits_are_ever_kept() -> None:
    assert details.last4(254708374149) == "4149"
    assert details.last4("408408******4081") == "4081"
    assert details.last4("+254 708 374 149") == "4149"
    assert details.last4("12") is None
    card = details.Card.of(
        number="4242 4242 4242 4242", exp_month="12", exp_year="34", country_code="NIGERIA NG"
    )
    assert (card.last4, card.exp_month, card.exp_year, card.country) == ("4242", 12, 2034, "NG")
    assert details.details_json(
        details.MobileMoney.of(operator="mtn", phone="46733123450", receipt=23503452)
    ) == {
        "type": "mobile_money",
        "operator": "mtn",
        "phone_last4": "3450",
        "receipt": "23503452",
    }


def test_flutterwave_cards_with_the_brand_in_issuer() -> None:
    # Some payloads put the funding in `type` and the brand in `issuer` (docs/providers/flutterwave.md).
    card = {
        "first_6digits": "232343",
        "last_4digits": "4567",
        "issuer": "VISA",
        "country": "NG",
        "type": "DEBIT",
        "expiry": "02/23",
    }
    assert flutterwave.card_details({"card": card}) == details.Card(
        brand="visa", last4="4567", exp_month=2, exp_year=2023, funding="debit", country="NG"
    )
    assert flutterwave.card_details({"payment_type": "mobilemoneyuganda"}) is None


def test_paystack_mobile_money_and_other_channels() -> None:
    momo = {
        "channel": "mobile_money",
        "authorization": {
            "channel": "mobile_money",
            "bank": "MTN",
            "last4": "4987",
            "brand": "Mtn",
            "card_type": "",
            "bin": "055XXX",
        },
    }
    assert paystack.method_details(momo) == details.MobileMoney(
        operator="mtn", phone_last4="4987", receipt=None
    )
    bank = {"channel": "bank", "authorization": {"channel": "bank", "bank": "Zenith Bank", "last4": "X123"}}
    assert paystack.method_details(bank) is None
