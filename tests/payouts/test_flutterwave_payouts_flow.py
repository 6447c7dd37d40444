"""Flutterwave payouts end to end: POST /v1/payouts, transfer.completed webhooks as hints (Flutterwave's
own answer is what is applied, once), and the reconciler's status query after a lost answer (the
transfer never sent twice). Flutterwave is answered as it answers (payouts/flutterwave_fake.py).
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import respx

from payouts.flutterwave_fake import TRANSFERS, FakeTransfers, verif_hash
from payouts.helpers import body, create, created, key, payout_events, reconcile
from provider_account_data import credentials
from support import FLUTTERWAVE_SECRET_KEY, Gateway, Merchant, wait_for


def flutterwave_body(**over: Any) -> dict[str, Any]:
    return body("+254712345678", amount=120_000, currency="KES", provider="flutterwave", **over)


async def payout(client: httpx.AsyncClient, merchant: Merchant, payout_id: str) -> dict[str, Any]:
    r = await client.get(f"/v1/payouts/{payout_id}", headers=merchant.auth)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_a_webhook_is_a_hint_flutterwaves_answer_settles_the_payout_once(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, provider_http: respx.Router
) -> None:
    fake = FakeTransfers(provider_http)
    p = await created(client, merchant, flutterwave_body())
    kept = fake.transfers[p["id"]]
    assert (p["status"], p["provider_reference"]) == ("pending", str(kept.id))
    sent = fake.create.calls.last.request
    assert sent.headers["authorization"] == f"Bearer {FLUTTERWAVE_SECRET_KEY}"  # the test-mode key

    kept.status = "SUCCESSFUL"
    done = kept.webhook()
    r = await client.post("/v1/webhooks/flutterwave", content=done, headers=verif_hash())
    assert r.status_code == 200

    async def succeeded() -> bool:
        return bool((await payout(client, merchant, p["id"]))["status"] == "succeeded")

    await wait_for(succeeded)
    assert str(fake.by_id.calls.last.request.url) == f"{TRANSFERS}/{kept.id}"
    queried = fake.by_id.call_count
    again = await client.post("/v1/webhooks/flutterwave", content=done, headers=verif_hash())
    assert again.status_code == 200
    assert await payout_events(gateway, p["id"]) == [
        ("payout.created", "api"),
        ("payout.succeeded", "webhook"),
    ]
    assert fake.by_id.call_count == queried
    assert fake.create.call_count == 1


async def test_a_webhook_flutterwave_does_not_confirm_moves_nothing(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, provider_http: respx.Router
) -> None:
    fake = FakeTransfers(provider_http)
    p = await created(client, merchant, flutterwave_body())
    kept = fake.transfers[p["id"]]
    kept.status = "SUCCESSFUL"
    claim = kept.webhook()  # what a holder of the static verif-hash could send
    kept.status = "NEW"
    r = await client.post("/v1/webhooks/flutterwave", content=claim, headers=verif_hash())
    assert r.status_code == 200, r.text

    async def outcome() -> str | None:
        found = await gateway.scalar(
            "SELECT outcome FROM inbound_webhooks WHERE provider = 'flutterwave' AND provider_event_id = :e",
            e=f"transfer.completed:{kept.id}:SUCCESSFUL",
        )
        return str(found) if found is not None else None

    async def processed() -> bool:
        return await outcome() is not None

    await wait_for(processed)
    assert await outcome() == "no_change"
    assert fake.by_id.call_count == 1  # asked Flutterwave, which still says NEW
    assert (await payout(client, merchant, p["id"]))["status"] == "pending"
    assert await payout_events(gateway, p["id"]) == [("payout.created", "api")]


async def test_a_lost_answer_is_never_resent_the_reconciler_finds_it_by_reference(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, provider_http: respx.Router
) -> None:
    fake = FakeTransfers(provider_http)

    def lost(request: httpx.Request) -> httpx.Response:
        fake._create(request)
        raise httpx.ReadTimeout("timed out")

    fake.create.mock(side_effect=lost)
    headers = key()
    r = await create(client, merchant, flutterwave_body(), headers)
    assert r.status_code == 201, r.text
    p = r.json()
    assert (p["status"], p["provider_reference"]) == ("pending", None)
    assert (await create(client, merchant, flutterwave_body(), headers)).json()["id"] == p["id"]

    kept = fake.transfers[p["id"]]
    kept.status, kept.complete_message = "FAILED", "DISBURSE FAILED: Unable to obtain user details"
    await reconcile(gateway, p["id"])
    got = await payout(client, merchant, p["id"])
    assert (got["status"], got["failure_code"], got["failure_message"]) == (
        "failed",
        "transfer_failed",
        "DISBURSE FAILED: Unable to obtain user details",
    )
    assert got["provider_reference"] == str(kept.id)
    assert fake.listed.calls.last.request.url.params["reference"] == p["id"]
    assert fake.create.call_count == 1
    assert await payout_events(gateway, p["id"]) == [
        ("payout.created", "api"),
        ("payout.failed", "reconciler"),
    ]


async def test_a_destination_without_an_operator_is_refused_before_anything_is_stored(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, provider_http: respx.Router
) -> None:
    fake = FakeTransfers(provider_http)
    ghana = body("+233241234567", amount=5_000, currency="GHS", provider="flutterwave")
    r = await create(client, merchant, ghana)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "invalid_destination"
    assert fake.create.call_count == 0
    assert await gateway.scalar("SELECT count(*) FROM payouts WHERE merchant_id = :m", m=merchant.id) == 0


async def test_a_merchants_own_account_pays_out_with_its_key_and_sender(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    fake = FakeTransfers(provider_http)
    creds = credentials("flutterwave")
    settings = {
        "transfer_sender": "Duka Ltd",
        "transfer_sender_country": "KE",
        "transfer_sender_mobile": "254700111222",
    }
    r = await client.put(
        "/v1/provider-accounts/flutterwave",
        json={"credentials": creds, "settings": settings},
        headers=merchant.auth,
    )
    assert r.status_code in (200, 201), r.text
    assert r.json()["settings"] == settings
    bad = await client.put(
        "/v1/provider-accounts/flutterwave",
        json={"credentials": creds, "settings": {"transfer_sender_country": "Kenya"}},
        headers=merchant.auth,
    )
    assert bad.status_code == 422, bad.text

    p = await created(client, merchant, flutterwave_body())
    sent = fake.create.calls.last.request
    assert sent.headers["authorization"] == f"Bearer {creds['secret_key']}"
    assert json.loads(sent.content)["meta"] == {
        "sender": "Duka Ltd",
        "sender_country": "KE",
        "mobile_number": "254700111222",
    }
    assert p["status"] == "pending"
