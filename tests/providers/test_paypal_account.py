"""A merchant's own PayPal account (PUT /v1/provider-accounts/paypal): its payments use its REST app,
and its webhooks are verified with its own webhook id, on its own URL."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import httpx
import respx

from fakes.paypal import CLIENT_ID, FakePaypal, event
from support import Gateway, Merchant, assert_problem, wait_for

OWN = {
    "client_id": "AZ-merchant-a-client-id-0123456789",
    "client_secret": "EK-merchant-a-secret-9876543210",
    "webhook_id": "8PT597110X687430LKGECATA",
}


async def test_a_merchants_paypal_account_pays_through_its_app_and_verifies_with_its_webhook_id(
    gateway: Gateway, client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    r = await client.put("/v1/provider-accounts/paypal", json={"credentials": OWN}, headers=merchant.auth)
    assert r.status_code == 200, r.text
    account: dict[str, Any] = r.json()
    url = f"/v1/webhooks/paypal/{account['id']}"
    assert account["webhook_url"] == gateway.base_url + url
    assert OWN["client_secret"] not in r.text

    fake = FakePaypal()
    fake.webhook_ids.add(OWN["webhook_id"])
    routes = fake.install(provider_http)
    created = await client.post(
        "/v1/payments",
        json={"amount": 2_500, "currency": "EUR", "provider": "paypal"},
        headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert created.status_code == 201, created.text
    p = created.json()
    basic = "Basic " + base64.b64encode(f"{OWN['client_id']}:{OWN['client_secret']}".encode()).decode()
    assert routes["token"].calls.last.request.headers["Authorization"] == basic
    assert CLIENT_ID not in str([c.request.headers for c in routes["token"].calls])

    order = fake.settle(p, "APPROVED")
    approved = event("CHECKOUT.ORDER.APPROVED", "checkout-order", order.body())
    # Sent to the deployment's subscription, posted on the account's URL: PayPal says FAILURE for
    # the account's webhook id; nothing stored.
    headers, body = fake.deliver(approved)
    assert_problem(await client.post(url, content=body, headers=headers), 401, "webhook_signature_invalid")
    assert asked_webhook_id(routes) == OWN["webhook_id"]
    # The account's own subscription: verified, the order captured through the account's app.
    headers, body = fake.deliver(approved, OWN["webhook_id"])
    assert (await client.post(url, content=body, headers=headers)).status_code == 200

    async def succeeded() -> bool:
        r = await client.get(f"/v1/payments/{p['id']}", headers=merchant.auth)
        return bool(r.json()["status"] == "succeeded")

    await wait_for(succeeded)
    assert routes["capture"].call_count == 1
    stored = await gateway.scalar(
        "SELECT count(*) FROM inbound_webhooks WHERE provider = 'paypal' AND account_id = :a", a=account["id"]
    )
    assert stored == 1


def asked_webhook_id(routes: dict[str, respx.Route]) -> str:
    return str(json.loads(routes["verify"].calls.last.request.content)["webhook_id"])
