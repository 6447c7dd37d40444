"""A merchant's own M-Pesa account pays out through its own B2C operator and receives its Results at
its own callback URL; without B2C credentials it cannot pay out (nothing stored or sent)."""

from __future__ import annotations

import json

import httpx
import respx

from payouts.daraja import daraja, payout_body, result
from payouts.helpers import key, payout_events
from provider_account_data import credentials
from support import Gateway, Merchant, assert_problem, wait_for

B2C_CREDENTIALS = {
    "b2c_shortcode": "600888",
    "b2c_initiator_name": "merchantapi",
    "b2c_security_credential": "bWVyY2hhbnQtZW5jcnlwdGVkLWluaXRpYXRvci1wYXNzd29yZA==",
}


async def own_account(client: httpx.AsyncClient, merchant: Merchant, **extra: str) -> dict[str, object]:
    r = await client.put(
        "/v1/provider-accounts/mpesa",
        json={"credentials": {**credentials("mpesa"), **extra}},
        headers=merchant.auth,
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_a_merchants_own_account_pays_out_with_its_own_operator(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, provider_http: respx.Router
) -> None:
    route = daraja(provider_http)
    account = await own_account(client, merchant, **B2C_CREDENTIALS)
    r = await client.post("/v1/payouts", json=payout_body(), headers={**merchant.auth, **key()})
    assert r.status_code == 201, r.text
    p = r.json()
    sent = json.loads(route.calls.last.request.content)
    assert (sent["PartyA"], sent["InitiatorName"], sent["SecurityCredential"]) == (
        "600888",
        "merchantapi",
        B2C_CREDENTIALS["b2c_security_credential"],
    )
    assert sent["ResultURL"] == account["webhook_url"]
    stored = await gateway.scalar("SELECT provider_account_id FROM payouts WHERE id = :id", id=p["id"])
    assert stored == account["id"]
    # The Result comes to the account's own URL and settles the payout.
    path = str(account["webhook_url"]).split("/v1/", 1)[1]
    answer = await client.post(
        f"/v1/{path}",
        content=result(p["id"], p["provider_reference"]),
        headers={"content-type": "application/json"},
    )
    assert answer.status_code == 200, answer.text

    async def settled() -> bool:
        got = await client.get(f"/v1/payouts/{p['id']}", headers=merchant.auth)
        return bool(got.json()["status"] == "succeeded")

    await wait_for(settled)
    assert await payout_events(gateway, p["id"]) == [
        ("payout.created", "api"),
        ("payout.succeeded", "webhook"),
    ]


async def test_an_account_without_b2c_credentials_cannot_pay_out(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, provider_http: respx.Router
) -> None:
    route = daraja(provider_http)
    await own_account(client, merchant)
    r = await client.post("/v1/payouts", json=payout_body(), headers={**merchant.auth, **key()})
    assert_problem(r, 422, "provider_not_configured")
    assert route.call_count == 0
    assert await gateway.scalar("SELECT count(*) FROM payouts WHERE merchant_id = :m", m=merchant.id) == 0


async def test_b2c_credentials_go_together(client: httpx.AsyncClient, merchant: Merchant) -> None:
    r = await client.put(
        "/v1/provider-accounts/mpesa",
        json={"credentials": {**credentials("mpesa"), "b2c_shortcode": "600888"}},
        headers=merchant.auth,
    )
    assert r.status_code == 422, r.text
