"""PayPal Orders v2: the exact requests the gateway sends and how it reads every answer.

Provider HTTP is answered by the fake of tests/fakes/paypal.py (orders, captures and refunds kept;
a repeated PayPal-Request-Id answered with its first answer, as PayPal does) with bodies shaped as
docs/providers/paypal.md shows them; the gateway itself runs for real, on real PostgreSQL and Redis.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from typing import Any

import httpx
import pytest
import respx

from fakes.paypal import (
    ACCESS_TOKEN,
    CLIENT_ID,
    CLIENT_SECRET,
    WEBHOOK_ID,
    FakePaypal,
    capture_resource,
    event,
    signature,
)
from gateway.providers.base import WebhookVerificationError
from gateway.providers.paypal import transformers as tf
from gateway.providers.paypal.adapter import PaypalProvider
from gateway.providers.paypal.settings import TOKEN_KEY_PREFIX
from gateway.reconciler.service import Reconciler
from gateway.settings import ReconcilerSettings
from support import Gateway, Merchant, assert_problem, wait_for

Routes = dict[str, respx.Route]


@pytest.fixture
def paypal(provider_http: respx.Router) -> tuple[FakePaypal, Routes]:
    fake = FakePaypal()
    return fake, fake.install(provider_http)


async def forget_tokens(gateway: Gateway) -> None:
    """Empties the shared token cache, as on a fresh deployment."""
    keys = [k async for k in gateway.ctx.redis.scan_iter(match=TOKEN_KEY_PREFIX + "*")]
    if keys:
        await gateway.ctx.redis.delete(*keys)


async def create(client: httpx.AsyncClient, merchant: Merchant, **over: Any) -> httpx.Response:
    body = {"amount": 5_000, "currency": "USD", "provider": "paypal", **over}
    return await client.post(
        "/v1/payments", json=body, headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())}
    )


async def get(client: httpx.AsyncClient, merchant: Merchant, path: str) -> dict[str, Any]:
    r = await client.get(path, headers=merchant.auth)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def trail(client: httpx.AsyncClient, merchant: Merchant, payment_id: str) -> list[tuple[str, str]]:
    data = (await get(client, merchant, f"/v1/payments/{payment_id}/events?limit=100"))["data"]
    return [(e["type"], e["source"]) for e in reversed(data)]


async def waiting(client: httpx.AsyncClient, merchant: Merchant, **over: Any) -> dict[str, Any]:
    r = await create(client, merchant, **over)
    assert r.status_code == 201, r.text
    p = dict(r.json())
    assert p["status"] == "requires_action"
    return p


async def stored(gateway: Gateway, event_id: str) -> int:
    return int(
        await gateway.scalar(
            "SELECT count(*) FROM inbound_webhooks WHERE provider = 'paypal' AND provider_event_id = :e",
            e=event_id,
        )
    )


# --- amounts (pure) --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "value"),
    [
        (1_050, "USD", "10.50"),
        (5, "EUR", "0.05"),
        (500, "JPY", "500"),
        (150_000, "HUF", "1500"),
        (9_900, "TWD", "99"),
    ],
)
def test_amounts_are_decimal_strings_in_major_units(amount: int, currency: str, value: str) -> None:
    zero = {"HUF", "JPY", "TWD"}
    assert tf.amount_value(amount, currency, zero) == value
    assert tf.money_of({"currency_code": currency, "value": value}) == (amount, currency)


def test_zero_decimal_currencies_refuse_fractions() -> None:
    assert tf.amount_problem(150_050, "HUF", {"HUF"}) == (
        "PayPal takes HUF in whole units only: amount must be a multiple of 100"
    )
    assert tf.amount_problem(150_050, "HUF", set()) is None


# --- create ----------------------------------------------------------------------------------------


async def test_create_sends_the_order_with_a_request_id_and_redirects_to_the_payer_action_link(
    gateway: Gateway, client: httpx.AsyncClient, merchant: Merchant, paypal: tuple[FakePaypal, Routes]
) -> None:
    fake, routes = paypal
    await forget_tokens(gateway)
    p = await waiting(
        client,
        merchant,
        amount=1_050,
        description="Order 7",
        reference="INV-7",
        return_url="https://shop.example/back",
    )
    token_call = routes["token"].calls.last.request
    assert (
        token_call.headers["Authorization"]
        == "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    )
    assert token_call.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert token_call.content == b"grant_type=client_credentials"

    assert routes["create"].call_count == 1
    sent = routes["create"].calls.last.request
    assert sent.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert sent.headers["PayPal-Request-Id"] == f"{p['id']}-create"
    assert json.loads(sent.content) == {
        "intent": "CAPTURE",
        "purchase_units": [
            {
                "reference_id": p["id"],
                "custom_id": p["id"],
                "amount": {"currency_code": "USD", "value": "10.50"},
                "description": "Order 7",
                "invoice_id": "INV-7",
            }
        ],
        "payment_source": {
            "paypal": {
                "experience_context": {
                    "user_action": "PAY_NOW",
                    "shipping_preference": "NO_SHIPPING",
                    "return_url": "https://shop.example/back",
                    "cancel_url": "https://shop.example/back",
                }
            }
        },
    }
    order = fake.order_of(p["id"])
    assert order is not None
    assert p["provider_reference"] == order.id
    assert p["next_action"] == {
        "type": "redirect_to_url",
        "redirect_to_url": {
            "url": f"https://www.sandbox.paypal.com/checkoutnow?token={order.id}",
            "return_url": "https://shop.example/back",
        },
    }


async def test_the_token_is_fetched_once_and_renewed_once_when_paypal_refuses_it(
    gateway: Gateway, client: httpx.AsyncClient, merchant: Merchant, paypal: tuple[FakePaypal, Routes]
) -> None:
    _, routes = paypal
    await forget_tokens(gateway)
    await waiting(client, merchant)
    await waiting(client, merchant)
    assert (routes["token"].call_count, routes["create"].call_count) == (1, 2)
    # PayPal no longer takes the cached token: dropped, a new one fetched, the call sent again once.
    stale = [k async for k in gateway.ctx.redis.scan_iter(match=TOKEN_KEY_PREFIX + "*")]
    assert len(stale) == 1
    await gateway.ctx.redis.set(stale[0], "expired-token")
    await waiting(client, merchant)
    assert routes["token"].call_count == 2
    assert [c.request.headers["Authorization"] for c in routes["create"].calls][-2:] == [
        "Bearer expired-token",
        f"Bearer {ACCESS_TOKEN}",
    ]
    assert await gateway.ctx.redis.get(stale[0]) == ACCESS_TOKEN.encode()


async def test_rejected_client_credentials_are_502_provider_misconfigured_without_the_secret(
    gateway: Gateway, client: httpx.AsyncClient, merchant: Merchant, paypal: tuple[FakePaypal, Routes]
) -> None:
    _, routes = paypal
    await forget_tokens(gateway)
    routes["token"].respond(
        401, json={"error": "invalid_client", "error_description": "Client Authentication failed"}
    )
    r = await create(client, merchant)
    assert_problem(r, 502, "provider_misconfigured")
    assert CLIENT_SECRET not in r.text
    assert routes["create"].call_count == 0


async def test_amounts_paypal_cannot_take_are_refused_before_any_request(
    client: httpx.AsyncClient, merchant: Merchant, paypal: tuple[FakePaypal, Routes]
) -> None:
    _, routes = paypal
    r = await create(client, merchant, amount=150_050, currency="HUF")
    assert r.status_code == 402, r.text
    assert r.json()["code"] == "amount_not_supported"
    assert routes["create"].call_count == 0
    ok = await waiting(client, merchant, amount=150_000, currency="HUF")
    assert json.loads(routes["create"].calls.last.request.content)["purchase_units"][0]["amount"] == {
        "currency_code": "HUF",
        "value": "1500",
    }
    assert ok["amount"] == 150_000


# --- capture ---------------------------------------------------------------------------------------


async def test_an_approved_order_is_captured_exactly_once(
    gateway: Gateway, client: httpx.AsyncClient, merchant: Merchant, paypal: tuple[FakePaypal, Routes]
) -> None:
    fake, routes = paypal
    p = await waiting(client, merchant)
    order = fake.settle(p, "APPROVED")
    approved = event("CHECKOUT.ORDER.APPROVED", "checkout-order", order.body())
    headers, body = fake.deliver(approved)
    # The webhook, a sync and the same webhook again race: one capture, with our request id.
    results = await asyncio.gather(
        client.post("/v1/webhooks/paypal", content=body, headers=headers),
        client.post(f"/v1/payments/{p['id']}/sync", headers=merchant.auth),
        client.post("/v1/webhooks/paypal", content=body, headers=headers),
    )
    assert [r.status_code for r in results] == [200, 200, 200]

    async def succeeded() -> bool:
        return bool((await get(client, merchant, f"/v1/payments/{p['id']}"))["status"] == "succeeded")

    await wait_for(succeeded)
    request_ids = {c.request.headers["PayPal-Request-Id"] for c in routes["capture"].calls}
    assert request_ids == {f"{p['id']}-capture"}
    assert order.capture is not None
    assert order.status == "COMPLETED"
    assert [t for t, _ in await trail(client, merchant, p["id"])].count("payment.succeeded") == 1
    assert await stored(gateway, approved["id"]) == 1

    # PayPal's own word on the capture afterwards changes nothing and captures nothing.
    calls = routes["capture"].call_count
    h2, b2 = fake.deliver(event("PAYMENT.CAPTURE.COMPLETED", "capture", capture_resource(order)))
    assert (await client.post("/v1/webhooks/paypal", content=b2, headers=h2)).status_code == 200
    synced = await client.post(f"/v1/payments/{p['id']}/sync", headers=merchant.auth)
    assert synced.json()["status"] == "succeeded"
    assert routes["capture"].call_count == calls


async def test_the_reconciler_captures_an_order_approved_while_no_webhook_came(
    gateway: Gateway, client: httpx.AsyncClient, merchant: Merchant, paypal: tuple[FakePaypal, Routes]
) -> None:
    fake, routes = paypal
    p = await waiting(client, merchant)
    fake.settle(p, "APPROVED")
    await gateway.execute("UPDATE payments SET next_reconcile_at = now() WHERE id = :p", p=p["id"])
    await Reconciler(
        gateway.ctx.db, gateway.ctx.registry, ReconcilerSettings(run_in_process=False)
    ).run_once()
    assert (await get(client, merchant, f"/v1/payments/{p['id']}"))["status"] == "succeeded"
    assert routes["capture"].call_count == 1
    assert await trail(client, merchant, p["id"]) == [
        ("payment.created", "api"),
        ("payment.requires_action", "api"),
        ("payment.succeeded", "reconciler"),
    ]


async def test_a_pending_capture_is_processing_until_paypal_says_it_completed(
    client: httpx.AsyncClient, merchant: Merchant, paypal: tuple[FakePaypal, Routes]
) -> None:
    fake, routes = paypal
    p = await waiting(client, merchant)
    order = fake.settle(p, "APPROVED")
    order.capture_status = "PENDING"
    r = await client.post(f"/v1/payments/{p['id']}/sync", headers=merchant.auth)
    assert r.json()["status"] == "processing", r.text
    assert order.capture is not None
    order.capture["status"] = "COMPLETED"
    headers, body = fake.deliver(event("PAYMENT.CAPTURE.COMPLETED", "capture", capture_resource(order)))
    assert (await client.post("/v1/webhooks/paypal", content=body, headers=headers)).status_code == 200

    async def succeeded() -> bool:
        return bool((await get(client, merchant, f"/v1/payments/{p['id']}"))["status"] == "succeeded")

    await wait_for(succeeded)
    assert routes["capture"].call_count == 1
    assert [t for t, _ in await trail(client, merchant, p["id"])][-2:] == [
        "payment.processing",
        "payment.succeeded",
    ]


async def test_a_denied_capture_fails_the_payment(
    client: httpx.AsyncClient, merchant: Merchant, paypal: tuple[FakePaypal, Routes]
) -> None:
    fake, _ = paypal
    p = await waiting(client, merchant)
    order = fake.settle(p, "APPROVED")
    order.capture_status = "PENDING"
    await client.post(f"/v1/payments/{p['id']}/sync", headers=merchant.auth)
    assert order.capture is not None
    order.capture["status"] = "DECLINED"
    order.capture["status_details"] = {"reason": "DECLINED_BY_RISK_FRAUD_FILTERS"}
    headers, body = fake.deliver(event("PAYMENT.CAPTURE.DENIED", "capture", capture_resource(order)))
    assert (await client.post("/v1/webhooks/paypal", content=body, headers=headers)).status_code == 200

    async def failed() -> bool:
        return bool((await get(client, merchant, f"/v1/payments/{p['id']}"))["status"] == "failed")

    await wait_for(failed)
    after = await get(client, merchant, f"/v1/payments/{p['id']}")
    assert (after["failure_code"], after["failure_message"]) == (
        "payment_declined",
        "PayPal declined the payment (DECLINED_BY_RISK_FRAUD_FILTERS).",
    )


async def test_a_declined_funding_source_fails_the_payment_and_is_not_captured_again(
    client: httpx.AsyncClient, merchant: Merchant, paypal: tuple[FakePaypal, Routes]
) -> None:
    fake, routes = paypal
    p = await waiting(client, merchant)
    fake.settle(p, "APPROVED").decline = True
    r = await client.post(f"/v1/payments/{p['id']}/sync", headers=merchant.auth)
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["failure_code"]) == ("failed", "payment_declined")
    again = await client.post(f"/v1/payments/{p['id']}/sync", headers=merchant.auth)
    assert again.json()["status"] == "failed"
    assert routes["capture"].call_count == 1


async def test_a_sync_before_approval_captures_nothing_and_keeps_the_redirect(
    client: httpx.AsyncClient, merchant: Merchant, paypal: tuple[FakePaypal, Routes]
) -> None:
    _, routes = paypal
    p = await waiting(client, merchant)
    r = await client.post(f"/v1/payments/{p['id']}/sync", headers=merchant.auth)
    assert (r.json()["status"], r.json()["next_action"]) == ("requires_action", p["next_action"])
    assert routes["capture"].call_count == 0


# --- webhooks --------------------------------------------------------------------------------------


async def test_verification_sends_the_five_headers_the_webhook_id_and_the_event_as_received(
    gateway: Gateway, client: httpx.AsyncClient, merchant: Merchant, paypal: tuple[FakePaypal, Routes]
) -> None:
    fake, routes = paypal
    p = await waiting(client, merchant)
    order = fake.settle(p, "APPROVED")
    sent = event("CHECKOUT.ORDER.APPROVED", "checkout-order", order.body())
    headers, body = fake.deliver(sent)
    # Spacing and key order PayPal chose: the event goes back byte for byte, not re-serialised.
    body = body.replace(b'", "', b'","')
    fake.deliveries[headers["paypal-transmission-id"]] = body
    headers["paypal-transmission-sig"] = signature(
        headers["paypal-transmission-id"], headers["paypal-transmission-time"], WEBHOOK_ID, body
    )
    r = await client.post("/v1/webhooks/paypal", content=body, headers=headers)
    assert r.status_code == 200, r.text
    asked = routes["verify"].calls.last.request
    assert asked.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert b'"webhook_event":' + body in asked.content
    assert {k: v for k, v in json.loads(asked.content).items() if k != "webhook_event"} == {
        "auth_algo": "SHA256withRSA",
        "cert_url": headers["paypal-cert-url"],
        "transmission_id": headers["paypal-transmission-id"],
        "transmission_sig": headers["paypal-transmission-sig"],
        "transmission_time": headers["paypal-transmission-time"],
        "webhook_id": WEBHOOK_ID,
    }
    assert await stored(gateway, sent["id"]) == 1


async def test_a_delivery_paypal_does_not_verify_is_401_and_nothing_is_stored(
    gateway: Gateway, client: httpx.AsyncClient, merchant: Merchant, paypal: tuple[FakePaypal, Routes]
) -> None:
    fake, routes = paypal
    p = await waiting(client, merchant)
    sent = event("CHECKOUT.ORDER.APPROVED", "checkout-order", fake.settle(p, "APPROVED").body())
    headers, body = fake.deliver(sent)
    tampered = body.replace(b"APPROVED", b"COMPLETED")
    r = await client.post("/v1/webhooks/paypal", content=tampered, headers=headers)
    assert_problem(r, 401, "webhook_signature_invalid")
    assert routes["verify"].call_count == 1
    assert json.loads(routes["verify"].calls.last.response.content) == {"verification_status": "FAILURE"}
    # Without the PAYPAL-* headers PayPal is not even asked.
    bare = {"content-type": "application/json"}
    assert_problem(
        await client.post("/v1/webhooks/paypal", content=body, headers=bare), 401, "webhook_signature_invalid"
    )
    assert routes["verify"].call_count == 1
    assert await stored(gateway, sent["id"]) == 0
    assert routes["capture"].call_count == 0
    assert (await get(client, merchant, f"/v1/payments/{p['id']}"))["status"] == "requires_action"


async def test_paypal_unreachable_for_verification_is_503_with_retry_after_and_nothing_stored(
    gateway: Gateway, client: httpx.AsyncClient, merchant: Merchant, paypal: tuple[FakePaypal, Routes]
) -> None:
    fake, routes = paypal
    p = await waiting(client, merchant)
    sent = event("CHECKOUT.ORDER.APPROVED", "checkout-order", fake.settle(p, "APPROVED").body())
    headers, body = fake.deliver(sent)
    routes["verify"].respond(503, json={"name": "SERVICE_UNAVAILABLE"})
    r = await client.post("/v1/webhooks/paypal", content=body, headers=headers)
    assert_problem(r, 503, "service_unavailable")
    assert r.headers["Retry-After"] == "2"
    assert await stored(gateway, sent["id"]) == 0
    routes["verify"].mock(side_effect=httpx.ConnectError("down"))
    assert (await client.post("/v1/webhooks/paypal", content=body, headers=headers)).status_code == 503
    assert await stored(gateway, sent["id"]) == 0
    assert routes["capture"].call_count == 0


async def test_verify_webhook_alone_never_accepts_a_delivery(gateway: Gateway) -> None:
    adapter = PaypalProvider(gateway.ctx.settings.paypal, gateway.ctx.redis, 2)
    headers, body = FakePaypal().deliver(event("CHECKOUT.ORDER.APPROVED", "checkout-order", {"id": "5O1"}))
    with pytest.raises(WebhookVerificationError):
        adapter.verify_webhook(headers, body)
    await adapter.aclose()


# --- refunds ---------------------------------------------------------------------------------------


async def paid(client: httpx.AsyncClient, merchant: Merchant, fake: FakePaypal) -> dict[str, Any]:
    p = await waiting(client, merchant)
    fake.settle(p, "APPROVED")
    r = await client.post(f"/v1/payments/{p['id']}/sync", headers=merchant.auth)
    assert r.json()["status"] == "succeeded", r.text
    return dict(r.json())


async def test_refunds_name_the_capture_with_our_request_id_and_may_be_partial(
    gateway: Gateway, client: httpx.AsyncClient, merchant: Merchant, paypal: tuple[FakePaypal, Routes]
) -> None:
    fake, routes = paypal
    p = await paid(client, merchant, fake)
    order = fake.order_of(p["id"])
    assert order is not None
    assert order.capture is not None
    r = await client.post(
        f"/v1/payments/{p['id']}/refunds",
        json={"amount": 1_000},
        headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert r.status_code == 201, r.text
    refund = r.json()
    assert refund["status"] == "succeeded"
    call = routes["refund"].calls.last.request
    assert call.url.path == f"/v2/payments/captures/{order.capture['id']}/refund"
    assert call.headers["PayPal-Request-Id"] == f"{refund['id']}-refund"
    assert json.loads(call.content) == {
        "amount": {"currency_code": "USD", "value": "10.00"},
        "custom_id": refund["id"],
    }
    after = await get(client, merchant, f"/v1/payments/{p['id']}")
    assert (after["status"], after["amount_refunded"]) == ("partially_refunded", 1_000)

    # PayPal's PAYMENT.CAPTURE.REFUNDED about it changes nothing more.
    kept = next(iter(fake.refunds.values()))
    headers, body = fake.deliver(event("PAYMENT.CAPTURE.REFUNDED", "refund", kept))
    assert (await client.post("/v1/webhooks/paypal", content=body, headers=headers)).status_code == 200
    await asyncio.sleep(0.3)
    after = await get(client, merchant, f"/v1/payments/{p['id']}")
    assert (after["status"], after["amount_refunded"]) == ("partially_refunded", 1_000)
    assert routes["refund"].call_count == 1


async def test_a_refund_whose_answer_was_lost_is_resolved_by_the_same_request(
    gateway: Gateway, client: httpx.AsyncClient, merchant: Merchant, paypal: tuple[FakePaypal, Routes]
) -> None:
    fake, routes = paypal
    p = await paid(client, merchant, fake)
    answer_lost = routes["refund"].side_effect

    def lose(request: httpx.Request, cid: str) -> httpx.Response:
        assert callable(answer_lost)
        answer_lost(request, cid)  # PayPal made the refund; its answer never arrives
        raise httpx.ReadTimeout("timed out")

    routes["refund"].mock(side_effect=lose)
    r = await client.post(
        f"/v1/payments/{p['id']}/refunds",
        json={"amount": 2_000},
        headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert_problem(r, 504, "provider_timeout")
    refund_id = r.json()["refund"]
    assert (await get(client, merchant, f"/v1/refunds/{refund_id}"))["status"] == "pending"
    routes["refund"].mock(side_effect=answer_lost)
    await gateway.execute("UPDATE refunds SET next_reconcile_at = now() WHERE id = :r", r=refund_id)
    await Reconciler(
        gateway.ctx.db, gateway.ctx.registry, ReconcilerSettings(run_in_process=False)
    ).run_once()
    assert (await get(client, merchant, f"/v1/refunds/{refund_id}"))["status"] == "succeeded"
    assert len(fake.refunds) == 1
    assert {c.request.headers["PayPal-Request-Id"] for c in routes["refund"].calls} == {f"{refund_id}-refund"}
