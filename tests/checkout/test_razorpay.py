"""Razorpay on the hosted checkout: offered for INR, its Hosted Checkout reached by the form the page
shows (a redirect cannot post), and Razorpay posting the customer back moves nothing."""

from __future__ import annotations

import html
import re
import uuid
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import respx

from drivers.razorpay import CHECKOUT_URL, RAZORPAY_API, RAZORPAY_KEY_ID, order
from support import Gateway, Merchant

RETURN = "https://shop.example/orders/42"


async def create(client: httpx.AsyncClient, merchant: Merchant, currency: str) -> dict[str, Any]:
    body = {
        "amount": 49_900,
        "currency": currency,
        "return_url": RETURN,
        "customer": {"email": "gaurav.kumar@example.com"},
    }
    r = await client.post(
        "/v1/payments", json=body, headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())}
    )
    assert r.status_code == 201, r.text
    payment: dict[str, Any] = r.json()
    return payment


def path_of(payment: dict[str, Any]) -> str:
    return str(urlsplit(payment["checkout_url"]).path)


def methods_of(page: str) -> set[str]:
    return set(re.findall(r'name="method" value="([a-z]+)"', page))


async def test_razorpay_is_offered_for_inr_only(client: httpx.AsyncClient, merchant: Merchant) -> None:
    inr = await create(client, merchant, "INR")
    page = await client.get(path_of(inr))
    assert page.status_code == 200
    assert "razorpay" in methods_of(page.text)
    assert "Card, UPI or netbanking (Razorpay)" in page.text
    kes = await create(client, merchant, "KES")
    assert "razorpay" not in methods_of((await client.get(path_of(kes))).text)


async def test_confirm_shows_the_hosted_checkout_form_and_a_callback_post_moves_nothing(
    client: httpx.AsyncClient, merchant: Merchant, gateway: Gateway, provider_http: respx.Router
) -> None:
    sent: list[dict[str, Any]] = []

    def orders(req: httpx.Request) -> httpx.Response:
        body = orjson.loads(req.content)
        sent.append(body)
        return httpx.Response(200, json=order("order_CheckoutForm01", body["amount"], "INR", body["receipt"]))

    route = provider_http.post(f"{RAZORPAY_API}/v1/orders").mock(side_effect=orders)
    payment = await create(client, merchant, "INR")
    page = await client.get(path_of(payment))
    token = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page.text)
    assert token is not None
    r = await client.post(path_of(payment), data={"csrf_token": token.group(1), "method": "razorpay"})
    # Not a redirect to Razorpay (that would be a GET): back to the page, which holds the form.
    assert (r.status_code, r.headers["location"]) == (303, path_of(payment))
    assert route.call_count == 1
    assert sent[0] == {
        "amount": 49_900,
        "currency": "INR",
        "receipt": payment["id"],
        "notes": {"gateway_payment_id": payment["id"]},
    }
    shown = await client.get(path_of(payment))
    assert 'data-state="redirect"' in shown.text
    form = re.search(
        r'<form method="post" action="([^"]+)" class="redirect-form">(.*?)</form>', shown.text, re.S
    )
    assert form is not None
    assert html.unescape(form.group(1)) == CHECKOUT_URL
    fields = {
        html.unescape(k): html.unescape(v)
        for k, v in re.findall(r'name="([^"]+)" value="([^"]*)"', form.group(2))
    }
    callback = gateway.ctx.settings.base_url + path_of(payment)
    assert fields == {
        "key_id": RAZORPAY_KEY_ID,
        "order_id": "order_CheckoutForm01",
        "name": "Gateway Test Shop",
        "prefill[email]": "gaurav.kumar@example.com",
        "callback_url": callback,
        "cancel_url": callback,
    }
    # The CSP lets the form go to Razorpay (form-action 'self' https:) and runs no script of theirs.
    csp = shown.headers["content-security-policy"]
    assert "form-action 'self' https:" in csp
    assert "razorpay" not in csp

    # Razorpay posts the customer back with its ids and signature: the page is shown, nothing moves.
    back = await client.post(
        path_of(payment),
        data={
            "razorpay_payment_id": "pay_29QQoUBi66xm2f",
            "razorpay_order_id": "order_CheckoutForm01",
            "razorpay_signature": "0" * 64,
        },
    )
    assert (back.status_code, back.headers["location"]) == (303, path_of(payment))
    got = await client.get(f"/v1/payments/{payment['id']}", headers=merchant.auth)
    assert got.json()["status"] == "requires_action"
    assert route.call_count == 1
