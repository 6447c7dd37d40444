"""Razorpay for the contract suite: bodies shaped as docs/providers/razorpay.md shows them.

The customer step is the Hosted Checkout form for the order `POST /v1/orders` answers; a decline is
Razorpay refusing the order (HTTP 400, BAD_REQUEST_ERROR), the only "no" it gives before the customer
is at its page. Webhooks are signed here with hashlib/hmac directly (hex HMAC-SHA256 of the raw body
keyed with the webhook secret), not with the gateway's own signer.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import random
import string
from typing import Any

import httpx
import respx

from drivers.base import Driver
from gateway.providers.razorpay.settings import RazorpaySettings

RAZORPAY_API = "https://razorpay.test"
RAZORPAY_KEY_ID = "rzp_test_GatewayKey0001"
RAZORPAY_KEY_SECRET = "razorpay-test-key-secret-0123456789"
RAZORPAY_WEBHOOK_SECRET = "razorpay-test-webhook-secret-0123456789"
CHECKOUT_URL = "https://razorpay.test/v1/checkout/embedded"
ACCOUNT_ID = "acc_BFQ7uQEaa7j2z7"
CREATED_AT = 1714644903
_random = random.Random()
_counter = itertools.count(1)


def new_id(prefix: str) -> str:
    """A Razorpay id: prefix_ and 14 characters, unique within a run."""
    tail = "".join(_random.choices(string.ascii_letters + string.digits, k=10))
    return f"{prefix}_{tail}{next(_counter):04d}"


def sign(body: bytes, secret: str = RAZORPAY_WEBHOOK_SECRET, event_id: str | None = None) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "x-razorpay-signature": hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
        "x-razorpay-event-id": event_id or new_id("evt"),
    }


def order(order_id: str, amount: int, currency: str, receipt: str, status: str = "created") -> dict[str, Any]:
    """An order as POST /v1/orders answers it and order.paid carries it."""
    paid = amount if status == "paid" else 0
    return {
        "id": order_id,
        "entity": "order",
        "amount": amount,
        "amount_paid": paid,
        "amount_due": amount - paid,
        "currency": currency,
        "receipt": receipt,
        "offer_id": None,
        "status": status,
        "attempts": 0 if status == "created" else 1,
        "notes": {"gateway_payment_id": receipt},
        "created_at": CREATED_AT,
    }


def payment(order_id: str, amount: int, currency: str, status: str, **extra: Any) -> dict[str, Any]:
    """A payment entity (GET /orders/{id}/payments items, payment.* and order.paid webhooks): a card."""
    failed = status == "failed"
    return {
        "id": new_id("pay"),
        "entity": "payment",
        "amount": amount,
        "currency": currency,
        "status": status,
        "order_id": order_id,
        "invoice_id": None,
        "international": False,
        "method": "card",
        "amount_refunded": 0,
        "refund_status": None,
        "captured": status in ("captured", "refunded"),
        "description": None,
        "card_id": "card_DZon6fd8J3IcA2",
        "card": {
            "id": "card_DZon6fd8J3IcA2",
            "entity": "card",
            "name": "Gaurav Kumar",
            "last4": "1111",
            "network": "Visa",
            "type": "debit",
            "issuer": None,
            "international": False,
            "emi": False,
            "sub_type": "consumer",
        },
        "bank": None,
        "wallet": None,
        "vpa": None,
        "email": "gaurav.kumar@example.com",
        "contact": "+919000090000",
        "notes": [],
        "fee": 118 if status == "captured" else None,
        "tax": 18 if status == "captured" else None,
        "error_code": "BAD_REQUEST_ERROR" if failed else None,
        "error_description": "Payment failed" if failed else None,
        "error_source": "customer" if failed else None,
        "error_step": "payment_authentication" if failed else None,
        "error_reason": "payment_cancelled" if failed else None,
        "acquirer_data": {"auth_code": "828553"},
        "created_at": CREATED_AT,
        **extra,
    }


def collection(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"entity": "collection", "count": len(items), "items": items}


def refund(
    payment_id: str, amount: int, currency: str, receipt: str, status: str = "pending"
) -> dict[str, Any]:
    """A refund entity (POST /payments/{id}/refund, GET /refunds/{id}, refund.* webhooks)."""
    return {
        "id": new_id("rfnd"),
        "entity": "refund",
        "amount": amount,
        "currency": currency,
        "payment_id": payment_id,
        "notes": {"gateway_refund_id": receipt},
        "receipt": receipt,
        "acquirer_data": {"arn": None},
        "created_at": CREATED_AT,
        "batch_id": None,
        "status": status,
        "speed_processed": "normal",
        "speed_requested": "normal",
    }


def event(name: str, **entities: dict[str, Any]) -> bytes:
    """A webhook body: the event, what it contains, each entity under payload.<name>.entity."""
    return json.dumps(
        {
            "entity": "event",
            "account_id": ACCOUNT_ID,
            "event": name,
            "contains": list(entities),
            "payload": {k: {"entity": v} for k, v in entities.items()},
            "created_at": CREATED_AT,
        }
    ).encode()


def error(description: str, field: str | None = None) -> dict[str, Any]:
    return {
        "error": {
            "code": "BAD_REQUEST_ERROR",
            "description": description,
            "source": "business",
            "step": "payment_initiation",
            "reason": "input_validation_failed",
            "metadata": {},
            "field": field,
        }
    }


def _echo_order(request: httpx.Request) -> httpx.Response:
    sent = json.loads(request.content)
    return httpx.Response(200, json=order(new_id("order"), sent["amount"], sent["currency"], sent["receipt"]))


class RazorpayDriver(Driver):
    name = "razorpay"
    currency = "INR"
    amount = 5_000
    decline_code = "provider_rejected"

    def settings(self) -> RazorpaySettings:
        return RazorpaySettings(
            test={
                "key_id": RAZORPAY_KEY_ID,
                "key_secret": RAZORPAY_KEY_SECRET,
                "webhook_secret": RAZORPAY_WEBHOOK_SECRET,
                "checkout_name": "Gateway Test Shop",
            },
            base_url=RAZORPAY_API,
            checkout_url=CHECKOUT_URL,
        )

    def mock_create(self, router: respx.Router, scenario: str) -> None:
        route = router.post(f"{RAZORPAY_API}/v1/orders")
        if scenario == "decline":
            route.respond(400, json=error("Order amount exceeds the maximum amount allowed.", "amount"))
        elif scenario == "timeout":
            route.mock(side_effect=httpx.ReadTimeout("timed out"))
        else:
            route.mock(side_effect=_echo_order)

    def mock_fetch(self, router: respx.Router, payment_: dict[str, Any], status: str) -> None:
        order_id = payment_["provider_reference"]
        if order_id is None:
            # The create's answer was lost: the gateway finds the order by its receipt, our payment id.
            order_id = new_id("order")
            found = order(order_id, payment_["amount"], payment_["currency"], payment_["id"], "attempted")
            router.get(f"{RAZORPAY_API}/v1/orders", params={"receipt": payment_["id"]}).respond(
                200, json=collection([found])
            )
        theirs = {"succeeded": "captured", "failed": "failed", "requires_action": "created"}[status]
        items = [payment(order_id, payment_["amount"], payment_["currency"], theirs)]
        router.get(f"{RAZORPAY_API}/v1/orders/{order_id}/payments").respond(200, json=collection(items))

    def mock_refund(self, router: respx.Router, payment_: dict[str, Any], amount: int) -> None:
        order_id = payment_["provider_reference"]
        paid = payment(order_id, payment_["amount"], payment_["currency"], "captured")
        router.get(f"{RAZORPAY_API}/v1/orders/{order_id}/payments").respond(200, json=collection([paid]))

        def refunded(request: httpx.Request) -> httpx.Response:
            sent = json.loads(request.content)
            return httpx.Response(
                200, json=refund(paid["id"], sent["amount"], payment_["currency"], sent["receipt"])
            )

        router.post(f"{RAZORPAY_API}/v1/payments/{paid['id']}/refund").mock(side_effect=refunded)

    def success_webhook(
        self,
        payment_: dict[str, Any],
        *,
        amount: int | None = None,
        currency: str | None = None,
        event_id: str | None = None,
        reference: str | None = None,
    ) -> tuple[dict[str, str], bytes]:
        order_id = reference or payment_["provider_reference"]
        paid = payment(
            order_id,
            payment_["amount"] if amount is None else amount,
            currency or payment_["currency"],
            "captured",
        )
        body = event("payment.captured", payment=paid)
        return sign(body, event_id=event_id), body

    def refund_webhook(
        self, payment_: dict[str, Any], refund_: dict[str, Any]
    ) -> tuple[dict[str, str], bytes] | None:
        # The refund the gateway holds, as Razorpay's refund.processed names it (its rfnd_ id).
        theirs = refund(
            "pay_unknown0000000", refund_["amount"], refund_["currency"], refund_["id"], "processed"
        )
        theirs["id"] = refund_["provider_reference"]
        body = event("refund.processed", refund=theirs)
        return sign(body), body

    def method_details(self, payment_: dict[str, Any], via: str) -> dict[str, Any] | None:
        # payment()'s card: network Visa, last4 1111, type debit; Razorpay names no expiry or country.
        return {
            "type": "card",
            "brand": "visa",
            "last4": "1111",
            "exp_month": None,
            "exp_year": None,
            "funding": "debit",
            "country": None,
        }

    def forge(self, headers: dict[str, str], body: bytes) -> dict[str, str]:
        sig = headers["x-razorpay-signature"]
        return {
            **headers,
            "x-razorpay-signature": sig[:-4] + ("0000" if not sig.endswith("0000") else "1111"),
        }


DRIVER = RazorpayDriver()
