"""Paystack: the exact requests the gateway sends, how it reads every answer, and its webhooks.

Provider HTTP is answered by respx with bodies shaped as docs/providers/paystack.md shows them (builders in
drivers/paystack.py); signatures are made here with hmac/hashlib, and checked against the test vector
of docs/providers/paystack.md.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import respx
from pydantic import SecretStr

from drivers.paystack import (
    AUTHORIZATION_CODE,
    EMAIL,
    charge_answer,
    initialize_answer,
    reference,
    refund_answer,
    refund_event,
    sign,
    transaction,
    verify_answer,
)
from gateway.kit.ids import new_id
from gateway.merchants.service import create_merchant
from gateway.providers.base import (
    WebhookEvent,
    WebhookPayloadError,
    WebhookVerificationError,
)
from gateway.providers.paystack import notifications as nt
from gateway.providers.paystack import transformers as tf
from gateway.providers.paystack.adapter import PaystackProvider
from gateway.settings import PaystackSettings
from support import PAYSTACK_API, PAYSTACK_SECRET_KEY, Gateway, Merchant, wait_for

INITIALIZE = f"{PAYSTACK_API}/transaction/initialize"
CHARGE = f"{PAYSTACK_API}/transaction/charge_authorization"
REFUND = f"{PAYSTACK_API}/refund"
AUTH = f"Bearer {PAYSTACK_SECRET_KEY}"

# docs/providers/paystack.md
VECTOR_BODY = (
    b'{"event":"charge.success",'
    b'"data":{"reference":"ref_1","amount":10000,"currency":"NGN","status":"success"}}'
)
VECTOR_KEY = "sk_test_xxx"
VECTOR_PREFIX = "ac117561a74a45259b56e34a370ef511"


def key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


async def create(
    client: httpx.AsyncClient, merchant: Merchant, headers: dict[str, str] | None = None, **fields: Any
) -> httpx.Response:
    body = {"amount": 10_050, "currency": "NGN", "provider": "paystack", "customer": {"email": EMAIL}}
    body.update(fields)
    return await client.post("/v1/payments", json=body, headers={**merchant.auth, **(headers or key())})


async def waiting(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router, **fields: Any
) -> dict[str, Any]:
    provider_http.post(INITIALIZE).mock(
        side_effect=lambda req: httpx.Response(
            200, json=initialize_answer(json.loads(req.content)["reference"])
        )
    )
    r = await create(client, merchant, **fields)
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "requires_action"
    return dict(r.json())


async def get(client: httpx.AsyncClient, merchant: Merchant, path: str) -> dict[str, Any]:
    r = await client.get(path, headers=merchant.auth)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def trail(client: httpx.AsyncClient, merchant: Merchant, payment_id: str) -> list[tuple[str, str]]:
    data = (await get(client, merchant, f"/v1/payments/{payment_id}/events?limit=100"))["data"]
    return [(e["type"], e["source"]) for e in reversed(data)]


def sent_json(route: respx.Route) -> Any:
    return json.loads(route.calls.last.request.content)


@pytest.fixture
async def adapter() -> AsyncIterator[PaystackProvider]:
    """An adapter of its own (no gateway), keyed with the documented test key."""
    p = PaystackProvider(PaystackSettings(test_secret_key=SecretStr(VECTOR_KEY)), 5.0)
    yield p
    await p.aclose()


# --- webhook signatures ----------------------------------------------------------------------------


def test_signature_is_the_documented_vector() -> None:
    sig = nt.signature(VECTOR_KEY, VECTOR_BODY)
    assert sig.startswith(VECTOR_PREFIX)
    assert re.fullmatch(r"[0-9a-f]{128}", sig)
    assert sig == hmac.new(VECTOR_KEY.encode(), VECTOR_BODY, hashlib.sha512).hexdigest()


async def test_the_vector_verifies_and_maps_to_a_success(adapter: PaystackProvider) -> None:
    sig = hmac.new(VECTOR_KEY.encode(), VECTOR_BODY, hashlib.sha512).hexdigest()
    # Header names are case-insensitive; Paystack sends lowercase hex.
    [event] = adapter.verify_webhook({"X-Paystack-Signature": sig}, VECTOR_BODY)
    assert event.event_type == "charge.success"
    assert event.event_id == "test:charge.success:ref_1"
    assert event.result is not None
    assert (event.result.status, event.result.amount, event.result.currency) == ("succeeded", 10_000, "NGN")
    # "ref_1" is no reference the gateway made: the event can match no payment.
    assert event.provider_reference is None
    assert event.payment_id is None


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"x-paystack-signature": ""},
        {"x-paystack-signature": "0" * 128},
        {"x-paystack-signature": hmac.new(b"sk_test_other", VECTOR_BODY, hashlib.sha512).hexdigest()},
        # SHA-256 of the right key is not SHA-512.
        {"x-paystack-signature": hmac.new(VECTOR_KEY.encode(), VECTOR_BODY, hashlib.sha256).hexdigest()},
    ],
    ids=["missing", "empty", "zeros", "other-key", "sha256"],
)
async def test_a_wrong_signature_is_refused(adapter: PaystackProvider, headers: dict[str, str]) -> None:
    with pytest.raises(WebhookVerificationError):
        adapter.verify_webhook(headers, VECTOR_BODY)


async def test_a_signed_body_that_is_not_a_json_object_is_malformed(adapter: PaystackProvider) -> None:
    for body in (b"not json", b"[1, 2]"):
        with pytest.raises(WebhookPayloadError):
            adapter.verify_webhook(sign(body, VECTOR_KEY), body)


async def test_a_changed_byte_breaks_the_signature(adapter: PaystackProvider) -> None:
    headers = sign(VECTOR_BODY, VECTOR_KEY)
    with pytest.raises(WebhookVerificationError):
        adapter.verify_webhook(headers, VECTOR_BODY.replace(b"10000", b"10001"))
    # Re-serialised JSON (other whitespace) is other bytes: verification is on the raw body.
    with pytest.raises(WebhookVerificationError):
        adapter.verify_webhook(headers, json.dumps(json.loads(VECTOR_BODY)).encode())


async def test_no_configured_key_verifies_nothing() -> None:
    p = PaystackProvider(PaystackSettings(), 5.0)
    try:
        with pytest.raises(WebhookVerificationError):
            p.verify_webhook(sign(VECTOR_BODY, VECTOR_KEY), VECTOR_BODY)
        assert not p.is_configured(False)
        assert not p.is_configured(True)
    finally:
        await p.aclose()


def _charge(ref: str, domain: str) -> bytes:
    data = {**transaction(ref, 5_000, "KES", "success"), "domain": domain}
    return json.dumps({"event": "charge.success", "data": data}).encode()


async def test_both_keys_are_tried_and_the_mode_must_match_the_key() -> None:
    test_key, live_key = "sk_test_aaaaaaaa", "sk_live_bbbbbbbb"
    p = PaystackProvider(
        PaystackSettings(test_secret_key=SecretStr(test_key), live_secret_key=SecretStr(live_key)), 5.0
    )
    try:
        assert p.is_configured(False)
        assert p.is_configured(True)
        pay = new_id("pay")
        live_ref, test_ref = reference(pay, livemode=True), reference(pay)

        def verified(body: bytes, key: str) -> WebhookEvent:
            [event] = p.verify_webhook(sign(body, key), body)
            return event

        event = verified(_charge(live_ref, "live"), live_key)
        assert event.provider_reference == live_ref
        assert event.event_id == f"live:charge.success:{live_ref}"
        assert verified(_charge(test_ref, "test"), test_key).provider_reference == test_ref
        # Signed with the test key, but claiming to be live money: refused outright.
        with pytest.raises(WebhookVerificationError):
            verified(_charge(live_ref, "live"), test_key)
        # Signed with the test key and naming a live payment's reference: matches nothing.
        event = verified(_charge(live_ref, "test"), test_key)
        assert event.provider_reference is None
        assert event.result is not None
        # With both keys configured, a body naming no domain has no mode: it matches nothing either.
        body = json.dumps({"event": "charge.success", "data": transaction(test_ref, 5_000, "KES", "success")})
        no_domain = body.replace('"domain": "test", ', "").encode()
        event = verified(no_domain, test_key)
        assert event.provider_reference is None
        assert event.event_id == f"unknown:charge.success:{test_ref}"
    finally:
        await p.aclose()


# --- pure mapping ------------------------------------------------------------------------------------


def test_references_are_ours_paystack_safe_and_carry_the_mode() -> None:
    pay = new_id("pay")
    live, test = tf.reference_for(pay, True), tf.reference_for(pay, False)
    assert (live, test) == (pay.replace("_", "-"), pay.replace("_", "-") + "-test")
    for ref in (live, test):
        assert re.fullmatch(r"[A-Za-z0-9.=-]+", ref)  # docs/providers/paystack.md
    assert tf.is_our_reference(live, True)
    assert tf.is_our_reference(test, False)
    assert not tf.is_our_reference(live, False)
    assert not tf.is_our_reference(test, True)
    assert not tf.is_our_reference(live, None)
    assert not tf.is_our_reference("re4lyvq3s3", False)
    assert tf.refund_key(test, 1_000) == f"{test}:1000"


OPTIONS = tf.Options()


@pytest.mark.parametrize(
    ("theirs", "ours"),
    [
        ("success", "succeeded"),
        ("failed", "failed"),
        ("abandoned", "requires_action"),
        ("reversed", "failed"),
        # [U] in-flight statuses (docs/providers/paystack.md), configurable through Options.
        ("ongoing", "requires_action"),
        ("pending", "processing"),
        ("processing", "processing"),
        ("queued", "processing"),
    ],
)
def test_transaction_statuses(theirs: str, ours: str) -> None:
    result = tf.payment_result(transaction("r", 10_050, "NGN", theirs, "Declined"), "r", OPTIONS)
    assert result.status == ours
    assert result.provider_reference == "r"
    assert (result.amount, result.currency) == (10_050, "NGN")
    if theirs == "failed":
        assert (result.failure_code, result.failure_message) == ("card_declined", "Declined")
    elif theirs == "reversed":
        assert result.failure_code == "payment_reversed"
    else:
        assert result.failure_code is None


def test_an_unknown_status_is_not_guessed() -> None:
    with pytest.raises(tf.UnexpectedAnswer):
        tf.payment_result(transaction("r", 100, "NGN", "teleported"), "r", OPTIONS)
    # ...unless the operator says what it means.
    options = tf.Options(in_flight_statuses={"teleported": "processing"})
    assert tf.payment_result(transaction("r", 100, "NGN", "teleported"), "r", options).status == "processing"


@pytest.mark.parametrize(
    ("reason", "code"),
    [
        ("Declined", "card_declined"),
        ("Do Not Honor", "card_declined"),
        ("Insufficient Funds", "insufficient_funds"),
        ("Expired Card", "expired_card"),
        ("Incorrect PIN", "incorrect_pin"),
        ("Invalid CVV", "incorrect_cvc"),
        ("Transaction not permitted to cardholder", "transaction_not_allowed"),
        ("Suspected Fraud", "card_declined"),
        ("Something nobody wrote down", "payment_failed"),
    ],
)
def test_decline_reasons_map_to_stable_codes(reason: str, code: str) -> None:
    result = tf.payment_result(transaction("r", 100, "NGN", "failed", reason), "r", OPTIONS)
    assert (result.status, result.failure_code, result.failure_message) == ("failed", code, reason)


@pytest.mark.parametrize(
    ("theirs", "ours"),
    [
        ("pending", "pending"),
        ("processing", "pending"),
        ("needs-attention", "pending"),
        ("processed", "succeeded"),
        ("failed", "failed"),
    ],
)
def test_refund_statuses(theirs: str, ours: str) -> None:
    result = tf.refund_result(refund_answer("r", 1_000, "NGN", theirs)["data"], "r:1000", "NGN")
    assert (result.status, result.provider_reference, result.amount, result.currency) == (
        ours,
        "r:1000",
        1_000,
        "NGN",
    )
    assert result.failure_code == ("refund_failed" if ours == "failed" else None)


def test_the_sample_with_fees_passed_on_is_the_requested_amount() -> None:
    # docs/providers/paystack.md: amount 40333 = requested_amount 30050 + fees 10283.
    data = {**transaction("re4lyvq3s3", 40_333, "NGN", "success"), "requested_amount": 30_050, "fees": 10_283}
    assert tf.payment_result(data, "re4lyvq3s3", OPTIONS).amount == 30_050
    # Less than was asked is what it is (and the state machine refuses it).
    short = {**data, "amount": 30_000}
    assert tf.payment_result(short, "re4lyvq3s3", OPTIONS).amount == 30_000
    # Without requested_amount (webhooks), the charged amount.
    del data["requested_amount"]
    assert tf.payment_result(data, "re4lyvq3s3", OPTIONS).amount == 40_333


def test_amounts_are_integers_in_subunits() -> None:
    assert tf.to_subunits(10_050, "NGN") == 10_050
    assert tf.to_subunits(1, "GHS") == 1
    with pytest.raises(ValueError, match="does not take"):
        tf.to_subunits(500, "XOF")
    assert tf.subunits(20_000) == 20_000
    assert tf.subunits("5000") == 5_000  # refund webhooks write it as a string
    # Decimals, signs, floats, bools and non-ASCII digits (Arabic-Indic five) are not subunits.
    for bad in ("50.00", "-5", "", 50.0, True, None, -1, "\u0665"):
        with pytest.raises(ValueError, match="not an amount in subunits"):
            tf.subunits(bad)


# Every event docs/providers/paystack.md lists that moves no payment, refund or payout of ours
# (transfer.* are payout notifications: tests/payouts/test_paystack_payouts.py).
IGNORED = [
    "charge.dispute.create",
    "charge.dispute.remind",
    "charge.dispute.resolve",
    "subscription.create",
    "subscription.disable",
    "subscription.not_renew",
    "subscription.expiring_cards",
    "invoice.create",
    "invoice.update",
    "invoice.payment_failed",
    "paymentrequest.pending",
    "paymentrequest.success",
    "customeridentification.success",
    "customeridentification.failed",
    "dedicatedaccount.assign.success",
    "dedicatedaccount.assign.failed",
]


@pytest.mark.parametrize("name", IGNORED)
def test_other_events_are_ignored(name: str) -> None:
    event = nt.interpret({"event": name, "data": {"id": 91, "domain": "test"}}, None, OPTIONS)
    assert (event.event_type, event.event_id) == (name, f"test:{name}:91")
    assert event.result is None
    assert event.refund_result is None
    assert name in tf.KNOWN_EVENTS


@pytest.mark.parametrize(
    ("status", "ours"),
    [("pending", "pending"), ("processing", "pending"), ("needs-attention", "pending"), ("failed", "failed")],
)
def test_refund_events(status: str, ours: str) -> None:
    ref = reference(new_id("pay"))
    event = nt.interpret(json.loads(refund_event(ref, 2_500, "NGN", status)), None, OPTIONS)
    assert event.event_type == f"refund.{status}"
    assert event.refund_reference == f"{ref}:2500"
    assert event.refund_result is not None
    assert (event.refund_result.status, event.refund_result.amount) == (ours, 2_500)


@pytest.mark.parametrize(
    "data",
    [
        {"status": "success", "amount": 100, "currency": "NGN"},  # no reference
        {"status": "success", "reference": "r", "currency": "NGN"},  # no amount
        {"status": "success", "reference": "r", "amount": "1.00", "currency": "NGN"},
        {"status": "success", "reference": "r", "amount": 100},  # no currency
        {"status": "moonwalk", "reference": "r", "amount": 100, "currency": "NGN"},
    ],
)
def test_a_malformed_charge_event_is_refused(data: dict[str, Any]) -> None:
    with pytest.raises(WebhookPayloadError):
        nt.interpret({"event": "charge.success", "data": data}, False, OPTIONS)


def test_the_shared_client_has_the_gateways_timeout_and_limits() -> None:
    p = PaystackProvider(PaystackSettings(base_url="https://paystack.example"), 7.5, max_connections=13)
    http = p._http
    assert http.timeout == httpx.Timeout(7.5)
    assert str(http.base_url) == "https://paystack.example"
    pool = http._transport._pool  # type: ignore[attr-defined]
    assert pool._max_connections == 13


async def test_aclose_closes_the_client() -> None:
    p = PaystackProvider(PaystackSettings(), 1.0)
    await p.aclose()
    assert p._http.is_closed


# --- payments through the gateway --------------------------------------------------------------------


async def test_create_initializes_a_checkout_with_our_reference(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    route = provider_http.post(INITIALIZE).mock(
        side_effect=lambda req: httpx.Response(
            200, json=initialize_answer(json.loads(req.content)["reference"])
        )
    )
    r = await create(
        client,
        merchant,
        reference="order-1042",
        return_url="https://shop.example/paid?order=1042",
        metadata={"cart": "c-9"},
    )
    assert r.status_code == 201, r.text
    p = r.json()
    ref = reference(p["id"])
    assert route.call_count == 1
    sent = route.calls.last.request
    assert (sent.method, sent.url.path) == ("POST", "/transaction/initialize")
    assert sent.headers["authorization"] == AUTH
    assert sent.headers["content-type"] == "application/json"
    assert json.loads(sent.content) == {
        "email": EMAIL,
        "amount": 10_050,  # kobo: NGN 100.50
        "currency": "NGN",
        "reference": ref,
        "metadata": {"payment_id": p["id"], "order_reference": "order-1042"},
        "callback_url": "https://shop.example/paid?order=1042",
    }
    url = route.calls.last.response.json()["data"]["authorization_url"]
    assert url.startswith("https://checkout.paystack.com/")
    assert (p["status"], p["provider_reference"]) == ("requires_action", ref)
    assert p["next_action"] == {
        "type": "redirect_to_url",
        "redirect_to_url": {"url": url, "return_url": "https://shop.example/paid?order=1042"},
    }


@pytest.mark.parametrize(("currency", "amount"), [("GHS", 2_500), ("ZAR", 99), ("USD", 1_000_000)])
async def test_a_channel_limits_checkout_and_amounts_stay_in_subunits(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router, currency: str, amount: int
) -> None:
    p = await waiting(
        client, merchant, provider_http, amount=amount, currency=currency, payment_method="mobile_money"
    )
    sent = sent_json(provider_http.routes[-1])
    assert sent == {
        "email": EMAIL,
        "amount": amount,
        "currency": currency,
        "reference": reference(p["id"]),
        "metadata": {"payment_id": p["id"]},
        "channels": ["mobile_money"],
    }
    url = provider_http.routes[-1].calls.last.response.json()["data"]["authorization_url"]
    assert p["next_action"] == {
        "type": "redirect_to_url",
        "redirect_to_url": {"url": url, "return_url": None},
    }


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"customer": None}, "customer_email_required"),
        ({"customer": {"name": "Amina"}}, "customer_email_required"),
        ({"payment_method": "pm_card_visa"}, "invalid_payment_method"),
    ],
)
async def test_what_paystack_cannot_take_is_refused_without_asking_it(
    client: httpx.AsyncClient,
    merchant: Merchant,
    provider_http: respx.Router,
    fields: dict[str, Any],
    code: str,
) -> None:
    route = provider_http.post(INITIALIZE).respond(500)
    r = await create(client, merchant, **fields)
    assert r.status_code == 402, r.text
    assert (r.json()["code"], r.json()["payment"]["status"]) == (code, "failed")
    assert route.call_count == 0


async def test_currencies_paystack_does_not_take_are_422(
    client: httpx.AsyncClient, merchant: Merchant
) -> None:
    r = await create(client, merchant, currency="XOF", amount=500)
    assert r.status_code == 422
    assert r.json()["code"] == "currency_not_supported"
    assert r.json()["supported"] == ["GHS", "KES", "NGN", "USD", "ZAR"]


async def test_a_saved_card_is_charged_at_once(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    def charged(req: httpx.Request) -> httpx.Response:
        sent = json.loads(req.content)
        return httpx.Response(
            200, json=charge_answer(transaction(sent["reference"], 10_050, "NGN", "success"))
        )

    route = provider_http.post(CHARGE).mock(side_effect=charged)
    r = await create(client, merchant, payment_method=AUTHORIZATION_CODE)
    assert r.status_code == 201, r.text
    p = r.json()
    assert (p["status"], p["provider_reference"]) == ("succeeded", reference(p["id"]))
    assert route.call_count == 1
    assert route.calls.last.request.headers["authorization"] == AUTH
    assert sent_json(route) == {
        "email": EMAIL,
        "amount": 10_050,
        "currency": "NGN",
        "authorization_code": AUTHORIZATION_CODE,
        "reference": reference(p["id"]),
        "metadata": {"payment_id": p["id"]},
    }
    assert await trail(client, merchant, p["id"]) == [
        ("payment.created", "api"),
        ("payment.succeeded", "api"),
    ]


@pytest.mark.parametrize(
    ("reason", "code"), [("Declined", "card_declined"), ("Insufficient Funds", "insufficient_funds")]
)
async def test_a_declined_saved_card_is_402_with_the_reason(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router, reason: str, code: str
) -> None:
    def declined(req: httpx.Request) -> httpx.Response:
        sent = json.loads(req.content)
        return httpx.Response(
            200, json=charge_answer(transaction(sent["reference"], 10_050, "NGN", "failed", reason))
        )

    provider_http.post(CHARGE).mock(side_effect=declined)
    r = await create(client, merchant, payment_method=AUTHORIZATION_CODE)
    assert r.status_code == 402, r.text
    body = r.json()
    assert (body["code"], body["detail"]) == (code, reason)
    assert (body["payment"]["status"], body["payment"]["failure_code"]) == ("failed", code)


async def test_a_paystack_refusal_is_402_with_its_message(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    provider_http.post(INITIALIZE).respond(
        400, json={"status": False, "message": "Invalid Email Address Passed"}
    )
    r = await create(client, merchant)
    assert r.status_code == 402, r.text
    assert (r.json()["code"], r.json()["detail"]) == (
        "provider_rejected",
        "Paystack: Invalid Email Address Passed",
    )


@pytest.mark.parametrize("status", [401, 403])
async def test_rejected_credentials_are_502_provider_misconfigured(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router, status: int
) -> None:
    route = provider_http.post(INITIALIZE).respond(status, json={"status": False, "message": "Invalid key"})
    r = await create(client, merchant)
    assert r.status_code == 502, r.text
    assert r.json()["code"] == "provider_misconfigured"
    assert PAYSTACK_SECRET_KEY not in r.text
    assert route.call_count == 1
    p = await get(client, merchant, f"/v1/payments/{r.json()['payment']['id']}")
    assert p["status"] == "pending"


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(500, json={"status": False, "message": "Internal error"}),
        httpx.Response(503, text="upstream unavailable"),
        httpx.Response(429, json={"status": False, "message": "Too many requests"}),
        httpx.Response(200, text="<html>proxy</html>"),
        httpx.ConnectError("refused"),
    ],
    ids=["500", "503", "429", "html", "connect-error"],
)
async def test_outages_are_502_and_leave_the_payment_pending(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router, answer: Any
) -> None:
    if isinstance(answer, Exception):
        provider_http.post(INITIALIZE).mock(side_effect=answer)
    else:
        provider_http.post(INITIALIZE).mock(return_value=answer)
    r = await create(client, merchant)
    assert r.status_code == 502, r.text
    assert r.json()["code"] == "provider_error"
    p = await get(client, merchant, f"/v1/payments/{r.json()['payment']['id']}")
    assert p["status"] == "pending"


async def test_a_retry_after_a_timeout_reuses_the_reference_and_verifies(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    init = provider_http.post(INITIALIZE).mock(
        side_effect=[
            httpx.ReadTimeout("timed out"),
            # [U] the text of Paystack's refusal of a repeated reference (docs/providers/paystack.md).
            httpx.Response(400, json={"status": False, "message": "Duplicate Transaction Reference"}),
        ]
    )
    headers = key()
    first = await create(client, merchant, headers=headers)
    assert first.status_code == 504, first.text
    assert first.json()["code"] == "provider_timeout"
    payment_id = first.json()["payment"]["id"]
    ref = reference(payment_id)
    verify = provider_http.get(f"{PAYSTACK_API}/transaction/verify/{ref}").respond(
        200, json=verify_answer(transaction(ref, 10_050, "NGN", "success"))
    )
    again = await create(client, merchant, headers=headers)
    assert again.status_code == 201, again.text
    assert (again.json()["id"], again.json()["status"]) == (payment_id, "succeeded")
    assert init.call_count == 2
    assert [json.loads(c.request.content)["reference"] for c in init.calls] == [ref, ref]
    assert verify.call_count == 1
    assert verify.calls.last.request.headers["authorization"] == AUTH
    assert await trail(client, merchant, payment_id) == [
        ("payment.created", "api"),
        ("payment.succeeded", "api"),
    ]


async def test_a_lost_checkout_is_reported_not_left_hanging(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    provider_http.post(INITIALIZE).mock(
        side_effect=[
            httpx.ReadTimeout("timed out"),
            httpx.Response(400, json={"status": False, "message": "Duplicate Transaction Reference"}),
        ]
    )
    headers = key()
    first = await create(client, merchant, headers=headers)
    assert first.status_code == 504
    ref = reference(first.json()["payment"]["id"])
    provider_http.get(f"{PAYSTACK_API}/transaction/verify/{ref}").respond(
        200,
        json=verify_answer(transaction(ref, 10_050, "NGN", "abandoned", "The transaction was not completed")),
    )
    again = await create(client, merchant, headers=headers)
    assert again.status_code == 402, again.text
    assert again.json()["code"] == "checkout_unavailable"


async def test_sync_verifies_by_reference(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    p = await waiting(client, merchant, provider_http)
    ref = p["provider_reference"]
    route = provider_http.get(f"{PAYSTACK_API}/transaction/verify/{ref}").respond(
        200,
        json=verify_answer(transaction(ref, 10_050, "NGN", "abandoned", "The transaction was not completed")),
    )
    r = await client.post(f"/v1/payments/{p['id']}/sync", headers=merchant.auth)
    assert (r.status_code, r.json()["status"]) == (200, "requires_action")
    sent = route.calls.last.request
    assert (sent.method, sent.url.path, sent.content) == ("GET", f"/transaction/verify/{ref}", b"")
    assert sent.headers["authorization"] == AUTH


@pytest.mark.parametrize(
    ("theirs", "ours", "code"),
    [
        ("success", "succeeded", None),
        ("failed", "failed", "insufficient_funds"),
        ("ongoing", "requires_action", None),
        ("pending", "processing", None),
    ],
)
async def test_sync_applies_what_verify_says(
    client: httpx.AsyncClient,
    merchant: Merchant,
    provider_http: respx.Router,
    theirs: str,
    ours: str,
    code: str | None,
) -> None:
    p = await waiting(client, merchant, provider_http)
    ref = p["provider_reference"]
    data = transaction(ref, 10_050, "NGN", theirs, "Insufficient Funds")
    provider_http.get(f"{PAYSTACK_API}/transaction/verify/{ref}").respond(200, json=verify_answer(data))
    r = await client.post(f"/v1/payments/{p['id']}/sync", headers=merchant.auth)
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["failure_code"]) == (ours, code)


@pytest.mark.parametrize(
    "change",
    [
        {"amount": 10_049, "requested_amount": 10_049},
        {"amount": 10_051, "requested_amount": 10_051},
        {"currency": "GHS"},
    ],
    ids=["less", "more", "currency"],
)
async def test_a_success_naming_other_money_is_not_applied(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router, change: dict[str, Any]
) -> None:
    p = await waiting(client, merchant, provider_http)
    ref = p["provider_reference"]
    data = {**transaction(ref, 10_050, "NGN", "success"), **change}
    provider_http.get(f"{PAYSTACK_API}/transaction/verify/{ref}").respond(200, json=verify_answer(data))
    r = await client.post(f"/v1/payments/{p['id']}/sync", headers=merchant.auth)
    assert (r.status_code, r.json()["status"]) == (200, "requires_action")
    events = await get(client, merchant, f"/v1/payments/{p['id']}/events?limit=100")
    rejected = [e for e in events["data"] if e["type"] == "payment.transition_rejected"]
    assert [e["data"]["object"]["rejected"] for e in rejected] == [
        {"target_status": "succeeded", "reason": "amount_mismatch"}
    ]


async def test_fees_passed_on_to_the_customer_still_match(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    p = await waiting(client, merchant, provider_http, amount=30_050)
    ref = p["provider_reference"]
    # docs/providers/paystack.md's sample: the customer paid 40333 for an order of 30050 (fees 10283).
    data = {**transaction(ref, 40_333, "NGN", "success"), "requested_amount": 30_050, "fees": 10_283}
    provider_http.get(f"{PAYSTACK_API}/transaction/verify/{ref}").respond(200, json=verify_answer(data))
    r = await client.post(f"/v1/payments/{p['id']}/sync", headers=merchant.auth)
    assert (r.status_code, r.json()["status"]) == (200, "succeeded")


async def test_a_reference_paystack_never_saw_is_502_and_stays_pending(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    provider_http.post(INITIALIZE).mock(side_effect=httpx.ConnectTimeout("no route"))
    r = await create(client, merchant)
    assert r.status_code == 504
    ref = reference(r.json()["payment"]["id"])
    provider_http.get(f"{PAYSTACK_API}/transaction/verify/{ref}").respond(
        400, json={"status": False, "message": "Transaction reference not found"}
    )
    synced = await client.post(f"/v1/payments/{r.json()['payment']['id']}/sync", headers=merchant.auth)
    assert synced.status_code == 502
    assert synced.json()["code"] == "provider_error"
    assert (await get(client, merchant, f"/v1/payments/{r.json()['payment']['id']}"))["status"] == "pending"


async def test_paystack_payments_cannot_be_canceled(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    p = await waiting(client, merchant, provider_http)
    r = await client.post(f"/v1/payments/{p['id']}/cancel", headers={**merchant.auth, **key()})
    assert r.status_code == 409
    assert r.json()["code"] == "payment_not_cancelable"


async def test_a_live_key_merchant_gets_provider_not_configured(
    client: httpx.AsyncClient, gateway: Gateway, provider_http: respx.Router
) -> None:
    live = await create_merchant(gateway.ctx.db, "Live shop", livemode=True)
    route = provider_http.post(INITIALIZE).respond(500)
    r = await create(client, Merchant(live.merchant_id, live.secret_key))
    assert r.status_code == 422
    assert r.json()["code"] == "provider_not_configured"
    assert route.call_count == 0


async def test_providers_lists_paystack(client: httpx.AsyncClient, merchant: Merchant) -> None:
    data = (await get(client, merchant, "/v1/providers"))["data"]
    [paystack] = [p for p in data if p["name"] == "paystack"]
    assert paystack == {
        "name": "paystack",
        "object": "provider",
        "configured": True,
        "currencies": ["GHS", "KES", "NGN", "USD", "ZAR"],
        "flows": ["direct", "redirect"],
        "refunds": True,
        "partial_refunds": True,
        "cancel": False,
        "account": None,  # no account of the merchant's own
    }


# --- webhooks through the gateway ----------------------------------------------------------------


async def post_hook(client: httpx.AsyncClient, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return await client.post("/v1/webhooks/paystack", content=body, headers=headers)


def charge_success(p: dict[str, Any], **change: Any) -> bytes:
    data = {**transaction(p["provider_reference"], p["amount"], p["currency"], "success"), **change}
    del data["requested_amount"]
    return json.dumps({"event": "charge.success", "data": data}).encode()


async def test_charge_success_settles_the_payment_and_redirect_parameters_do_not(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    p = await waiting(client, merchant, provider_http, return_url="https://shop.example/paid")
    body = charge_success(p)
    r = await post_hook(client, body, sign(body))
    assert (r.status_code, r.json()) == (200, {"received": True})

    async def succeeded() -> bool:
        return bool((await get(client, merchant, f"/v1/payments/{p['id']}"))["status"] == "succeeded")

    await wait_for(succeeded)
    assert await trail(client, merchant, p["id"]) == [
        ("payment.created", "api"),
        ("payment.requires_action", "api"),
        ("payment.succeeded", "webhook"),
    ]


@pytest.mark.parametrize(
    "headers",
    [{"content-type": "application/json"}, {"x-paystack-signature": "ab" * 64}],
    ids=["unsigned", "forged"],
)
async def test_unsigned_or_forged_webhooks_are_401_and_change_nothing(
    client: httpx.AsyncClient,
    gateway: Gateway,
    merchant: Merchant,
    provider_http: respx.Router,
    headers: dict[str, str],
) -> None:
    p = await waiting(client, merchant, provider_http)
    body = charge_success(p)
    r = await post_hook(client, body, headers)
    assert r.status_code == 401
    assert r.json()["code"] == "webhook_signature_invalid"
    stored = await gateway.scalar(
        "SELECT count(*) FROM inbound_webhooks WHERE provider = 'paystack' AND payload::text LIKE :r",
        r=f"%{p['provider_reference']}%",
    )
    assert stored == 0
    assert (await get(client, merchant, f"/v1/payments/{p['id']}"))["status"] == "requires_action"


async def test_events_the_gateway_does_not_act_on_are_stored_and_ignored(
    client: httpx.AsyncClient, gateway: Gateway
) -> None:
    transfer_code = f"PRQ_{uuid.uuid4().hex[:12]}"
    body = json.dumps(
        {
            "event": "paymentrequest.success",
            "data": {"id": 37272792, "domain": "test", "request_code": transfer_code, "amount": 30_000},
        }
    ).encode()
    r = await post_hook(client, body, sign(body))
    assert r.status_code == 200

    async def ignored() -> bool:
        return bool(
            await gateway.scalar(
                "SELECT count(*) FROM inbound_webhooks WHERE provider = 'paystack' AND outcome = 'ignored' "
                "AND provider_event_id = 'test:paymentrequest.success:37272792' AND payload::text LIKE :c",
                c=f"%{transfer_code}%",
            )
        )

    await wait_for(ignored)


# --- refunds -------------------------------------------------------------------------------------


async def paid(client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router) -> dict[str, Any]:
    def charged(req: httpx.Request) -> httpx.Response:
        sent = json.loads(req.content)
        return httpx.Response(
            200, json=charge_answer(transaction(sent["reference"], 10_050, "NGN", "success"))
        )

    provider_http.post(CHARGE).mock(side_effect=charged)
    r = await create(client, merchant, payment_method=AUTHORIZATION_CODE)
    assert (r.status_code, r.json()["status"]) == (201, "succeeded"), r.text
    return dict(r.json())


async def refund(
    client: httpx.AsyncClient, merchant: Merchant, payment_id: str, amount: int | None = None
) -> dict[str, Any]:
    r = await client.post(
        f"/v1/payments/{payment_id}/refunds",
        json={} if amount is None else {"amount": amount},
        headers={**merchant.auth, **key()},
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


@pytest.mark.parametrize("amount", [None, 2_550], ids=["full", "partial"])
async def test_a_refund_is_sent_exactly_and_settled_by_its_webhook(
    client: httpx.AsyncClient,
    merchant: Merchant,
    provider_http: respx.Router,
    amount: int | None,
) -> None:
    p = await paid(client, merchant, provider_http)
    ref = p["provider_reference"]
    expected = 10_050 if amount is None else amount
    route = provider_http.post(REFUND).respond(200, json=refund_answer(ref, expected, "NGN"))
    re_ = await refund(client, merchant, p["id"], amount)
    assert route.call_count == 1
    sent = route.calls.last.request
    assert (sent.method, sent.url.path, sent.headers["authorization"]) == ("POST", "/refund", AUTH)
    assert json.loads(sent.content) == {
        "transaction": ref,
        "amount": expected,
        "currency": "NGN",
        "merchant_note": f"Gateway refund {re_['id']} of payment {p['id']}",
    }
    assert (re_["status"], re_["amount"], re_["provider_reference"]) == (
        "pending",
        expected,
        f"{ref}:{expected}",
    )

    # Paystack's webhook names the transaction and the amount (as a string), not the refund.
    body = refund_event(ref, expected, "NGN")
    assert (await post_hook(client, body, sign(body))).status_code == 200

    async def refunded() -> bool:
        return bool((await get(client, merchant, f"/v1/refunds/{re_['id']}"))["status"] == "succeeded")

    await wait_for(refunded)
    after = await get(client, merchant, f"/v1/payments/{p['id']}")
    assert (after["status"], after["amount_refunded"]) == (
        ("refunded", 10_050) if amount is None else ("partially_refunded", 2_550)
    )


async def test_a_failed_refund_webhook_fails_the_refund(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    p = await paid(client, merchant, provider_http)
    provider_http.post(REFUND).respond(200, json=refund_answer(p["provider_reference"], 1_000, "NGN"))
    re_ = await refund(client, merchant, p["id"], 1_000)
    body = refund_event(p["provider_reference"], 1_000, "NGN", "failed")
    assert (await post_hook(client, body, sign(body))).status_code == 200

    async def failed() -> bool:
        return bool((await get(client, merchant, f"/v1/refunds/{re_['id']}"))["status"] == "failed")

    await wait_for(failed)
    assert (await get(client, merchant, f"/v1/refunds/{re_['id']}"))["failure_code"] == "refund_failed"
    assert (await get(client, merchant, f"/v1/payments/{p['id']}"))["status"] == "succeeded"


async def test_a_refund_processed_at_once_succeeds_at_once(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    p = await paid(client, merchant, provider_http)
    provider_http.post(REFUND).respond(
        200, json=refund_answer(p["provider_reference"], 500, "NGN", "processed")
    )
    re_ = await refund(client, merchant, p["id"], 500)
    assert re_["status"] == "succeeded"
    assert (await get(client, merchant, f"/v1/payments/{p['id']}"))["amount_refunded"] == 500


async def test_a_refund_paystack_refuses_fails_with_its_message(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    p = await paid(client, merchant, provider_http)
    provider_http.post(REFUND).respond(
        400, json={"status": False, "message": "Transaction has been fully reversed"}
    )
    re_ = await refund(client, merchant, p["id"], 500)
    assert (re_["status"], re_["failure_code"], re_["failure_message"]) == (
        "failed",
        "refund_declined",
        "Paystack: Transaction has been fully reversed",
    )


async def test_a_refund_timeout_is_504_and_keeps_the_refund_pending(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    p = await paid(client, merchant, provider_http)
    provider_http.post(REFUND).mock(side_effect=httpx.ReadTimeout("timed out"))
    r = await client.post(
        f"/v1/payments/{p['id']}/refunds", json={"amount": 500}, headers={**merchant.auth, **key()}
    )
    assert r.status_code == 504
    assert r.json()["code"] == "provider_timeout"
    assert (await get(client, merchant, f"/v1/refunds/{r.json()['refund']}"))["status"] == "pending"
