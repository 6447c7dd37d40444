"""Stripe's webhook events in our terms, pure (the SDK checks Stripe-Signature in the adapter): payment
events carry the PaymentIntent, refund events the Refund (or, for older API versions, the Charge).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from gateway.providers.base import PaymentResult, WebhookEvent, WebhookPayloadError
from gateway.providers.stripe.amounts import money
from gateway.providers.stripe.transformers import (
    META_PAYMENT,
    META_REFUND,
    MalformedObject,
    charge_card,
    payment_result,
    refund_result,
)

PAYMENT_EVENTS: Final = frozenset(
    {
        "payment_intent.succeeded",
        "payment_intent.payment_failed",
        "payment_intent.canceled",
        "payment_intent.processing",
        "payment_intent.requires_action",
    }
)
REFUND_EVENTS: Final = frozenset(
    {"refund.created", "refund.updated", "refund.failed", "charge.refund.updated"}
)


def _latest_refund(charge: Mapping[str, Any]) -> Mapping[str, Any] | None:
    # `refunds` is on a Charge only for older API versions (or when expanded); without it the event
    # names no refund and refund.updated (which always comes too) carries the news.
    refunds = (charge.get("refunds") or {}).get("data") or []
    if not refunds:
        return None
    latest: Mapping[str, Any] = max(refunds, key=lambda r: int(r.get("created") or 0))
    return latest


def _refund_event(base: dict[str, Any], refund: Mapping[str, Any]) -> WebhookEvent:
    meta = refund.get("metadata") or {}
    result = refund_result(refund)
    return WebhookEvent(
        **base,
        payment_id=meta.get(META_PAYMENT),
        refund_id=meta.get(META_REFUND),
        refund_reference=result.provider_reference,
        refund_result=result,
    )


def _charge_event(base: dict[str, Any], charge: Mapping[str, Any]) -> WebhookEvent:
    """charge.succeeded: a PaymentIntent's own events name their charge by id only, so this is the
    event that carries the card (payment_method_details). A captured, succeeded charge means its
    PaymentIntent succeeded (the gateway never asks for manual capture): applied as such, it settles
    the payment with its card, or adds the card to a payment payment_intent.succeeded settled first."""
    intent = charge.get("payment_intent")
    if (
        not isinstance(intent, str)
        or charge.get("status") != "succeeded"
        or charge.get("captured") is not True
    ):
        return WebhookEvent(**base)
    try:
        amount, currency = money(charge, "amount_captured")
    except (KeyError, TypeError, ValueError) as e:
        raise WebhookPayloadError(f"malformed Charge: {e}") from e
    result = PaymentResult(
        status="succeeded",
        provider_reference=intent,
        amount=amount,
        currency=currency,
        payment_method_details=charge_card(charge),
    )
    meta = charge.get("metadata") or {}
    return WebhookEvent(**base, payment_id=meta.get(META_PAYMENT), provider_reference=intent, result=result)


def interpret(event: Mapping[str, Any]) -> WebhookEvent:
    """A (verified) Stripe Event in our terms. Types we do not act on come back with no result."""
    try:
        event_type = str(event["type"])
        obj = event["data"]["object"]
        base: dict[str, Any] = {
            "event_id": str(event["id"]),
            "event_type": event_type,
            "payload": dict(event),
        }
        if not isinstance(obj, Mapping):
            raise WebhookPayloadError("data.object is not an object")
        if event_type in PAYMENT_EVENTS:
            meta = obj.get("metadata") or {}
            result: PaymentResult | None = payment_result(obj)
            # (An Elements customer's declined attempt maps to requires_action: they may try again.)
            if result is not None and result.status == "requires_action" and result.next_action is None:
                # Still waiting, with no next action to show (no client secret in the payload): applying
                # it would only wipe the next action the merchant already has.
                result = None
            return WebhookEvent(
                **base, payment_id=meta.get(META_PAYMENT), provider_reference=str(obj["id"]), result=result
            )
        if event_type in REFUND_EVENTS:
            return _refund_event(base, obj)
        if event_type == "charge.succeeded":
            return _charge_event(base, obj)
        if event_type == "charge.refunded":
            refund = _latest_refund(obj)
            if refund is not None:
                return _refund_event(base, refund)
        return WebhookEvent(**base)
    except MalformedObject as e:
        raise WebhookPayloadError(str(e)) from e
    except (KeyError, TypeError, AttributeError) as e:
        raise WebhookPayloadError(f"missing or malformed field: {e}") from e
