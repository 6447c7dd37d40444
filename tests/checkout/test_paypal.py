"""PayPal on the hosted checkout: offered for the currencies it takes, and picking it sends the
customer to PayPal's approval page with the checkout page as where PayPal sends them back."""

from __future__ import annotations

import re
import uuid
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import respx

from fakes.paypal import FakePaypal
from support import Gateway, Merchant

RETURN = "https://shop.example/orders/42"


async def create(client: httpx.AsyncClient, merchant: Merchant, **body: Any) -> dict[str, Any]:
    body = {"amount": 150_000, "currency": "USD", "return_url": RETURN, **body}
    r = await client.post(
        "/v1/payments", json=body, headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())}
    )
    assert r.status_code == 201, r.text
    payment: dict[str, Any] = r.json()
    return payment


def path_of(payment: dict[str, Any]) -> str:
    return str(urlsplit(payment["checkout_url"]).path)


async def page(client: httpx.AsyncClient, payment: dict[str, Any]) -> tuple[list[str], str]:
    r = await client.get(path_of(payment))
    assert r.status_code == 200
    token = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', r.text)
    assert token is not None
    return re.findall(r'name="method" value="([a-z]+)"', r.text), token.group(1)


async def test_paypal_is_offered_for_its_currencies_only(
    client: httpx.AsyncClient, merchant: Merchant
) -> None:
    usd, _ = await page(client, await create(client, merchant))
    assert "paypal" in usd
    jpy, _ = await page(client, await create(client, merchant, currency="JPY", amount=5_000))
    assert "paypal" in jpy
    kes, _ = await page(client, await create(client, merchant, currency="KES"))
    assert "paypal" not in kes
    assert "mpesa" in kes


async def test_picking_paypal_redirects_to_its_approval_page_and_back_to_the_checkout(
    client: httpx.AsyncClient, merchant: Merchant, gateway: Gateway, provider_http: respx.Router
) -> None:
    fake = FakePaypal()
    routes = fake.install(provider_http)
    payment = await create(client, merchant)
    _, token = await page(client, payment)
    r = await client.post(path_of(payment), data={"csrf_token": token, "method": "paypal"})
    assert r.status_code == 303, r.text
    order = fake.order_of(payment["id"])
    assert order is not None
    assert r.headers["location"] == f"https://www.sandbox.paypal.com/checkoutnow?token={order.id}"
    sent = orjson.loads(routes["create"].calls.last.request.content)
    context = sent["payment_source"]["paypal"]["experience_context"]
    back = gateway.ctx.settings.base_url + path_of(payment)
    assert (context["return_url"], context["cancel_url"]) == (back, back)
    assert RETURN not in orjson.dumps(sent).decode()
    assert sent["purchase_units"][0]["amount"] == {"currency_code": "USD", "value": "1500.00"}
