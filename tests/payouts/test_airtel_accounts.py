"""A merchant's own Airtel Money application pays out with its own encrypted PIN (a sealed credential);
a plain PIN is refused, and without a PIN the account takes payments but cannot pay out (nothing stored
or sent)."""

from __future__ import annotations

import json

import httpx
import respx

from payouts.airtel_fake import ENCRYPTED_PIN, PAYEE, PLAIN_PIN, FakeDisbursements, decrypt_pin
from payouts.helpers import body, key
from provider_account_data import credentials
from support import Gateway, Merchant, assert_problem


async def own_account(
    client: httpx.AsyncClient, merchant: Merchant, creds: dict[str, str] | None = None, **extra: str
) -> httpx.Response:
    return await client.put(
        "/v1/provider-accounts/airtel",
        json={"credentials": {**(creds or credentials("airtel")), **extra}, "settings": {"country": "UG"}},
        headers=merchant.auth,
    )


def airtel_body() -> dict[str, object]:
    return body(PAYEE, amount=5_000, currency="UGX", provider="airtel")


async def test_a_merchants_own_account_pays_out_with_its_own_pin(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, provider_http: respx.Router
) -> None:
    fake = FakeDisbursements(provider_http)
    creds = credentials("airtel")
    r = await own_account(client, merchant, creds, disbursement_pin=ENCRYPTED_PIN)
    assert r.status_code == 200, r.text
    account = r.json()
    assert ENCRYPTED_PIN[:24] not in r.text
    p = await client.post("/v1/payouts", json=airtel_body(), headers={**merchant.auth, **key()})
    assert p.status_code == 201, p.text
    assert p.json()["status"] == "succeeded"
    sent = json.loads(fake.disburse.calls.last.request.content)
    assert decrypt_pin(sent["pin"]) == PLAIN_PIN
    assert sent["pin"] == ENCRYPTED_PIN
    token = json.loads(fake.token.calls.last.request.content)
    assert token["client_id"] == creds["client_id"]  # the account's own application, not the deployment's
    stored = await gateway.scalar("SELECT provider_account_id FROM payouts WHERE id = :id", id=p.json()["id"])
    assert stored == account["id"]
    assert fake.disburse.call_count == 1


async def test_a_plain_pin_is_refused(client: httpx.AsyncClient, merchant: Merchant) -> None:
    r = await own_account(client, merchant, disbursement_pin=PLAIN_PIN)
    assert r.status_code == 422, r.text
    assert PLAIN_PIN not in json.dumps(r.json().get("errors", []))


async def test_an_account_without_a_pin_cannot_pay_out(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, provider_http: respx.Router
) -> None:
    fake = FakeDisbursements(provider_http)
    r = await own_account(client, merchant)
    assert r.status_code == 200, r.text
    p = await client.post("/v1/payouts", json=airtel_body(), headers={**merchant.auth, **key()})
    assert_problem(p, 422, "provider_not_configured")
    assert (fake.token.call_count, fake.disburse.call_count) == (0, 0)
    assert await gateway.scalar("SELECT count(*) FROM payouts WHERE merchant_id = :m", m=merchant.id) == 0
