"""Paystack payouts end to end: POST /v1/payouts (recipient, then transfer), the signed transfer.*
webhook applied as proof (once), the reconciler's verify after a lost answer (the transfer never sent
twice), and an OTP-enabled account refused. Paystack is answered as it answers (payouts/paystack_fake.py).
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import respx

from drivers.paystack import sign
from payouts.helpers import body, create, created, key, payout_events, reconcile
from payouts.paystack_fake import VERIFY, FakeTransfers
from support import Gateway, Merchant


def paystack_body(**over: Any) -> dict[str, Any]:
    payload = body(amount=500_000, currency="NGN", provider="paystack", **over)
    payload["destination"] = {
        "type": "bank_account",
        "account_number": "0123456789",
        "bank_code": "058",
        "name": "Adaeze Okafor",
    }
    return payload


async def payout(client: httpx.AsyncClient, merchant: Merchant, payout_id: str) -> dict[str, Any]:
    r = await client.get(f"/v1/payouts/{payout_id}", headers=merchant.auth)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_a_signed_transfer_success_settles_the_payout_once(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, provider_http: respx.Router
) -> None:
    fake = FakeTransfers(provider_http)
    p = await created(client, merchant, paystack_body())
    kept = fake.transfers[f"{p['id']}-test"]
    assert (p["status"], p["provider_reference"]) == ("pending", kept.code)
    assert (fake.recipient.call_count, fake.transfer.call_count) == (1, 1)

    event = orjson.dumps(kept.event("transfer.success"))
    r = await client.post("/v1/webhooks/paystack", content=event, headers=sign(event))
    assert r.status_code == 200, r.text
    # Signed with the secret key: proof, applied as it is stored, before the answer.
    assert (await payout(client, merchant, p["id"]))["status"] == "succeeded"
    assert fake.verify.call_count == 0

    again = await client.post("/v1/webhooks/paystack", content=event, headers=sign(event))
    assert again.status_code == 200
    assert await payout_events(gateway, p["id"]) == [
        ("payout.created", "api"),
        ("payout.succeeded", "webhook"),
    ]
    stored = await gateway.scalar(
        "SELECT count(*) FROM inbound_webhooks "
        "WHERE provider = 'paystack' AND payload->'data'->>'reference' = :r",
        r=f"{p['id']}-test",
    )
    assert stored == 1
    assert fake.transfer.call_count == 1


async def test_a_reversed_transfer_fails_the_payout(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, provider_http: respx.Router
) -> None:
    fake = FakeTransfers(provider_http)
    p = await created(client, merchant, paystack_body())
    event = orjson.dumps(fake.transfers[f"{p['id']}-test"].event("transfer.reversed"))
    assert (await client.post("/v1/webhooks/paystack", content=event, headers=sign(event))).status_code == 200
    got = await payout(client, merchant, p["id"])
    assert (got["status"], got["failure_code"]) == ("failed", "transfer_reversed")


async def test_a_lost_transfer_answer_is_verified_never_resent(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, provider_http: respx.Router
) -> None:
    fake = FakeTransfers(provider_http)

    def lost(request: httpx.Request) -> httpx.Response:
        fake._transfer(request)  # Paystack queued it; the answer never came back
        raise httpx.ReadTimeout("timed out")

    fake.transfer.mock(side_effect=lost)
    headers = key()
    r = await create(client, merchant, paystack_body(), headers)
    assert r.status_code == 201, r.text
    p = r.json()
    assert (p["status"], p["submitted_at"] is not None) == ("pending", True)
    replay = await create(client, merchant, paystack_body(), headers)
    assert replay.json()["id"] == p["id"]
    assert (fake.recipient.call_count, fake.transfer.call_count) == (1, 1)

    await reconcile(gateway, p["id"])  # still pending at Paystack
    assert (await payout(client, merchant, p["id"]))["status"] == "pending"
    fake.transfers[f"{p['id']}-test"].status = "success"
    await reconcile(gateway, p["id"])
    got = await payout(client, merchant, p["id"])
    assert (got["status"], got["provider_reference"]) == ("succeeded", fake.transfers[f"{p['id']}-test"].code)
    assert str(fake.verify.calls.last.request.url) == f"{VERIFY}/{p['id']}-test"
    assert (fake.recipient.call_count, fake.transfer.call_count, fake.verify.call_count) == (1, 1, 2)
    assert await payout_events(gateway, p["id"]) == [
        ("payout.created", "api"),
        ("payout.succeeded", "reconciler"),
    ]


async def test_an_otp_enabled_account_fails_the_payout_clearly(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    fake = FakeTransfers(provider_http)
    fake.initial = "otp"
    p = await created(client, merchant, paystack_body())
    assert (p["status"], p["failure_code"]) == ("failed", "transfers_otp_enabled")
    assert "disable the transfers OTP" in p["failure_message"]


async def test_a_recipient_without_a_name_is_refused_before_anything_is_stored(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, provider_http: respx.Router
) -> None:
    fake = FakeTransfers(provider_http)
    nameless = paystack_body()
    del nameless["destination"]["name"]
    r = await create(client, merchant, nameless)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "invalid_destination"
    assert (fake.recipient.call_count, fake.transfer.call_count) == (0, 0)
    assert await gateway.scalar("SELECT count(*) FROM payouts WHERE merchant_id = :m", m=merchant.id) == 0
