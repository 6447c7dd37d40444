"""Flutterwave v3: the exact requests the gateway sends and how it reads every answer.

Provider HTTP is answered by respx with bodies shaped as docs/providers/flutterwave.md shows them; the gateway
itself runs for real. Expected request bodies are written out literally, amounts included, so a change
in what we send fails here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest
import respx
from pydantic import SecretStr

from drivers.flutterwave import LINK, TOKEN, envelope, hashed, major, new_id, refund, transaction, webhook
from gateway.providers.base import (
    PaymentRef,
    PaymentResult,
    RefundRef,
    RefundResult,
    WebhookVerificationError,
)
from gateway.providers.details import Card
from gateway.providers.flutterwave import transformers as tf
from gateway.providers.flutterwave.adapter import FlutterwaveProvider, NoTransactionYet, webhook_signature
from gateway.reconciler.service import Reconciler
from gateway.settings import FlutterwaveSettings, ReconcilerSettings
from support import (
    FLUTTERWAVE_API,
    FLUTTERWAVE_SECRET_HASH,
    FLUTTERWAVE_SECRET_KEY,
    Gateway,
    Merchant,
    wait_for,
)

API = FLUTTERWAVE_API
AUTH = f"Bearer {FLUTTERWAVE_SECRET_KEY}"
RETURN_URL = "https://shop.example/orders/1042/return"
CUSTOMER = {"name": "Amina Otieno", "email": "amina@example.com"}


def body(**over: Any) -> dict[str, Any]:
    return {
        "amount": 5_000,
        "currency": "KES",
        "provider": "flutterwave",
        "customer": CUSTOMER,
        "return_url": RETURN_URL,
        **over,
    }


async def create(
    client: httpx.AsyncClient, merchant: Merchant, payload: dict[str, Any], key: str | None = None
) -> httpx.Response:
    return await client.post(
        "/v1/payments",
        json=payload,
        headers={**merchant.auth, "Idempotency-Key": key or str(uuid.uuid4())},
    )


async def get(client: httpx.AsyncClient, merchant: Merchant, path: str) -> dict[str, Any]:
    r = await client.get(path, headers=merchant.auth)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def trail(client: httpx.AsyncClient, merchant: Merchant, payment_id: str) -> list[dict[str, Any]]:
    data = (await get(client, merchant, f"/v1/payments/{payment_id}/events?limit=100"))["data"]
    return list(reversed(data))


def sent(route: respx.Route) -> dict[str, Any]:
    """The JSON we sent, numbers as Decimals (so 50.00 stays 50.00, never a float)."""
    request = route.calls.last.request
    assert request.headers["authorization"] == AUTH
    assert request.headers["content-type"] == "application/json"
    return dict(json.loads(request.content, parse_float=Decimal))


def hosted(router: respx.Router) -> respx.Route:
    return router.post(f"{API}/v3/payments").respond(200, content=envelope("Hosted Link", {"link": LINK}))


async def waiting(client: httpx.AsyncClient, merchant: Merchant, router: respx.Router) -> dict[str, Any]:
    hosted(router)
    r = await create(client, merchant, body())
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "requires_action"
    return dict(r.json())


async def status_becomes(client: httpx.AsyncClient, merchant: Merchant, payment_id: str, status: str) -> None:
    async def reached() -> bool:
        return bool((await get(client, merchant, f"/v1/payments/{payment_id}"))["status"] == status)

    await wait_for(reached)


# --- creating a payment: the hosted checkout ----------------------------------------------------------


async def test_hosted_checkout_sends_tx_ref_and_the_exact_major_amount(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    route = hosted(provider_http)
    r = await create(
        client,
        merchant,
        body(
            amount=1_234_567,
            customer={**CUSTOMER, "phone": "+254712345678"},
            description="Order 1042",
            metadata={"order_id": "1042"},
        ),
    )
    assert r.status_code == 201, r.text
    p = r.json()
    assert route.call_count == 1
    request = route.calls.last.request
    assert (request.method, str(request.url)) == ("POST", f"{API}/v3/payments")
    assert b'"amount":12345.67,' in request.content
    assert sent(route) == {
        "tx_ref": p["id"],
        "amount": Decimal("12345.67"),
        "currency": "KES",
        "redirect_url": RETURN_URL,
        "customer": {"email": "amina@example.com", "name": "Amina Otieno", "phonenumber": "+254712345678"},
        "session_duration": 60,
        "customizations": {"description": "Order 1042"},
        "meta": {"order_id": "1042"},
    }
    assert p["status"] == "requires_action"
    assert p["next_action"] == {
        "type": "redirect_to_url",
        "redirect_to_url": {"url": LINK, "return_url": RETURN_URL},
    }
    assert p["provider_reference"] is None  # Flutterwave's transaction id exists once the customer pays


@pytest.mark.parametrize(
    ("currency", "amount", "literal"),
    [
        ("KES", 5, b"0.05"),
        ("GHS", 10, b"0.10"),
        ("NGN", 999_999_999_999, b"9999999999.99"),
        ("UGX", 5_000, b"5000"),
        ("XOF", 2_500, b"2500"),
    ],
)
async def test_amounts_go_out_as_exact_major_unit_numbers(
    client: httpx.AsyncClient,
    merchant: Merchant,
    provider_http: respx.Router,
    currency: str,
    amount: int,
    literal: bytes,
) -> None:
    route = hosted(provider_http)
    r = await create(client, merchant, body(amount=amount, currency=currency))
    assert r.status_code == 201, r.text
    assert b'"amount":' + literal + b"," in route.calls.last.request.content
    assert sent(route)["currency"] == currency


async def test_payment_method_other_than_a_token_limits_the_checkout_options(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    route = hosted(provider_http)
    r = await create(client, merchant, body(payment_method="card, mpesa"))
    assert r.status_code == 201, r.text
    assert sent(route)["payment_options"] == "card, mpesa"


async def test_a_create_retried_after_a_timeout_sends_the_same_tx_ref(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    route = provider_http.post(f"{API}/v3/payments")
    route.side_effect = [
        httpx.ReadTimeout("timed out"),
        httpx.Response(200, content=envelope("Hosted Link", {"link": LINK})),
    ]
    key = str(uuid.uuid4())
    first = await create(client, merchant, body(), key=key)
    assert first.status_code == 504, first.text
    assert first.json()["code"] == "provider_timeout"
    payment_id = first.json()["payment"]["id"]
    assert (await get(client, merchant, f"/v1/payments/{payment_id}"))["status"] == "pending"

    again = await create(client, merchant, body(), key=key)
    assert again.status_code == 201, again.text
    assert again.json()["id"] == payment_id
    assert again.json()["status"] == "requires_action"
    refs = [json.loads(call.request.content)["tx_ref"] for call in route.calls]
    assert refs == [payment_id, payment_id]


@pytest.mark.parametrize(
    ("answer", "status", "code"),
    [
        (
            httpx.Response(
                401, json={"status": "error", "message": "Invalid authorization key", "data": None}
            ),
            502,
            "provider_misconfigured",
        ),
        (
            httpx.Response(403, json={"status": "error", "message": "Forbidden", "data": None}),
            502,
            "provider_misconfigured",
        ),
        (httpx.Response(500, text="<html>Internal Server Error</html>"), 502, "provider_error"),
        (
            httpx.Response(503, json={"status": "error", "message": "Service unavailable"}),
            502,
            "provider_error",
        ),
        (httpx.ConnectError("connection refused"), 502, "provider_error"),
        (httpx.ConnectTimeout("connect timed out"), 504, "provider_timeout"),
        (httpx.ReadTimeout("read timed out"), 504, "provider_timeout"),
        (httpx.Response(200, text="not json"), 502, "provider_error"),
    ],
)
async def test_provider_failures_leave_the_payment_pending(
    client: httpx.AsyncClient,
    merchant: Merchant,
    provider_http: respx.Router,
    answer: httpx.Response | Exception,
    status: int,
    code: str,
) -> None:
    route = provider_http.post(f"{API}/v3/payments")
    if isinstance(answer, Exception):
        route.side_effect = answer
    else:
        route.return_value = answer
    r = await create(client, merchant, body())
    assert r.status_code == status, r.text
    assert r.json()["code"] == code
    assert FLUTTERWAVE_SECRET_KEY not in r.text
    p = await get(client, merchant, f"/v1/payments/{r.json()['payment']['id']}")
    assert (p["status"], p["next_action"]) == ("pending", None)


async def test_flutterwave_refusing_the_request_fails_the_payment_with_its_reason(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    provider_http.post(f"{API}/v3/payments").respond(
        400, json={"status": "error", "message": "Invalid currency for merchant", "data": None}
    )
    r = await create(client, merchant, body())
    assert r.status_code == 402, r.text
    assert (r.json()["code"], r.json()["detail"]) == ("payment_rejected", "Invalid currency for merchant")
    assert r.json()["payment"]["status"] == "failed"


@pytest.mark.parametrize(
    ("over", "code"),
    [
        ({"customer": {"name": "Amina Otieno"}}, "customer_email_required"),
        ({"return_url": None}, "return_url_required"),
    ],
)
async def test_what_flutterwave_requires_is_checked_before_calling_it(
    client: httpx.AsyncClient,
    merchant: Merchant,
    provider_http: respx.Router,
    over: dict[str, Any],
    code: str,
) -> None:
    route = hosted(provider_http)
    r = await create(client, merchant, body(**over))
    assert r.status_code == 402, r.text
    assert r.json()["code"] == code
    assert route.call_count == 0


# --- creating a payment: a saved card (tokenized charge) ---------------------------------------------


def charged(router: respx.Router, status: str, reason: str, http: int = 200, **extra: Any) -> respx.Route:
    def answer(request: httpx.Request) -> httpx.Response:
        s = json.loads(request.content)
        data = transaction(new_id(), s["tx_ref"], 5_000, s["currency"], status, reason, **extra)
        return httpx.Response(http, content=envelope("Charge successful", data))

    return router.post(f"{API}/v3/tokenized-charges").mock(side_effect=answer)


async def test_a_saved_card_is_charged_at_once(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    route = charged(provider_http, "successful", "Approved")
    r = await create(client, merchant, body(payment_method=TOKEN, description="Order 1042"))
    assert r.status_code == 201, r.text
    p = r.json()
    assert str(route.calls.last.request.url) == f"{API}/v3/tokenized-charges"
    assert b'"amount":50.00,' in route.calls.last.request.content
    assert sent(route) == {
        "token": TOKEN,
        "currency": "KES",
        "country": "NG",
        "amount": Decimal("50.00"),
        "email": "amina@example.com",
        "tx_ref": p["id"],
        "redirect_url": RETURN_URL,
        "narration": "Order 1042",
    }
    assert p["status"] == "succeeded"
    assert p["provider_reference"].isdigit()


@pytest.mark.parametrize(
    ("reason", "code"),
    [
        ("Insufficient Funds", "insufficient_funds"),
        ("Declined", "card_declined"),
        ("DO NOT HONOR", "card_declined"),
        ("Expired card", "expired_card"),
        ("Incorrect PIN", "incorrect_pin"),
        ("Transaction not permitted to cardholder", "card_declined"),
        ("Exceeds withdrawal limit", "limit_exceeded"),
        ("Something nobody wrote down", "card_declined"),
    ],
)
async def test_a_declined_card_is_402_with_a_stable_code_and_the_reason(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router, reason: str, code: str
) -> None:
    charged(provider_http, "failed", reason)
    r = await create(client, merchant, body(payment_method=TOKEN))
    assert r.status_code == 402, r.text
    assert (r.json()["code"], r.json()["detail"]) == (code, reason)
    assert r.json()["payment"]["status"] == "failed"
    assert r.json()["payment"]["failure_message"] == reason


async def test_a_refused_token_is_402(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    provider_http.post(f"{API}/v3/tokenized-charges").respond(
        400, json={"status": "error", "message": "Token not found", "data": None}
    )
    r = await create(client, merchant, body(payment_method=TOKEN))
    assert r.status_code == 402, r.text
    assert (r.json()["code"], r.json()["detail"]) == ("invalid_payment_method", "Token not found")


async def test_a_charge_that_needs_the_bank_page_is_a_redirect(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    bank_page = "https://ravesandboxapi.flutterwave.com/mockvbvpage?ref=FLW-MOCK-0a6b8065&code=00"
    charged(
        provider_http,
        "pending",
        "Approved",
        meta={"authorization": {"mode": "redirect", "redirect": bank_page}},
    )
    r = await create(client, merchant, body(payment_method=TOKEN))
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "requires_action"
    assert r.json()["next_action"] == {
        "type": "redirect_to_url",
        "redirect_to_url": {"url": bank_page, "return_url": RETURN_URL},
    }


async def test_a_success_naming_other_money_is_not_applied_at_create(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        s = json.loads(request.content)
        data = transaction(new_id(), s["tx_ref"], 4_000, "KES", "successful", "Approved")
        return httpx.Response(200, content=envelope("Charge successful", data))

    provider_http.post(f"{API}/v3/tokenized-charges").mock(side_effect=answer)
    r = await create(client, merchant, body(payment_method=TOKEN))
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "pending"
    events = await trail(client, merchant, r.json()["id"])
    assert events[-1]["type"] == "payment.transition_rejected"
    assert events[-1]["data"]["object"]["rejected"] == {
        "target_status": "succeeded",
        "reason": "amount_mismatch",
    }


# --- sync: verify by tx_ref, then by Flutterwave's transaction id ------------------------------------


def verified(router: respx.Router, payment: dict[str, Any], data: dict[str, Any]) -> respx.Route:
    return router.get(f"{API}/v3/transactions/verify_by_reference", params={"tx_ref": payment["id"]}).respond(
        200, content=envelope("Transaction fetched successfully", data)
    )


@pytest.mark.parametrize(
    ("flw_status", "reason", "status", "code"),
    [
        ("successful", "Approved", "succeeded", None),
        ("failed", "Insufficient Funds", "failed", "insufficient_funds"),
        ("pending", "Pending validation", "processing", None),
    ],
)
async def test_sync_verifies_by_tx_ref_and_maps_the_status(
    client: httpx.AsyncClient,
    merchant: Merchant,
    provider_http: respx.Router,
    flw_status: str,
    reason: str,
    status: str,
    code: str | None,
) -> None:
    p = await waiting(client, merchant, provider_http)
    tx_id = new_id()
    route = verified(provider_http, p, transaction(tx_id, p["id"], 5_000, "KES", flw_status, reason))
    r = await client.post(f"/v1/payments/{p['id']}/sync", headers=merchant.auth)
    assert r.status_code == 200, r.text
    request = route.calls.last.request
    assert request.method == "GET"
    assert str(request.url) == f"{API}/v3/transactions/verify_by_reference?tx_ref={p['id']}"
    assert request.headers["authorization"] == AUTH
    assert (r.json()["status"], r.json()["failure_code"]) == (status, code)
    assert r.json()["provider_reference"] == str(tx_id)


async def test_sync_verifies_by_transaction_id_once_it_is_known(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    charged(provider_http, "pending", "Awaiting bank confirmation")
    r = await create(client, merchant, body(payment_method=TOKEN))
    assert r.json()["status"] == "processing", r.text
    tx_id = r.json()["provider_reference"]
    route = provider_http.get(f"{API}/v3/transactions/{tx_id}/verify").respond(
        200,
        content=envelope(
            "Transaction fetched successfully",
            transaction(int(tx_id), r.json()["id"], 5_000, "KES", "successful", "Approved"),
        ),
    )
    synced = await client.post(f"/v1/payments/{r.json()['id']}/sync", headers=merchant.auth)
    assert synced.status_code == 200, synced.text
    assert route.call_count == 1
    assert route.calls.last.request.headers["authorization"] == AUTH
    assert synced.json()["status"] == "succeeded"


@pytest.mark.parametrize(("amount", "currency"), [(5_001, "KES"), (4_999, "KES"), (5_000, "NGN")])
async def test_sync_does_not_fulfil_on_other_money(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router, amount: int, currency: str
) -> None:
    p = await waiting(client, merchant, provider_http)
    verified(provider_http, p, transaction(new_id(), p["id"], amount, currency, "successful", "Approved"))
    r = await client.post(f"/v1/payments/{p['id']}/sync", headers=merchant.auth)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "requires_action"
    last = (await trail(client, merchant, p["id"]))[-1]
    assert last["type"] == "payment.transition_rejected"
    assert last["data"]["object"]["rejected"]["reason"] == "amount_mismatch"


async def test_sync_refuses_a_transaction_for_another_tx_ref(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    p = await waiting(client, merchant, provider_http)
    verified(
        provider_http, p, transaction(new_id(), "pay_someone_else", 5_000, "KES", "successful", "Approved")
    )
    r = await client.post(f"/v1/payments/{p['id']}/sync", headers=merchant.auth)
    assert r.status_code == 502, r.text
    assert r.json()["code"] == "provider_error"
    assert (await get(client, merchant, f"/v1/payments/{p['id']}"))["status"] == "requires_action"


async def test_sync_before_the_customer_paid_changes_nothing(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    p = await waiting(client, merchant, provider_http)
    provider_http.get(f"{API}/v3/transactions/verify_by_reference").respond(
        400, json={"status": "error", "message": "No transaction was found for this id", "data": None}
    )
    r = await client.post(f"/v1/payments/{p['id']}/sync", headers=merchant.auth)
    assert r.status_code == 502, r.text
    after = await get(client, merchant, f"/v1/payments/{p['id']}")
    assert (after["status"], after["next_action"]) == ("requires_action", p["next_action"])


async def test_cancel_is_not_offered(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    p = await waiting(client, merchant, provider_http)
    r = await client.post(
        f"/v1/payments/{p['id']}/cancel", headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())}
    )
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "payment_not_cancelable"


# --- webhooks ---------------------------------------------------------------------------------------


async def post_hook(client: httpx.AsyncClient, headers: dict[str, str], raw: bytes) -> httpx.Response:
    return await client.post("/v1/webhooks/flutterwave", content=raw, headers=headers)


async def inbox_outcome(gateway: Gateway, needle: str) -> str | None:
    outcome = await gateway.scalar(
        "SELECT outcome FROM inbound_webhooks WHERE provider = 'flutterwave' AND payload::text LIKE :n",
        n=f"%{needle}%",
    )
    return None if outcome is None else str(outcome)


def signed_new_style(raw: bytes, secret_hash: str = FLUTTERWAVE_SECRET_HASH) -> dict[str, str]:
    # Computed here from docs/providers/flutterwave.md, independently of the adapter's helper.
    mac = hmac.new(secret_hash.encode(), raw, hashlib.sha256).digest()
    return {"content-type": "application/json", "flutterwave-signature": base64.b64encode(mac).decode()}


async def test_a_webhook_signed_with_flutterwave_signature_is_accepted(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    p = await waiting(client, merchant, provider_http)
    data = transaction(new_id(), p["id"], 5_000, "KES", "successful", "Approved")
    route = verified(provider_http, p, data)  # a webhook is a hint: verify's answer is applied
    raw = webhook(data)
    r = await post_hook(client, signed_new_style(raw), raw)
    assert r.status_code == 200, r.text
    await status_becomes(client, merchant, p["id"], "succeeded")
    assert route.call_count == 1


@pytest.mark.parametrize(
    "headers",
    [
        {"verif-hash": FLUTTERWAVE_SECRET_HASH, "flutterwave-signature": "bm90IHRoZSBzaWduYXR1cmU="},
        {"verif-hash": FLUTTERWAVE_SECRET_HASH.upper()},
        {"verif-hash": ""},
        {},
    ],
    ids=["bad-signature-beats-good-hash", "hash-case", "empty-hash", "nothing"],
)
async def test_unauthenticated_webhooks_are_401_and_change_nothing(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router, headers: dict[str, str]
) -> None:
    p = await waiting(client, merchant, provider_http)
    raw = webhook(transaction(new_id(), p["id"], 5_000, "KES", "successful", "Approved"))
    r = await post_hook(client, {"content-type": "application/json", **headers}, raw)
    assert r.status_code == 401, r.text
    assert r.json()["code"] == "webhook_signature_invalid"
    assert (await get(client, merchant, f"/v1/payments/{p['id']}"))["status"] == "requires_action"


async def test_a_failed_charge_webhook_fails_the_payment_with_the_reason(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    p = await waiting(client, merchant, provider_http)
    tx_id = new_id()
    data = transaction(tx_id, p["id"], 5_000, "KES", "failed", "Declined")
    verified(provider_http, p, data)
    r = await post_hook(client, *hashed(webhook(data)))
    assert r.status_code == 200, r.text
    await status_becomes(client, merchant, p["id"], "failed")
    after = await get(client, merchant, f"/v1/payments/{p['id']}")
    assert (after["failure_code"], after["failure_message"]) == ("card_declined", "Declined")
    assert after["provider_reference"] == str(tx_id)


async def test_events_we_do_not_act_on_are_stored_and_ignored(
    client: httpx.AsyncClient, gateway: Gateway, provider_http: respx.Router
) -> None:
    marker = f"SUB-{uuid.uuid4().hex}"
    raw = webhook({"id": new_id(), "reference": marker, "status": "cancelled"}, event="subscription.cancel")
    r = await post_hook(client, *hashed(raw))
    assert r.status_code == 200, r.text

    async def ignored() -> bool:
        return await inbox_outcome(gateway, marker) == "ignored"

    await wait_for(ignored)

    # A transfer the gateway did not make (from the dashboard, say) is a payout notification that
    # names no payout of ours (docs/providers/flutterwave.md, "Payouts").
    transfer = f"TRF-{uuid.uuid4().hex}"
    raw = webhook({"id": new_id(), "reference": transfer, "status": "SUCCESSFUL"}, event="transfer.completed")
    assert (await post_hook(client, *hashed(raw))).status_code == 200

    async def unmatched() -> bool:
        return await inbox_outcome(gateway, transfer) == "unmatched"

    await wait_for(unmatched)


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b"[1, 2]", b'{"event": "charge.completed", "data": {"tx_ref": "pay_x"}}'],
    ids=["not-json", "not-object", "no-transaction-id"],
)
async def test_malformed_webhooks_are_400(client: httpx.AsyncClient, raw: bytes) -> None:
    r = await post_hook(client, *hashed(raw))
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "webhook_malformed"


# --- refunds ----------------------------------------------------------------------------------------


async def paid(
    client: httpx.AsyncClient, merchant: Merchant, router: respx.Router
) -> tuple[dict[str, Any], int]:
    p = await waiting(client, merchant, router)
    tx_id = new_id()
    data = transaction(tx_id, p["id"], 5_000, "KES", "successful", "Approved")
    verified(router, p, data)
    r = await post_hook(client, *hashed(webhook(data)))
    assert r.status_code == 200
    await status_becomes(client, merchant, p["id"], "succeeded")
    return p, tx_id


async def refund_of(
    client: httpx.AsyncClient, merchant: Merchant, payment_id: str, **payload: Any
) -> httpx.Response:
    return await client.post(
        f"/v1/payments/{payment_id}/refunds",
        json=payload,
        headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())},
    )


async def test_partial_then_full_refund_name_the_transaction_and_exact_amounts(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    p, tx_id = await paid(client, merchant, provider_http)
    route = provider_http.post(f"{API}/v3/transactions/{tx_id}/refund")
    route.side_effect = [
        httpx.Response(200, content=envelope("Transaction refund initiated", refund(new_id(), tx_id, 1_550))),
        httpx.Response(200, content=envelope("Transaction refund initiated", refund(new_id(), tx_id, 3_450))),
    ]
    first = await refund_of(client, merchant, p["id"], amount=1_550)
    assert first.status_code == 201, first.text
    assert first.json()["status"] == "succeeded"
    assert route.calls.last.request.content == b'{"amount":15.50}'
    assert route.calls.last.request.headers["authorization"] == AUTH
    assert (await get(client, merchant, f"/v1/payments/{p['id']}"))["status"] == "partially_refunded"

    rest = await refund_of(client, merchant, p["id"])
    assert rest.status_code == 201, rest.text
    assert (rest.json()["amount"], rest.json()["status"]) == (3_450, "succeeded")
    assert route.calls.last.request.content == b'{"amount":34.50}'
    after = await get(client, merchant, f"/v1/payments/{p['id']}")
    assert (after["status"], after["amount_refunded"]) == ("refunded", 5_000)


async def test_a_refund_flutterwave_has_not_finished_stays_pending(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    p, tx_id = await paid(client, merchant, provider_http)
    refund_id = new_id()
    provider_http.post(f"{API}/v3/transactions/{tx_id}/refund").respond(
        200,
        content=envelope("Transaction refund initiated", refund(refund_id, tx_id, 1_000, status="pending")),
    )
    r = await refund_of(client, merchant, p["id"], amount=1_000)
    assert r.status_code == 201, r.text
    assert (r.json()["status"], r.json()["provider_reference"]) == ("pending", str(refund_id))


async def test_refund_completed_is_only_a_hint_and_the_reconciler_settles_the_refund(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, provider_http: respx.Router
) -> None:
    p, tx_id = await paid(client, merchant, provider_http)
    refund_id = new_id()
    provider_http.post(f"{API}/v3/transactions/{tx_id}/refund").respond(
        200,
        content=envelope("Transaction refund initiated", refund(refund_id, tx_id, 1_000, status="pending")),
    )
    r = await refund_of(client, merchant, p["id"], amount=1_000)
    assert r.json()["status"] == "pending", r.text
    # The refund event's shape is assumed to be the refund object's (v4 naming; [U] for v3). It proves
    # nothing (a forged `failed` would free the amount for a second refund): stored and ignored.
    hook = await post_hook(
        client, *hashed(webhook(refund(refund_id, tx_id, 1_000), event="refund.completed"))
    )
    assert hook.status_code == 200, hook.text

    async def ignored() -> bool:
        return await inbox_outcome(gateway, f"URF_1577867664541_{refund_id}") == "ignored"

    await wait_for(ignored)
    assert (await get(client, merchant, f"/v1/refunds/{r.json()['id']}"))["status"] == "pending"

    # The reconciler asks GET /v3/refunds/{id}, and that answer settles it.
    asked = provider_http.get(f"{API}/v3/refunds/{refund_id}").respond(
        200, content=envelope("Refund fetched", refund(refund_id, tx_id, 1_000))
    )
    await gateway.execute("UPDATE refunds SET next_reconcile_at = now() WHERE id = :r", r=r.json()["id"])
    await Reconciler(
        gateway.ctx.db, gateway.ctx.registry, ReconcilerSettings(run_in_process=False)
    ).run_once()
    assert asked.call_count == 1
    assert (await get(client, merchant, f"/v1/refunds/{r.json()['id']}"))["status"] == "succeeded"
    after = await get(client, merchant, f"/v1/payments/{p['id']}")
    assert (after["status"], after["amount_refunded"]) == ("partially_refunded", 1_000)


async def test_a_refused_refund_fails_with_flutterwave_s_reason(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    p, tx_id = await paid(client, merchant, provider_http)
    provider_http.post(f"{API}/v3/transactions/{tx_id}/refund").respond(
        400, json={"status": "error", "message": "Insufficient balance to process refund", "data": None}
    )
    r = await refund_of(client, merchant, p["id"], amount=1_000)
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "failed"
    assert (r.json()["failure_code"], r.json()["failure_message"]) == (
        "refund_declined",
        "Insufficient balance to process refund",
    )
    assert (await get(client, merchant, f"/v1/payments/{p['id']}"))["status"] == "succeeded"


# --- the providers list -----------------------------------------------------------------------------


async def test_flutterwave_is_listed_as_configured_in_test_mode(
    client: httpx.AsyncClient, merchant: Merchant
) -> None:
    r = await client.get("/v1/providers", headers=merchant.auth)
    assert r.status_code == 200, r.text
    flw = next(p for p in r.json()["data"] if p["name"] == "flutterwave")
    assert flw == {
        "name": "flutterwave",
        "object": "provider",
        "configured": True,
        "currencies": sorted(tf.CURRENCIES),
        "flows": ["direct", "redirect"],
        "refunds": True,
        "partial_refunds": True,
        "cancel": False,
        "account": None,  # no account of the merchant's own
    }


# --- the adapter on its own (no gateway) ------------------------------------------------------------

VECTOR_BODY = (
    b'{"event":"charge.success","data":{"reference":"ref_1","amount":10000,'
    b'"currency":"NGN","status":"success"}}'
)
VECTOR_SIGNATURE = "QsyHGlFOgG0YuFXEmAR2iBEOq+3pTK7X6nD8Mt9WyhI="


def adapter(**settings: Any) -> FlutterwaveProvider:
    values: dict[str, Any] = {
        "test_secret_key": SecretStr(FLUTTERWAVE_SECRET_KEY),
        "test_secret_hash": SecretStr(FLUTTERWAVE_SECRET_HASH),
        "base_url": API,
        **settings,
    }
    return FlutterwaveProvider(FlutterwaveSettings(**values), 2.0)


def test_signature_matches_the_documented_test_vector() -> None:
    assert webhook_signature("my-secret-hash", VECTOR_BODY) == VECTOR_SIGNATURE
    assert webhook_signature("my-secret-hash", VECTOR_BODY + b" ") != VECTOR_SIGNATURE


async def test_the_test_vector_verifies_by_signature_and_by_secret_hash() -> None:
    p = adapter(test_secret_hash=None, live_secret_hash=SecretStr("my-secret-hash"))
    try:
        [event] = p.verify_webhook({"flutterwave-signature": VECTOR_SIGNATURE}, VECTOR_BODY)
        assert (event.event_type, event.result, event.refund_result) == ("charge.success", None, None)
        [event] = p.verify_webhook({"Verif-Hash": "my-secret-hash"}, VECTOR_BODY)
        assert event.event_type == "charge.success"
        with pytest.raises(WebhookVerificationError):
            p.verify_webhook(
                {"flutterwave-signature": VECTOR_SIGNATURE}, VECTOR_BODY.replace(b"10000", b"10001")
            )
        with pytest.raises(WebhookVerificationError):
            p.verify_webhook({"verif-hash": "my-secret-hash "}, VECTOR_BODY)
    finally:
        await p.aclose()


async def test_without_a_secret_hash_no_webhook_is_trusted() -> None:
    p = adapter(test_secret_hash=None)
    try:
        with pytest.raises(WebhookVerificationError):
            p.verify_webhook({"verif-hash": ""}, VECTOR_BODY)
    finally:
        await p.aclose()


async def test_configured_per_mode_by_the_secret_key_and_closes_its_client() -> None:
    p = adapter()
    assert (p.is_configured(False), p.is_configured(True)) == (True, False)
    live = adapter(test_secret_key=None, live_secret_key=SecretStr("FLWSECK-live-0000-X"))
    assert (live.is_configured(False), live.is_configured(True)) == (False, True)
    await p.aclose()
    await live.aclose()
    assert p._http.is_closed
    assert live._http.is_closed


def ref(created_at: datetime, provider_reference: str | None = None) -> PaymentRef:
    return PaymentRef(
        payment_id="pay_01HX4GTW6QAAAAAAAAAAAAAAAA",
        provider_reference=provider_reference,
        amount=5_000,
        currency="KES",
        livemode=False,
        created_at=created_at,
    )


async def test_no_transaction_after_the_link_lapsed_expires_the_payment() -> None:
    p = adapter()
    not_found = {"status": "error", "message": "No transaction was found for this id", "data": None}
    try:
        with respx.mock() as router:
            router.get(f"{API}/v3/transactions/verify_by_reference").respond(400, json=not_found)
            with pytest.raises(NoTransactionYet):
                await p.fetch_payment(ref(datetime.now(UTC) - timedelta(minutes=60)))
            lapsed = await p.fetch_payment(ref(datetime.now(UTC) - timedelta(minutes=71)))
        assert lapsed == PaymentResult(status="expired")
    finally:
        await p.aclose()


async def test_fetch_refund_asks_by_flutterwave_s_refund_id() -> None:
    p = adapter()
    payment = ref(datetime.now(UTC), "4100001")
    try:
        with respx.mock() as router:
            route = router.get(f"{API}/v3/refunds/8612").respond(
                200, content=envelope("Refund fetched", refund(8612, 4100001, 1_000))
            )
            result = await p.fetch_refund(RefundRef("re_1", "8612", payment, 1_000, datetime.now(UTC)))
        assert route.calls.last.request.headers["authorization"] == AUTH
        assert result == RefundResult(
            status="succeeded", provider_reference="8612", amount=1_000, currency="KES"
        )
    finally:
        await p.aclose()


# --- transformers (pure) ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [(100.1, "NGN", 10_010), (50, "KES", 5_000), ("12345.67", "KES", 1_234_567), (5000, "UGX", 5_000)],
)
def test_amounts_are_read_exactly(amount: Any, currency: str, minor: int) -> None:
    data = {"id": 1, "tx_ref": "pay_1", "status": "successful", "amount": amount, "currency": currency}
    result = tf.transaction_result(data)
    assert (result.status, result.amount, result.currency, result.provider_reference) == (
        "succeeded",
        minor,
        currency,
        "1",
    )


@pytest.mark.parametrize(
    "data",
    [
        {"id": 1, "status": "successful", "amount": 50.001, "currency": "KES"},
        {"id": 1, "status": "successful", "amount": 1.5, "currency": "UGX"},
        {"id": 1, "status": "successful", "amount": True, "currency": "KES"},
        {"id": 1, "status": "successful", "amount": 50, "currency": "XXX"},
        {"id": 1, "status": "reversed", "amount": 50, "currency": "KES"},
    ],
)
def test_answers_we_cannot_read_exactly_are_refused(data: dict[str, Any]) -> None:
    with pytest.raises(tf.MalformedAnswer):
        tf.transaction_result(data)


def test_an_unknown_refund_status_is_read_as_pending() -> None:
    result = tf.refund_result({"id": 9, "status": "processing", "amount_refunded": 10}, "KES")
    assert (result.status, result.amount, result.provider_reference) == ("pending", 1_000, "9")


def test_charge_events_name_our_payment_and_dedupe_on_transaction_and_status() -> None:
    data = transaction(77, "pay_abc", 5_000, "KES", "successful", "Approved")
    payload = orjson.loads(webhook(data))
    event = tf.interpret(payload)
    assert (event.event_id, event.event_type, event.payment_id, event.provider_reference) == (
        "charge.completed:77:successful",
        "charge.completed",
        "pay_abc",
        None,
    )
    # The `card` object's type, last_4digits, expiry "09/32", issuer "MASTERCARD CREDIT" and country.
    card = Card(brand="mastercard", last4="2950", exp_month=9, exp_year=2032, funding="credit", country="NG")
    assert event.result == PaymentResult(
        status="succeeded", provider_reference="77", amount=5_000, currency="KES", payment_method_details=card
    )
    assert orjson.loads(orjson.dumps({"a": major(5_000)})) == {"a": 50.0}


async def test_a_base_url_ending_in_v3_is_not_doubled() -> None:
    p = adapter(base_url=API + "/v3/")
    data = transaction(4100002, "pay_01HX4GTW6QAAAAAAAAAAAAAAAA", 5_000, "KES", "successful", "Approved")
    try:
        with respx.mock() as router:
            route = router.get(f"{API}/v3/transactions/4100002/verify").respond(
                200, content=envelope("Transaction fetched successfully", data)
            )
            result = await p.fetch_payment(ref(datetime.now(UTC), "4100002"))
        assert route.call_count == 1
        assert (result.status, result.amount, result.provider_reference) == ("succeeded", 5_000, "4100002")
    finally:
        await p.aclose()
