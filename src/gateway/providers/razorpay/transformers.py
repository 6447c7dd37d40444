"""Razorpay's JSON in, our dataclasses out: pure functions, no I/O (shapes in docs/providers/razorpay.md).

References. A payment is a Razorpay order (`order_…`), created with our payment id (the attempt's key)
as its `receipt`; the order's id is the payment's `provider_reference`, which every payment and order
webhook names (`order_id`). Order ids are Razorpay's own, issued in one mode, so a test-mode event
cannot name a live payment. A refund's `provider_reference` is Razorpay's refund id (`rfnd_…`), which
POST /payments/{id}/refund answers and every refund webhook names.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, Final

from gateway.providers.base import PaymentRequest, PaymentResult, RefundResult
from gateway.providers.details import Card, MethodDetails

SIGNATURE_HEADER: Final = "x-razorpay-signature"
EVENT_ID_HEADER: Final = "x-razorpay-event-id"
# docs/providers/razorpay.md: a refund request carries this header with our refund id, so a resent
# refund whose first answer was lost is the same refund ([C], 10+ characters of [A-Za-z0-9_-]).
REFUND_IDEMPOTENCY_HEADER: Final = "X-Refund-Idempotency"

# A payment's statuses ([P]): created (the customer is at a step), authorized (held, not captured),
# captured (paid), refunded (paid, then refunded in full), failed (this attempt; the order stays payable).
PAID: Final = frozenset({"captured", "refunded"})
REFUND_STATUSES: Final[Mapping[str, str]] = MappingProxyType(
    {"created": "pending", "pending": "pending", "processed": "succeeded", "failed": "failed"}
)
# Events the gateway acts on; the rest (payment.authorized, payment.failed, disputes, settlements, …) are
# stored and ignored: an authorized payment is captured by the status query, and a failed payment is
# one attempt at an order the customer may still pay (docs/providers/razorpay.md, "Webhooks").
PAYMENT_EVENTS: Final = frozenset({"payment.captured", "order.paid"})
REFUND_EVENTS: Final = frozenset({"refund.created", "refund.processed", "refund.failed"})


class UnexpectedAnswer(ValueError):
    """Razorpay answered in a shape we do not know: we know nothing of the outcome."""


def basic_auth(key_id: str, key_secret: str) -> dict[str, str]:
    """HTTP Basic with the key pair, as every API call is authenticated."""
    token = base64.b64encode(f"{key_id}:{key_secret}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def amount_of(value: Any) -> int:
    """An amount as Razorpay writes it: an int of the currency's sub-units (paise). Never a float."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise ValueError(f"not an amount in sub-units: {value!r}")


# --- requests ------------------------------------------------------------------------------------


def order_body(request: PaymentRequest) -> dict[str, Any]:
    """POST /v1/orders: our minor units are Razorpay's sub-units for the two-decimal currencies the
    settings allow; the receipt is our payment id, the notes say whose it is."""
    notes = {"gateway_payment_id": request.payment_id}
    if request.reference:
        notes["order_reference"] = request.reference[:256]
    return {
        "amount": request.amount,
        "currency": request.currency,
        "receipt": request.payment_id,
        "notes": notes,
    }


def checkout_action(
    checkout_url: str,
    key_id: str,
    order_id: str,
    name: str | None,
    request: PaymentRequest | None = None,
) -> dict[str, Any]:
    """The customer's next step: a form posted to Razorpay's Hosted Checkout (no script on our side).
    `method` and `fields` say how: the hosted checkout page renders them as a form with a button; an
    API caller does the same. Razorpay posts the customer back to `callback_url` (the return URL)."""
    fields: dict[str, str] = {"key_id": key_id, "order_id": order_id, "name": name or "Checkout"}
    return_url = request.return_url if request else None
    if request is not None:
        if request.description:
            fields["description"] = request.description[:255]
        if request.customer.name:
            fields["prefill[name]"] = request.customer.name
        if request.customer.email:
            fields["prefill[email]"] = request.customer.email
        if request.customer.phone:
            fields["prefill[contact]"] = request.customer.phone
    if return_url:
        fields["callback_url"] = return_url
        fields["cancel_url"] = return_url
    form = {"url": checkout_url, "return_url": return_url, "method": "POST", "fields": fields}
    return {"type": "redirect_to_url", "redirect_to_url": form}


def refund_body(refund_id: str, payment_id: str, amount: int) -> dict[str, Any]:
    """POST /v1/payments/{id}/refund: always with the amount, so full and partial read alike."""
    return {
        "amount": amount,
        "speed": "normal",
        "receipt": refund_id,
        "notes": {"gateway_refund_id": refund_id, "gateway_payment_id": payment_id},
    }


# --- answers -------------------------------------------------------------------------------------


def error_of(answer: Mapping[str, Any]) -> str:
    """The description of Razorpay's error envelope `{"error": {"code", "description", …}}`."""
    error = answer.get("error")
    text = error.get("description") if isinstance(error, dict) else None
    return text[:500] if isinstance(text, str) and text else "Razorpay gave no reason."


def order_id_of(answer: Mapping[str, Any]) -> str:
    order_id = answer.get("id")
    if answer.get("entity") != "order" or not isinstance(order_id, str) or not order_id.startswith("order_"):
        raise UnexpectedAnswer("not an order")
    return order_id


def items_of(answer: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The entities of a collection answer (GET /orders/{id}/payments, GET /orders?receipt=…)."""
    items = answer.get("items")
    if answer.get("entity") != "collection" or not isinstance(items, list):
        raise UnexpectedAnswer("not a collection")
    return [i for i in items if isinstance(i, dict)]


def method_details(payment: Mapping[str, Any]) -> MethodDetails | None:
    """How a payment was made: a card's network, last4, type and whether it is international; UPI,
    netbanking and wallets name no card, and nothing here is kept of them."""
    card = payment.get("card")
    if payment.get("method") != "card" or not isinstance(card, dict):
        return None
    return Card.of(brand=card.get("network"), number=card.get("last4"), funding=card.get("type"))


def paid_result(payment: Mapping[str, Any], order_id: str) -> PaymentResult:
    """A captured payment of the order: a success that names Razorpay's amount and currency, so the
    state machine refuses it when they are not ours."""
    currency = payment.get("currency")
    if not isinstance(currency, str):
        raise UnexpectedAnswer("a captured payment without a currency")
    return PaymentResult(
        status="succeeded",
        provider_reference=order_id,
        amount=amount_of(payment.get("amount")),
        currency=currency,
        payment_method_details=method_details(payment),
    )


def pick(payments: Sequence[Mapping[str, Any]], statuses: frozenset[str]) -> Mapping[str, Any] | None:
    """The first of an order's payments in one of `statuses`."""
    return next((p for p in payments if p.get("status") in statuses), None)


def refund_result(refund: Mapping[str, Any]) -> RefundResult:
    """A refund entity (POST …/refund, GET /refunds/{id}, refund.* webhooks) in our terms."""
    raw = refund.get("status")
    status = REFUND_STATUSES.get(raw) if isinstance(raw, str) else None
    refund_id = refund.get("id")
    if status is None or not isinstance(refund_id, str):
        raise UnexpectedAnswer(f"unknown Razorpay refund status {raw!r}")
    currency = refund.get("currency")
    failed = status == "failed"
    return RefundResult(
        status=status,
        provider_reference=refund_id,
        failure_code="refund_failed" if failed else None,
        failure_message="Razorpay could not return the money to the customer." if failed else None,
        amount=amount_of(refund["amount"]) if refund.get("amount") is not None else None,
        currency=currency if isinstance(currency, str) else None,
    )


def rejected_result(answer: Mapping[str, Any]) -> PaymentResult:
    """A 4xx to POST /orders: Razorpay will not take this payment (an amount below ₹1, a currency the
    account does not take, …); its description says why."""
    return PaymentResult(
        status="failed", failure_code="provider_rejected", failure_message=f"Razorpay: {error_of(answer)}"
    )


def refund_rejected(answer: Mapping[str, Any]) -> RefundResult:
    return RefundResult(
        status="failed", failure_code="refund_declined", failure_message=f"Razorpay: {error_of(answer)}"
    )
