"""Stripe as the contract suite meets it: respx answers at STRIPE_API with objects shaped as in
docs/providers/stripe.md (PaymentIntent, Refund, Event, errors); webhooks are signed
with the SDK's own helper (stripe.WebhookSignature.generate_signature_header).

The builders here are shared with tests/providers/test_stripe.py.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any
from urllib.parse import parse_qsl

import httpx
import respx
import stripe

from drivers.base import Driver
from gateway.providers.stripe.settings import StripeSettings
from support import STRIPE_API, STRIPE_SECRET_KEY, STRIPE_WEBHOOK_SECRET

API_VERSION = "2026-10-28.endive"
RETURN_URL = "https://shop.example/checkout/done"


def form(request: httpx.Request) -> dict[str, str]:
    """A form-encoded Stripe request body as a flat dict (bracket keys kept: metadata[x])."""
    return dict(parse_qsl(request.content.decode(), keep_blank_values=True))


def pi_id_for(payment_id: str) -> str:
    return "pi_3" + payment_id.split("_", 1)[1]


def payment_intent(
    pi_id: str,
    *,
    amount: int,
    currency: str,
    status: str,
    payment_id: str | None,
    flow: str = "server",
    payment_method: str | None = "pm_card_visa",
    next_action: dict[str, Any] | None = None,
    last_payment_error: dict[str, Any] | None = None,
    amount_received: int | None = None,
    livemode: bool = False,
    cancellation_reason: str | None = None,
    expanded: bool = False,
) -> dict[str, Any]:
    """A PaymentIntent with the fields docs/providers/stripe.md lists; `expanded`: its latest_charge as
    the Charge object (the gateway asks `expand[]=latest_charge`), else the charge's id."""
    metadata = {"gateway_payment_id": payment_id, "gateway_flow": flow} if payment_id else {}
    received = amount if status == "succeeded" else 0
    latest = None
    if status in ("succeeded", "processing"):
        latest = (
            charge(pi_id, amount=amount, currency=currency, metadata=metadata)
            if expanded
            else "ch_3" + pi_id[4:]
        )
    return {
        "id": pi_id,
        "object": "payment_intent",
        "amount": amount,
        "amount_received": received if amount_received is None else amount_received,
        "amount_capturable": 0,
        "currency": currency,
        "status": status,
        "client_secret": f"{pi_id}_secret_{uuid.uuid4().hex[:24]}",
        "next_action": next_action,
        "last_payment_error": last_payment_error,
        "latest_charge": latest,
        "payment_method": payment_method,
        "metadata": metadata,
        "cancellation_reason": cancellation_reason,
        "livemode": livemode,
        "created": int(time.time()),
    }


# pm_card_visa's card as Stripe describes it in a Charge's payment_method_details.card.
VISA_CARD: dict[str, Any] = {
    "brand": "visa",
    "checks": {"address_line1_check": None, "address_postal_code_check": None, "cvc_check": "pass"},
    "country": "US",
    "exp_month": 12,
    "exp_year": 2034,
    "fingerprint": "Xt5EWLLDS7FJjR1c",
    "funding": "credit",
    "installments": None,
    "last4": "4242",
    "mandate": None,
    "network": "visa",
    "three_d_secure": None,
    "wallet": None,
}
# What the gateway shows for it.
VISA_DETAILS = {
    "type": "card",
    "brand": "visa",
    "last4": "4242",
    "exp_month": 12,
    "exp_year": 2034,
    "funding": "credit",
    "country": "US",
}


def charge(
    pi_id: str, *, amount: int, currency: str, metadata: dict[str, Any], status: str = "succeeded"
) -> dict[str, Any]:
    """A Charge (docs/providers/stripe.md): what `latest_charge` expands to and charge.* events carry."""
    return {
        "id": "ch_3" + pi_id[4:],
        "object": "charge",
        "amount": amount,
        "amount_captured": amount if status == "succeeded" else 0,
        "amount_refunded": 0,
        "captured": status == "succeeded",
        "currency": currency,
        "livemode": False,
        "metadata": metadata,
        "paid": status == "succeeded",
        "payment_intent": pi_id,
        "payment_method": "pm_1" + pi_id[4:],
        "payment_method_details": {"card": VISA_CARD, "type": "card"},
        "refunded": False,
        "status": status,
        "created": int(time.time()),
    }


def redirect_action(pi_id: str, return_url: str = RETURN_URL) -> dict[str, Any]:
    return {
        "type": "redirect_to_url",
        "redirect_to_url": {
            "url": f"https://hooks.stripe.com/3d_secure_2/hosted?merchant=acct_1Gw&payment_intent={pi_id}",
            "return_url": return_url,
        },
    }


def card_error(
    code: str, decline_code: str | None, message: str, pi: dict[str, Any] | None
) -> dict[str, Any]:
    """A 402 card_error body (docs/providers/stripe.md), the PaymentIntent inside as Stripe sends it."""
    error: dict[str, Any] = {
        "type": "card_error",
        "code": code,
        "message": message,
        "doc_url": f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}",
        "request_log_url": "https://dashboard.stripe.com/test/logs/req_x",
    }
    if decline_code is not None:
        error["decline_code"] = decline_code
    if pi is not None:
        error["payment_intent"] = pi
    return {"error": error}


def refund_object(
    re_id: str,
    *,
    amount: int,
    currency: str,
    payment_intent_id: str,
    status: str,
    refund_id: str | None,
    payment_id: str | None,
    failure_reason: str | None = None,
) -> dict[str, Any]:
    """A Refund with the fields docs/providers/stripe.md lists."""
    metadata = {"gateway_refund_id": refund_id, "gateway_payment_id": payment_id} if refund_id else {}
    return {
        "id": re_id,
        "object": "refund",
        "amount": amount,
        "currency": currency,
        "payment_intent": payment_intent_id,
        "charge": "ch_3" + payment_intent_id[4:],
        "status": status,
        "reason": None,
        "failure_reason": failure_reason,
        "metadata": metadata,
        "created": int(time.time()),
    }


def event(event_type: str, obj: dict[str, Any], *, event_id: str | None = None) -> dict[str, Any]:
    """An Event as docs/providers/stripe.md shows it."""
    return {
        "id": event_id or f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "api_version": API_VERSION,
        "created": int(time.time()),
        "data": {"object": obj},
        "livemode": obj.get("livemode", False),
        "pending_webhooks": 1,
        "request": {"id": f"req_{uuid.uuid4().hex[:14]}", "idempotency_key": None},
        "type": event_type,
    }


def signed(
    payload: dict[str, Any], secret: str = STRIPE_WEBHOOK_SECRET, timestamp: int | None = None
) -> tuple[dict[str, str], bytes]:
    body = json.dumps(payload)
    header = stripe.WebhookSignature.generate_signature_header(body, secret, timestamp)
    return {"content-type": "application/json", "Stripe-Signature": header}, body.encode()


def search_result(*intents: dict[str, Any]) -> dict[str, Any]:
    return {
        "object": "search_result",
        "url": "/v1/payment_intents/search",
        "has_more": False,
        "data": list(intents),
        "next_page": None,
    }


# Our status -> the PaymentIntent status Stripe would report.
STRIPE_STATUS = {
    "succeeded": "succeeded",
    "processing": "processing",
    "canceled": "canceled",
    "requires_action": "requires_action",
}


class StripeDriver(Driver):
    name = "stripe"
    currency = "KES"
    decline_code = "card_declined"

    def settings(self) -> StripeSettings:
        return StripeSettings(
            test={"secret_key": STRIPE_SECRET_KEY, "webhook_secret": STRIPE_WEBHOOK_SECRET},
            api_base=STRIPE_API,
        )

    def create_body(self, scenario: str) -> dict[str, Any]:
        method = {
            "action": "pm_card_threeDSecure2Required",
            "decline": "pm_card_visa_chargeDeclined",
            "timeout": "pm_card_visa",
        }[scenario]
        return {**super().create_body(scenario), "payment_method": method, "return_url": RETURN_URL}

    def mock_create(self, router: respx.Router, scenario: str) -> None:
        def answer(request: httpx.Request) -> httpx.Response:
            f = form(request)
            payment_id = f["metadata[gateway_payment_id]"]
            pi_id = pi_id_for(payment_id)
            amount, currency = int(f["amount"]), f["currency"]
            if scenario == "decline":
                pi = payment_intent(
                    pi_id,
                    amount=amount,
                    currency=currency,
                    status="requires_payment_method",
                    payment_id=payment_id,
                    payment_method=None,
                )
                body = card_error("card_declined", "generic_decline", "Your card was declined.", pi)
                pi["last_payment_error"] = {k: v for k, v in body["error"].items() if k != "payment_intent"}
                return httpx.Response(402, json=body)
            pi = payment_intent(
                pi_id,
                amount=amount,
                currency=currency,
                status="requires_action",
                payment_id=payment_id,
                payment_method=f["payment_method"],
                next_action=redirect_action(pi_id, f["return_url"]),
            )
            return httpx.Response(200, json=pi)

        route = router.post(f"{STRIPE_API}/v1/payment_intents")
        if scenario == "timeout":
            route.mock(side_effect=httpx.ReadTimeout("stripe did not answer"))
        else:
            route.mock(side_effect=answer)

    def mock_fetch(self, router: respx.Router, payment: dict[str, Any], status: str) -> None:
        reference = payment["provider_reference"] or pi_id_for(payment["id"])
        pi = payment_intent(
            reference,
            amount=payment["amount"],
            currency=payment["currency"].lower(),
            status=STRIPE_STATUS[status],
            payment_id=payment["id"],
            expanded=True,
        )
        if payment["provider_reference"] is None:
            # The create timed out, so we never learnt the id: found by our payment id in its metadata.
            router.get(
                f"{STRIPE_API}/v1/payment_intents/search", params={"expand[0]": "data.latest_charge"}
            ).mock(return_value=httpx.Response(200, json=search_result(pi)))
        else:
            router.get(
                f"{STRIPE_API}/v1/payment_intents/{reference}", params={"expand[0]": "latest_charge"}
            ).mock(return_value=httpx.Response(200, json=pi))

    def mock_refund(self, router: respx.Router, payment: dict[str, Any], amount: int) -> None:
        def answer(request: httpx.Request) -> httpx.Response:
            f = form(request)
            refund_id = f["metadata[gateway_refund_id]"]
            return httpx.Response(
                200,
                json=refund_object(
                    "re_3" + refund_id.split("_", 1)[1],
                    amount=int(f["amount"]),
                    currency=payment["currency"].lower(),
                    payment_intent_id=f["payment_intent"],
                    # Pending, so the contract also runs the refund webhook (test_stripe covers "succeeded").
                    status="pending",
                    refund_id=refund_id,
                    payment_id=payment["id"],
                ),
            )

        router.post(f"{STRIPE_API}/v1/refunds").mock(side_effect=answer)

    def success_webhook(
        self,
        payment: dict[str, Any],
        *,
        amount: int | None = None,
        currency: str | None = None,
        event_id: str | None = None,
        reference: str | None = None,
    ) -> tuple[dict[str, str], bytes]:
        pi = payment_intent(
            reference or payment["provider_reference"],
            amount=payment["amount"] if amount is None else amount,
            currency=(currency or payment["currency"]).lower(),
            status="succeeded",
            payment_id=payment["id"] if reference is None else None,
        )
        return signed(event("payment_intent.succeeded", pi, event_id=event_id))

    def refund_webhook(
        self, payment: dict[str, Any], refund: dict[str, Any]
    ) -> tuple[dict[str, str], bytes] | None:
        obj = refund_object(
            refund["provider_reference"],
            amount=refund["amount"],
            currency=refund["currency"].lower(),
            payment_intent_id=payment["provider_reference"],
            status="succeeded",
            refund_id=refund["id"],
            payment_id=payment["id"],
        )
        return signed(event("refund.updated", obj))

    def method_details(self, payment: dict[str, Any], via: str) -> dict[str, Any] | None:
        # payment_intent.succeeded names its charge by id: the card comes with charge.succeeded
        # (tests/providers/test_stripe.py) or a retrieve, which expands the charge.
        return VISA_DETAILS if via == "query" else None

    def forge(self, headers: dict[str, str], body: bytes) -> dict[str, str]:
        # Same timestamp, a v1 signature made with another secret.
        t = headers["Stripe-Signature"].split(",")[0].split("=")[1]
        forged = stripe.WebhookSignature.generate_signature_header(
            body.decode(), "whsec_not_the_endpoint_secret", int(t)
        )
        return {**headers, "Stripe-Signature": forged}


DRIVER = StripeDriver()
