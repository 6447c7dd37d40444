"""MoMo payouts end to end: POST /v1/payouts through MoMo Disbursement, its unsigned callback (a hint:
the status GET is asked and applied), the reconciler's status query after a lost answer, and what
is refused before anything is stored or sent. MoMo is answered as it answers (payouts/momo_fake.py).
"""

from __future__ import annotations

import json

import httpx
import orjson
import respx

from payouts.helpers import body, create, created, key, payout_events, reconcile, status_of
from payouts.momo_fake import PAYEE, TRANSFER, FakeDisbursement, reference_id
from support import MOMO_CALLBACK_TOKEN, Gateway, Merchant, wait_for


def momo_body(**over: object) -> dict[str, object]:
    return body(PAYEE, amount=5_000, currency="EUR", provider="momo", **over)


async def test_a_callback_is_a_hint_the_status_query_settles_the_payout_once(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, provider_http: respx.Router
) -> None:
    fake = FakeDisbursement(provider_http)
    p = await created(client, merchant, momo_body())
    ref = reference_id(p["id"])
    assert (p["status"], p["provider_reference"], p["submitted_at"] is not None) == ("pending", ref, True)
    assert fake.transfer.call_count == 1
    sent = fake.transfer.calls.last.request
    assert (str(sent.url), sent.headers["x-reference-id"]) == (TRANSFER, ref)
    assert json.loads(sent.content)["externalId"] == p["id"]

    fake.transfers[ref].status = "SUCCESSFUL"
    callback = orjson.dumps(fake.transfers[ref].status_body())
    headers = {"content-type": "application/json"}
    asked = fake.status.call_count
    r = await client.put(f"/v1/webhooks/momo/{MOMO_CALLBACK_TOKEN}", content=callback, headers=headers)
    assert (r.status_code, r.json()) == (200, {"received": True})

    async def succeeded() -> bool:
        return await status_of(client, merchant, p["id"]) == "succeeded"

    await wait_for(succeeded)
    assert fake.status.call_count == asked + 1  # the callback's word was checked with MoMo
    assert await payout_events(gateway, p["id"]) == [
        ("payout.created", "api"),
        ("payout.succeeded", "webhook"),
    ]

    # The same callback again: acknowledged, stored once, nothing asked or moved.
    again = await client.put(f"/v1/webhooks/momo/{MOMO_CALLBACK_TOKEN}", content=callback, headers=headers)
    assert again.status_code == 200
    stored = await gateway.scalar(
        "SELECT count(*) FROM inbound_webhooks WHERE provider = 'momo' AND payload->>'externalId' = :id",
        id=p["id"],
    )
    assert stored == 1
    assert fake.status.call_count == asked + 1
    assert len(await payout_events(gateway, p["id"])) == 2
    assert fake.transfer.call_count == 1


async def test_a_lost_answer_is_never_resent_the_reconciler_asks(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, provider_http: respx.Router
) -> None:
    fake = FakeDisbursement(provider_http)

    def lost(request: httpx.Request) -> httpx.Response:
        fake._transfer(request)  # MoMo took it; the answer never came back
        raise httpx.ReadTimeout("timed out")

    fake.transfer.mock(side_effect=lost)
    headers = key()
    r = await create(client, merchant, momo_body(), headers)
    assert r.status_code == 201, r.text
    p = r.json()
    assert (p["status"], p["submitted_at"] is not None, p["provider_reference"]) == ("pending", True, None)

    # The merchant's retry with the same key answers the stored payout; nothing goes to MoMo again.
    replay = await create(client, merchant, momo_body(), headers)
    assert (replay.status_code, replay.json()["id"]) == (201, p["id"])
    assert fake.transfer.call_count == 1

    fake.transfers[reference_id(p["id"])].status = "SUCCESSFUL"
    await reconcile(gateway, p["id"])
    assert await status_of(client, merchant, p["id"]) == "succeeded"
    assert str(fake.status.calls.last.request.url) == f"{TRANSFER}/{reference_id(p['id'])}"
    assert fake.transfer.call_count == 1
    assert await payout_events(gateway, p["id"]) == [
        ("payout.created", "api"),
        ("payout.succeeded", "reconciler"),
    ]


async def test_pending_then_failed_by_the_status_query(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, provider_http: respx.Router
) -> None:
    fake = FakeDisbursement(provider_http)
    p = await created(client, merchant, momo_body())
    await reconcile(gateway, p["id"])
    assert await status_of(client, merchant, p["id"]) == "pending"
    kept = fake.transfers[reference_id(p["id"])]
    kept.status, kept.reason = "FAILED", "PAYEE_NOT_FOUND"
    await reconcile(gateway, p["id"])
    got = (await client.get(f"/v1/payouts/{p['id']}", headers=merchant.auth)).json()
    assert (got["status"], got["failure_code"]) == ("failed", "recipient_not_found")
    assert fake.transfer.call_count == 1


async def test_a_payee_momo_refuses_at_once_is_a_failed_payout(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    fake = FakeDisbursement(provider_http)
    fake.outcome = ("FAILED", "NOT_ENOUGH_FUNDS")
    p = await created(client, merchant, momo_body())
    assert (p["status"], p["failure_code"]) == ("failed", "insufficient_funds")


async def test_what_momo_cannot_pay_is_refused_before_anything_is_stored_or_sent(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, provider_http: respx.Router
) -> None:
    fake = FakeDisbursement(provider_http)
    bank = momo_body()
    bank["destination"] = {"type": "bank_account", "account_number": "0123456789", "bank_code": "058"}
    r = await create(client, merchant, bank)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "invalid_destination"
    r = await create(client, merchant, {**momo_body(), "currency": "NGN"})
    assert r.status_code == 422, r.text
    assert fake.transfer.call_count == 0
    assert await gateway.scalar("SELECT count(*) FROM payouts WHERE merchant_id = :m", m=merchant.id) == 0
