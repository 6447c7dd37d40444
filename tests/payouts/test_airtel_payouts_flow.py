"""Airtel Money payouts end to end: POST /v1/payouts through Airtel's disbursement API, its callback (a
hint: the status query is asked and applied), the reconciler's status query after a lost answer, and
what is refused before anything is stored or sent. Airtel is answered as it answers
(payouts/airtel_fake.py); the session gateway has Airtel's callback authentication on (a hash key).
"""

from __future__ import annotations

import json

import httpx
import orjson
import respx

from drivers.airtel import callback_hash
from payouts.airtel_fake import DISBURSE, PAYEE, PAYEE_POOR, PAYEE_SLOW, FakeDisbursements
from payouts.helpers import body, create, created, key, payout_events, reconcile, status_of
from support import AIRTEL_CALLBACK_TOKEN, AIRTEL_DISBURSEMENT_PIN, Gateway, Merchant, wait_for

HOOK = f"/v1/webhooks/airtel/{AIRTEL_CALLBACK_TOKEN}"


def airtel_body(phone: str = PAYEE_SLOW, **over: object) -> dict[str, object]:
    return body(phone, amount=5_000, currency="UGX", provider="airtel", **over)


async def test_paid_at_once(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    fake = FakeDisbursements(provider_http)
    p = await created(client, merchant, airtel_body(PAYEE))
    assert (p["status"], p["provider_reference"]) == ("succeeded", p["id"])
    sent = json.loads(fake.disburse.calls.last.request.content)
    assert sent["transaction"] == {"amount": 5000, "id": p["id"]}
    assert sent["pin"] == AIRTEL_DISBURSEMENT_PIN
    assert AIRTEL_DISBURSEMENT_PIN not in json.dumps(p)
    assert fake.disburse.call_count == 1


async def test_a_callback_is_a_hint_the_status_query_settles_the_payout_once(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, provider_http: respx.Router
) -> None:
    fake = FakeDisbursements(provider_http)
    p = await created(client, merchant, airtel_body())
    assert (p["status"], p["provider_reference"], p["submitted_at"] is not None) == ("pending", p["id"], True)
    assert fake.disburse.call_count == 1
    assert str(fake.disburse.calls.last.request.url) == DISBURSE

    fake.kept[p["id"]].status = "TS"
    transaction = {"id": p["id"], "message": "Paid", "status_code": "TS", "airtel_money_id": "MP2412"}
    callback = orjson.dumps({"transaction": transaction, "hash": callback_hash(transaction)})
    headers = {"content-type": "application/json"}
    asked = fake.status.call_count
    r = await client.post(HOOK, content=callback, headers=headers)
    assert r.status_code == 200, r.text

    async def succeeded() -> bool:
        return await status_of(client, merchant, p["id"]) == "succeeded"

    await wait_for(succeeded)
    assert fake.status.call_count == asked + 1  # the callback's word was checked with Airtel
    assert await payout_events(gateway, p["id"]) == [
        ("payout.created", "api"),
        ("payout.succeeded", "webhook"),
    ]
    again = await client.post(HOOK, content=callback, headers=headers)
    assert again.status_code == 200
    assert fake.status.call_count == asked + 1
    assert len(await payout_events(gateway, p["id"])) == 2
    assert fake.disburse.call_count == 1


async def test_a_callback_with_a_wrong_hash_moves_nothing(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, provider_http: respx.Router
) -> None:
    fake = FakeDisbursements(provider_http)
    p = await created(client, merchant, airtel_body())
    fake.kept[p["id"]].status = "TS"
    transaction = {"id": p["id"], "message": "Paid", "status_code": "TS", "airtel_money_id": "MP2412"}
    forged = orjson.dumps({"transaction": transaction, "hash": callback_hash(transaction, "not-the-key")})
    r = await client.post(HOOK, content=forged, headers={"content-type": "application/json"})
    assert r.status_code == 401, r.text
    assert fake.status.call_count == 0
    assert await status_of(client, merchant, p["id"]) == "pending"


async def test_a_lost_answer_is_never_resent_the_reconciler_asks(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, provider_http: respx.Router
) -> None:
    fake = FakeDisbursements(provider_http)

    def lost(request: httpx.Request) -> httpx.Response:
        fake.take(request)  # Airtel took it; the answer never came back
        raise httpx.ReadTimeout("timed out")

    fake.disburse.mock(side_effect=lost)
    headers = key()
    r = await create(client, merchant, airtel_body(PAYEE), headers)
    assert r.status_code == 201, r.text
    p = r.json()
    assert (p["status"], p["submitted_at"] is not None) == ("pending", True)

    replay = await create(client, merchant, airtel_body(PAYEE), headers)
    assert (replay.status_code, replay.json()["id"]) == (201, p["id"])
    assert fake.disburse.call_count == 1

    await reconcile(gateway, p["id"])
    assert await status_of(client, merchant, p["id"]) == "succeeded"
    assert str(fake.status.calls.last.request.url) == f"{DISBURSE}{p['id']}"
    assert fake.disburse.call_count == 1
    assert await payout_events(gateway, p["id"]) == [
        ("payout.created", "api"),
        ("payout.succeeded", "reconciler"),
    ]


async def test_refused_at_once_and_failed_later(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, provider_http: respx.Router
) -> None:
    fake = FakeDisbursements(provider_http)
    poor = await created(client, merchant, airtel_body(PAYEE_POOR))
    assert (poor["status"], poor["failure_code"]) == ("failed", "insufficient_funds")
    p = await created(client, merchant, airtel_body())
    await reconcile(gateway, p["id"])
    assert await status_of(client, merchant, p["id"]) == "pending"
    kept = fake.kept[p["id"]]
    kept.status, kept.code = "TF", "DP00900001003"
    await reconcile(gateway, p["id"])
    got = (await client.get(f"/v1/payouts/{p['id']}", headers=merchant.auth)).json()
    assert (got["status"], got["failure_code"]) == ("failed", "limit_exceeded")
    assert fake.disburse.call_count == 2


async def test_what_airtel_cannot_pay_is_refused_before_anything_is_stored_or_sent(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, provider_http: respx.Router
) -> None:
    fake = FakeDisbursements(provider_http)
    bank = airtel_body()
    bank["destination"] = {"type": "bank_account", "account_number": "0123456789", "bank_code": "058"}
    for refused in (bank, airtel_body("+254712345678"), {**airtel_body(), "currency": "KES"}):
        r = await create(client, merchant, refused)
        assert r.status_code == 422, r.text
        assert r.json()["code"] == "invalid_destination"
    r = await create(client, merchant, {**airtel_body(), "currency": "EUR"})
    assert r.status_code == 422, r.text
    assert fake.disburse.call_count == 0
    assert fake.token.call_count == 0
    assert await gateway.scalar("SELECT count(*) FROM payouts WHERE merchant_id = :m", m=merchant.id) == 0
