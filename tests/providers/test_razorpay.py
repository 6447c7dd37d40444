"""Razorpay: the exact requests the gateway sends, how it reads every answer, and its webhooks.

Provider HTTP is answered by respx with bodies shaped as docs/providers/razorpay.md shows them (builders
in drivers/razorpay.py); signatures are made with hmac/hashlib and checked against the test vector of
docs/providers/razorpay.md and against Razorpay's own SDK (razorpay.Utility).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from typing import Any

import httpx
import pytest
import razorpay
import respx

from drivers.razorpay import (
    RAZORPAY_API,
    RAZORPAY_KEY_ID,
    RAZORPAY_KEY_SECRET,
    collection,
    event,
    new_id,
    order,
    payment,
    refund,
    sign,
)
from gateway.providers.base import WebhookPayloadError
from gateway.providers.razorpay import notifications as nt
from gateway.providers.razorpay.settings import RazorpaySettings
from support import Gateway, Merchant, wait_for

ORDERS = f"{RAZORPAY_API}/v1/orders"
AUTH = "Basic " + base64.b64encode(f"{RAZORPAY_KEY_ID}:{RAZORPAY_KEY_SECRET}".encode()).decode()

# docs/providers/razorpay.md, "Test vector"
VECTOR_BODY = (
    b'{"event":"charge.success",'
    b'"data":{"reference":"ref_1","amount":10000,"currency":"NGN","status":"success"}}'
)
VECTOR_SECRET = "whsecret"
VECTOR_SIGNATURE = "5eec5ea5bcf6d18db82175157e9fcbf0d3ee6dfbae530d22cd6e97e6610d3d7b"


def key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


async def get(client: httpx.AsyncClient, merchant: Merchant, path: str) -> dict[str, Any]:
    r = await client.get(path, headers=merchant.auth)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def trail(client: httpx.AsyncClient, merchant: Merchant, payment_id: str) -> list[tuple[str, str]]:
    data = (await get(client, merchant, f"/v1/payments/{payment_id}/events?limit=100"))["data"]
    return [(e["type"], e["source"]) for e in reversed(data)]


async def waiting(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router, amount: int = 49_900
) -> dict[str, Any]:
    """A payment whose order Razorpay created: requires_action, its order id the provider_reference."""
    order_id = new_id("order")
    provider_http.post(ORDERS).mock(
        side_effect=lambda req: httpx.Response(
            200, json=order(order_id, amount, "INR", json.loads(req.content)["receipt"])
        )
    )
    body = {"amount": amount, "currency": "INR", "provider": "razorpay", "reference": "ORD-1042"}
    r = await client.post("/v1/payments", json=body, headers={**merchant.auth, **key()})
    assert r.status_code == 201, r.text
    p = dict(r.json())
    assert (p["status"], p["provider_reference"]) == ("requires_action", order_id)
    return p


async def status(client: httpx.AsyncClient, merchant: Merchant, payment_id: str) -> str:
    return str((await get(client, merchant, f"/v1/payments/{payment_id}"))["status"])


async def post(client: httpx.AsyncClient, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return await client.post("/v1/webhooks/razorpay", content=body, headers=headers)


async def stored(gateway: Gateway, needle: str) -> int:
    n: int = await gateway.scalar(
        "SELECT count(*) FROM inbound_webhooks WHERE provider = 'razorpay' AND payload::text LIKE :n",
        n=f"%{needle}%",
    )
    return n


# --- webhook signatures ----------------------------------------------------------------------------


def test_signature_is_the_documented_vector() -> None:
    assert nt.signature(VECTOR_SECRET, VECTOR_BODY) == VECTOR_SIGNATURE
    assert nt.signature_matches([VECTOR_SECRET], VECTOR_BODY, VECTOR_SIGNATURE.upper())
    assert not nt.signature_matches([VECTOR_SECRET], VECTOR_BODY + b" ", VECTOR_SIGNATURE)
    assert not nt.signature_matches(["other"], VECTOR_BODY, VECTOR_SIGNATURE)


def test_razorpays_own_sdk_accepts_our_signature_and_refuses_a_changed_one() -> None:
    body = event("payment.captured", payment=payment("order_SdkCheck000001", 49_900, "INR", "captured"))
    ours = nt.signature(VECTOR_SECRET, body)
    utility = razorpay.Utility()
    assert utility.verify_webhook_signature(body.decode(), ours, VECTOR_SECRET) is True
    assert utility.verify_webhook_signature(VECTOR_BODY.decode(), VECTOR_SIGNATURE, VECTOR_SECRET) is True
    changed = ours[:-1] + ("1" if ours.endswith("0") else "0")  # never the signature itself
    with pytest.raises(razorpay.errors.SignatureVerificationError):
        utility.verify_webhook_signature(body.decode(), changed, VECTOR_SECRET)


def test_interpret_reads_payment_refund_and_other_events() -> None:
    captured = json.loads(event("payment.captured", payment=payment("order_A", 100, "INR", "captured")))
    got = nt.interpret(captured, "evt_1")
    assert (got.event_id, got.provider_reference) == ("evt_1", "order_A")
    assert got.result is not None
    assert (got.result.status, got.result.amount, got.result.currency) == ("succeeded", 100, "INR")
    failed = json.loads(event("payment.failed", payment=payment("order_A", 100, "INR", "failed")))
    assert nt.interpret(failed, "evt_2").result is None  # one attempt; the order stays payable
    authorized = json.loads(event("payment.authorized", payment=payment("order_A", 100, "INR", "authorized")))
    assert nt.interpret(authorized, "evt_3").result is None  # captured by the status query
    processed = json.loads(event("refund.processed", refund=refund("pay_A", 40, "INR", "re_1", "processed")))
    r = nt.interpret(processed, "evt_4")
    assert r.refund_result is not None
    assert (r.refund_reference, r.refund_result.status, r.refund_result.amount) == (
        processed["payload"]["refund"]["entity"]["id"],
        "succeeded",
        40,
    )
    # Without the event id header (the sweeper re-reading a stored body), the key is the body's digest.
    assert nt.interpret(captured).event_id == nt.interpret(captured).event_id != "evt_1"
    # A header that is not an id is not used as one.
    assert nt.interpret(captured, "x" * 300).event_id.startswith("payment.captured:")
    with pytest.raises(WebhookPayloadError):
        nt.interpret({"event": "payment.captured", "payload": {"payment": {}}}, "evt_5")


# --- payments --------------------------------------------------------------------------------------


async def test_create_sends_the_order_with_basic_auth_and_answers_the_checkout_form(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    route = provider_http.post(ORDERS).mock(
        side_effect=lambda req: httpx.Response(
            200, json=order("order_IluGWxBm9U8zJ8", 49_900, "INR", json.loads(req.content)["receipt"])
        )
    )
    body = {
        "amount": 49_900,
        "currency": "INR",
        "provider": "razorpay",
        "reference": "ORD-1042",
        "description": "Two notebooks",
        "return_url": "https://shop.example/return",
        "customer": {"name": "Gaurav Kumar", "email": "gaurav.kumar@example.com", "phone": "+919000090000"},
    }
    r = await client.post("/v1/payments", json=body, headers={**merchant.auth, **key()})
    assert r.status_code == 201, r.text
    p = r.json()
    assert route.call_count == 1
    request = route.calls.last.request
    assert request.headers["authorization"] == AUTH
    assert json.loads(request.content) == {
        "amount": 49_900,
        "currency": "INR",
        "receipt": p["id"],
        "notes": {"gateway_payment_id": p["id"], "order_reference": "ORD-1042"},
    }
    assert (p["status"], p["provider_reference"]) == ("requires_action", "order_IluGWxBm9U8zJ8")
    assert p["next_action"] == {
        "type": "redirect_to_url",
        "redirect_to_url": {
            "url": "https://razorpay.test/v1/checkout/embedded",
            "return_url": "https://shop.example/return",
            "method": "POST",
            "fields": {
                "key_id": RAZORPAY_KEY_ID,
                "order_id": "order_IluGWxBm9U8zJ8",
                "name": "Gateway Test Shop",
                "description": "Two notebooks",
                "prefill[name]": "Gaurav Kumar",
                "prefill[email]": "gaurav.kumar@example.com",
                "prefill[contact]": "+919000090000",
                "callback_url": "https://shop.example/return",
                "cancel_url": "https://shop.example/return",
            },
        },
    }
    assert RAZORPAY_KEY_SECRET not in r.text


async def test_a_payment_method_is_refused_without_calling_razorpay(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    route = provider_http.post(ORDERS).respond(500)
    body = {"amount": 49_900, "currency": "INR", "provider": "razorpay", "payment_method": "card"}
    r = await client.post("/v1/payments", json=body, headers={**merchant.auth, **key()})
    assert (r.status_code, r.json()["code"]) == (402, "invalid_payment_method")
    assert route.call_count == 0


async def test_razorpay_failing_is_502_and_the_payment_stays_pending(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    provider_http.post(ORDERS).respond(502, json={"error": {"code": "SERVER_ERROR"}})
    body = {"amount": 49_900, "currency": "INR", "provider": "razorpay"}
    r = await client.post("/v1/payments", json=body, headers={**merchant.auth, **key()})
    assert (r.status_code, r.json()["code"]) == (502, "provider_error")
    assert r.json()["payment"]["status"] == "pending"


async def test_sync_captures_an_authorized_payment_of_our_amount(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    p = await waiting(client, merchant, provider_http)
    held = payment(p["provider_reference"], 49_900, "INR", "authorized")
    failed = payment(p["provider_reference"], 49_900, "INR", "failed")
    provider_http.get(f"{ORDERS}/{p['provider_reference']}/payments").respond(
        200, json=collection([failed, held])
    )
    capture = provider_http.post(f"{RAZORPAY_API}/v1/payments/{held['id']}/capture").respond(
        200, json={**held, "status": "captured", "captured": True}
    )
    r = await client.post(f"/v1/payments/{p['id']}/sync", headers=merchant.auth)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "succeeded"
    assert capture.call_count == 1
    assert json.loads(capture.calls.last.request.content) == {"amount": 49_900, "currency": "INR"}
    assert r.json()["payment_method_details"]["last4"] == "1111"


async def test_an_authorized_payment_of_other_money_is_never_captured(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    p = await waiting(client, merchant, provider_http)
    held = payment(p["provider_reference"], 100, "INR", "authorized")
    provider_http.get(f"{ORDERS}/{p['provider_reference']}/payments").respond(200, json=collection([held]))
    capture = provider_http.post(f"{RAZORPAY_API}/v1/payments/{held['id']}/capture").respond(500)
    r = await client.post(f"/v1/payments/{p['id']}/sync", headers=merchant.auth)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "requires_action"
    assert capture.call_count == 0


async def test_only_failed_attempts_leave_the_order_payable(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    p = await waiting(client, merchant, provider_http)
    failed = payment(p["provider_reference"], 49_900, "INR", "failed")
    provider_http.get(f"{ORDERS}/{p['provider_reference']}/payments").respond(200, json=collection([failed]))
    r = await client.post(f"/v1/payments/{p['id']}/sync", headers=merchant.auth)
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["next_action"]) == ("requires_action", p["next_action"])


# --- webhooks --------------------------------------------------------------------------------------


async def test_a_bad_signature_is_401_stores_nothing_and_moves_nothing(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, provider_http: respx.Router
) -> None:
    p = await waiting(client, merchant, provider_http)
    body = event("payment.captured", payment=payment(p["provider_reference"], 49_900, "INR", "captured"))
    for headers in (
        sign(body, "not-the-webhook-secret"),
        sign(body, RAZORPAY_KEY_SECRET),  # the API secret is not the webhook's
        {k: v for k, v in sign(body).items() if k != "x-razorpay-signature"},
        sign(body + b"\n"),
    ):
        r = await post(client, body, headers)
        assert (r.status_code, r.json()["code"]) == (401, "webhook_signature_invalid")
    assert await stored(gateway, p["provider_reference"]) == 0
    assert await status(client, merchant, p["id"]) == "requires_action"


async def test_a_redelivered_event_is_stored_once_and_order_paid_after_captured_changes_nothing(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, provider_http: respx.Router
) -> None:
    p = await waiting(client, merchant, provider_http)
    paid = payment(p["provider_reference"], 49_900, "INR", "captured")
    captured = event("payment.captured", payment=paid)
    headers = sign(captured, event_id="Fx3Uf1nGyHdAkY")
    for _ in range(3):  # Razorpay retries with the same x-razorpay-event-id
        assert (await post(client, captured, headers)).status_code == 200

    async def succeeded() -> bool:
        return await status(client, merchant, p["id"]) == "succeeded"

    await wait_for(succeeded)
    assert await stored(gateway, paid["id"]) == 1
    whole = order(p["provider_reference"], 49_900, "INR", p["id"], "paid")
    order_paid = event("order.paid", payment=paid, order=whole)
    assert (await post(client, order_paid, sign(order_paid))).status_code == 200

    async def two() -> bool:
        return await stored(gateway, paid["id"]) == 2

    await wait_for(two)
    events = [t for t, _ in await trail(client, merchant, p["id"])]
    assert events.count("payment.succeeded") == 1
    assert "payment.transition_rejected" not in events


async def test_order_paid_naming_other_money_is_not_applied(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    p = await waiting(client, merchant, provider_http)
    paid = payment(p["provider_reference"], 100, "INR", "captured")
    body = event(
        "order.paid", payment=paid, order=order(p["provider_reference"], 100, "INR", p["id"], "paid")
    )
    assert (await post(client, body, sign(body))).status_code == 200

    async def rejected() -> bool:
        return ("payment.transition_rejected", "webhook") in await trail(client, merchant, p["id"])

    await wait_for(rejected)
    assert await status(client, merchant, p["id"]) == "requires_action"


async def test_failed_and_authorized_events_are_stored_and_move_nothing(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, provider_http: respx.Router
) -> None:
    p = await waiting(client, merchant, provider_http)
    for name, state in (("payment.failed", "failed"), ("payment.authorized", "authorized")):
        body = event(name, payment=payment(p["provider_reference"], 49_900, "INR", state))
        assert (await post(client, body, sign(body))).status_code == 200

    async def both() -> bool:
        n: int = await gateway.scalar(
            "SELECT count(*) FROM inbound_webhooks WHERE provider = 'razorpay' AND outcome = 'ignored' "
            "AND payload::text LIKE :o",
            o=f"%{p['provider_reference']}%",
        )
        return n == 2

    await wait_for(both)
    assert await status(client, merchant, p["id"]) == "requires_action"


# --- refunds ---------------------------------------------------------------------------------------


async def test_partial_refunds_carry_our_id_as_idempotency_key_and_finish_by_webhook(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    p = await waiting(client, merchant, provider_http)
    paid = payment(p["provider_reference"], 49_900, "INR", "captured")
    body = event("payment.captured", payment=paid)
    assert (await post(client, body, sign(body))).status_code == 200

    async def succeeded() -> bool:
        return await status(client, merchant, p["id"]) == "succeeded"

    await wait_for(succeeded)
    provider_http.get(f"{ORDERS}/{p['provider_reference']}/payments").respond(200, json=collection([paid]))
    answers: list[dict[str, Any]] = []

    def refunded(req: httpx.Request) -> httpx.Response:
        sent = json.loads(req.content)
        answers.append(refund(paid["id"], sent["amount"], "INR", sent["receipt"]))
        return httpx.Response(200, json=answers[-1])

    route = provider_http.post(f"{RAZORPAY_API}/v1/payments/{paid['id']}/refund").mock(side_effect=refunded)
    made = []
    for amount in (10_000, 15_000):
        r = await client.post(
            f"/v1/payments/{p['id']}/refunds", json={"amount": amount}, headers={**merchant.auth, **key()}
        )
        assert r.status_code == 201, r.text
        assert (r.json()["status"], r.json()["amount"]) == ("pending", amount)
        made.append(r.json())
        request = route.calls.last.request
        assert request.headers["x-refund-idempotency"] == r.json()["id"]
        assert request.headers["authorization"] == AUTH
        assert json.loads(request.content) == {
            "amount": amount,
            "speed": "normal",
            "receipt": r.json()["id"],
            "notes": {"gateway_refund_id": r.json()["id"], "gateway_payment_id": p["id"]},
        }
    assert [m["provider_reference"] for m in made] == [a["id"] for a in answers]
    # More than what is left is refused by the gateway without asking Razorpay.
    over = await client.post(
        f"/v1/payments/{p['id']}/refunds", json={"amount": 25_000}, headers={**merchant.auth, **key()}
    )
    assert over.status_code == 422, over.text
    assert route.call_count == 2

    for answer in answers:
        done = event("refund.processed", refund={**answer, "status": "processed"}, payment=paid)
        assert (await post(client, done, sign(done))).status_code == 200

    async def refunded_both() -> bool:
        after = await get(client, merchant, f"/v1/payments/{p['id']}")
        return bool((after["status"], after["amount_refunded"]) == ("partially_refunded", 25_000))

    await wait_for(refunded_both)


async def test_a_refund_razorpay_refuses_fails_and_releases_its_amount(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    p = await waiting(client, merchant, provider_http)
    paid = payment(p["provider_reference"], 49_900, "INR", "captured")
    provider_http.get(f"{ORDERS}/{p['provider_reference']}/payments").respond(200, json=collection([paid]))
    r = await client.post(f"/v1/payments/{p['id']}/sync", headers=merchant.auth)
    assert r.json()["status"] == "succeeded"
    provider_http.post(f"{RAZORPAY_API}/v1/payments/{paid['id']}/refund").respond(
        400,
        json={
            "error": {
                "code": "BAD_REQUEST_ERROR",
                "description": "The refund amount provided is greater than amount captured",
                "source": "business",
                "step": "payment_initiation",
                "reason": "input_validation_failed",
                "metadata": {},
            }
        },
    )
    made = await client.post(
        f"/v1/payments/{p['id']}/refunds", json={"amount": 10_000}, headers={**merchant.auth, **key()}
    )
    assert made.status_code == 201, made.text
    assert (made.json()["status"], made.json()["failure_code"]) == ("failed", "refund_declined")
    assert (
        made.json()["failure_message"]
        == "Razorpay: The refund amount provided is greater than amount captured"
    )
    assert (await get(client, merchant, f"/v1/payments/{p['id']}"))["amount_refunded"] == 0


async def test_a_lost_create_is_found_by_its_receipt_and_the_checkout_form_is_given_again(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    provider_http.post(ORDERS).mock(side_effect=httpx.ReadTimeout("timed out"))
    body = {"amount": 49_900, "currency": "INR", "provider": "razorpay"}
    r = await client.post("/v1/payments", json=body, headers={**merchant.auth, **key()})
    assert (r.status_code, r.json()["code"]) == (504, "provider_timeout")
    p = r.json()["payment"]
    found = order("order_FoundByReceipt1", 49_900, "INR", p["id"], "created")
    other = order("order_SomeoneElses01", 49_900, "INR", "another-receipt", "created")
    lookup = provider_http.get(ORDERS, params={"receipt": p["id"]}).respond(
        200, json=collection([other, found])
    )
    provider_http.get(f"{ORDERS}/order_FoundByReceipt1/payments").respond(200, json=collection([]))
    synced = await client.post(f"/v1/payments/{p['id']}/sync", headers=merchant.auth)
    assert synced.status_code == 200, synced.text
    assert lookup.call_count == 1
    assert lookup.calls.last.request.headers["authorization"] == AUTH
    got = synced.json()
    assert (got["status"], got["provider_reference"]) == ("requires_action", "order_FoundByReceipt1")
    assert got["next_action"]["redirect_to_url"]["fields"] == {
        "key_id": RAZORPAY_KEY_ID,
        "order_id": "order_FoundByReceipt1",
        "name": "Gateway Test Shop",
    }


def test_settings_refuse_currencies_whose_subunits_are_not_hundredths() -> None:
    with pytest.raises(ValueError, match="two decimals"):
        RazorpaySettings(currencies=["INR", "KWD"])
    assert RazorpaySettings().currencies == ["INR"]


def test_signature_helpers_agree_with_hmac() -> None:
    body = b'{"event":"order.paid"}'
    assert nt.signature("s3cret", body) == hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()


async def test_a_merchants_own_account_uses_its_keys_and_only_its_webhook_secret(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, provider_http: respx.Router
) -> None:
    creds = {
        "key_id": "rzp_test_MerchantOwn001",
        "key_secret": "own-key-secret-0123456789",
        "webhook_secret": "own-hook-secret-0123456789",
    }
    live = await client.put(
        "/v1/provider-accounts/razorpay",
        json={"credentials": {**creds, "key_id": "rzp_live_MerchantOwn001"}},
        headers=merchant.auth,
    )
    assert (live.status_code, live.json()["code"]) == (422, "validation_error"), live.text
    r = await client.put(
        "/v1/provider-accounts/razorpay",
        json={"credentials": creds, "settings": {"checkout_name": "Chai Point"}},
        headers=merchant.auth,
    )
    assert r.status_code == 200, r.text
    account = r.json()
    assert account["webhook_url"] == f"{gateway.base_url}/v1/webhooks/razorpay/{account['id']}"
    assert creds["key_secret"] not in r.text
    assert creds["webhook_secret"] not in r.text
    route = provider_http.post(ORDERS).mock(
        side_effect=lambda req: httpx.Response(
            200, json=order("order_OwnAccount0001", 49_900, "INR", json.loads(req.content)["receipt"])
        )
    )
    body = {"amount": 49_900, "currency": "INR", "provider": "razorpay"}
    made = await client.post("/v1/payments", json=body, headers={**merchant.auth, **key()})
    assert made.status_code == 201, made.text
    own = "Basic " + base64.b64encode(f"{creds['key_id']}:{creds['key_secret']}".encode()).decode()
    assert route.calls.last.request.headers["authorization"] == own
    fields = made.json()["next_action"]["redirect_to_url"]["fields"]
    assert (fields["key_id"], fields["name"]) == (creds["key_id"], "Chai Point")

    captured = event("payment.captured", payment=payment("order_OwnAccount0001", 49_900, "INR", "captured"))
    url = f"/v1/webhooks/razorpay/{account['id']}"
    # The deployment's webhook secret does not speak for the merchant's account.
    refused = await client.post(url, content=captured, headers=sign(captured))
    assert (refused.status_code, refused.json()["code"]) == (401, "webhook_signature_invalid")
    ok = await client.post(url, content=captured, headers=sign(captured, creds["webhook_secret"]))
    assert ok.status_code == 200, ok.text

    async def succeeded() -> bool:
        return await status(client, merchant, made.json()["id"]) == "succeeded"

    await wait_for(succeeded)
