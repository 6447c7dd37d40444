"""Razorpay's webhooks, pure: the X-Razorpay-Signature check on the raw body and the event in our terms
(docs/providers/razorpay.md, "Webhooks")."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

import orjson

from gateway.kit.signing import hmac_hex, matches_any
from gateway.providers.base import WebhookEvent, WebhookPayloadError
from gateway.providers.razorpay.transformers import (
    PAID,
    PAYMENT_EVENTS,
    REFUND_EVENTS,
    UnexpectedAnswer,
    amount_of,
    paid_result,
    refund_result,
)

_EVENT_ID = re.compile(r"[A-Za-z0-9_-]{1,100}")


def signature(webhook_secret: str, body: bytes) -> str:
    """X-Razorpay-Signature: lowercase hex HMAC-SHA256 of the raw body keyed with the webhook's secret."""
    return hmac_hex(webhook_secret.encode(), body, "sha256")


def signature_matches(secrets: list[str], body: bytes, header: str) -> bool:
    """Every configured secret is tried (constant-time each), so timing says nothing about which."""
    return matches_any([signature(s, body) for s in secrets], header.strip().lower())


def _entity(payload: Mapping[str, Any], name: str) -> dict[str, Any]:
    wrapper = (payload.get("payload") or {}).get(name)
    entity = wrapper.get("entity") if isinstance(wrapper, dict) else None
    if not isinstance(entity, dict):
        raise ValueError(f"payload.{name}.entity must be an object")
    return entity


def fallback_id(payload: Mapping[str, Any]) -> str:
    """An event's key when the delivery lacks x-razorpay-event-id: the event and what it is about."""
    event = payload.get("event")
    body = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
    return f"{event}:{hashlib.sha256(body).hexdigest()}"


def interpret(payload: dict[str, Any], event_id: str | None = None) -> WebhookEvent:
    """A verified webhook's body in our terms; `event_id` is the delivery's x-razorpay-event-id (the
    same on every retry of an event), else a digest of the body."""
    event = payload.get("event")
    if not isinstance(event, str) or not isinstance(payload.get("payload"), dict):
        raise WebhookPayloadError("a Razorpay event has a string `event` and an object `payload`")
    # The header is not signed: a replay under another id is stored again and changes nothing more.
    key = event_id if event_id and _EVENT_ID.fullmatch(event_id) else fallback_id(payload)
    try:
        if event in PAYMENT_EVENTS:
            return _payment_event(payload, event, key)
        if event in REFUND_EVENTS:
            refund = _entity(payload, "refund")
            result = refund_result(refund)
            return WebhookEvent(
                event_id=key,
                event_type=event,
                payload=payload,
                refund_reference=result.provider_reference,
                refund_result=result,
            )
    except (KeyError, TypeError, ValueError) as e:
        raise WebhookPayloadError(f"{event}: missing or malformed field: {e}") from e
    return WebhookEvent(event_id=key, event_type=event, payload=payload)


def _payment_event(payload: dict[str, Any], event: str, key: str) -> WebhookEvent:
    payment = _entity(payload, "payment")
    order_id = payment.get("order_id")
    if event == "order.paid":
        order = _entity(payload, "order")
        order_id = order.get("id")
        if order.get("status") != "paid":
            raise UnexpectedAnswer(f"order.paid about an order in status {order.get('status')!r}")
        # The order's amount_paid is what the order took; the payment names the same money.
        if amount_of(order.get("amount_paid")) != amount_of(payment.get("amount")):
            payment = {**payment, "amount": order.get("amount_paid")}
    elif payment.get("status") not in PAID:
        raise UnexpectedAnswer(f"payment.captured about a payment in status {payment.get('status')!r}")
    if not isinstance(order_id, str) or not order_id:
        # A payment made without an order is not one of ours (Razorpay refunds those itself).
        return WebhookEvent(event_id=key, event_type=event, payload=payload)
    return WebhookEvent(
        event_id=key,
        event_type=event,
        payload=payload,
        provider_reference=order_id,
        result=paid_result(payment, order_id),
    )
