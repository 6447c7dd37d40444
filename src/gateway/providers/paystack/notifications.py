"""Paystack's webhook notifications, pure: the HMAC-SHA512 signature of the raw body
(x-paystack-signature), the mode an event belongs to, and the event in our terms (docs/providers/paystack.md).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

import orjson

from gateway.kit.money import exponent
from gateway.kit.signing import constant_time_equal, hmac_hex
from gateway.providers.base import WebhookEvent, WebhookPayloadError
from gateway.providers.paystack.payout_transformers import TRANSFER_EVENTS, transfer_event
from gateway.providers.paystack.transformers import (
    CURRENCIES,
    PAYMENT_EVENTS,
    REFUND_EVENTS,
    Options,
    is_our_reference,
    payment_result,
    refund_key,
    refund_result,
    subunits,
)

# --- webhooks ------------------------------------------------------------------------------------


def signature(secret_key: str, body: bytes) -> str:
    """x-paystack-signature: lowercase hex HMAC-SHA512 of the raw body keyed with the secret key."""
    return hmac_hex(secret_key.encode(), body, "sha512")


def signature_matches(secret_key: str, body: bytes, header: str) -> bool:
    return constant_time_equal(signature(secret_key, body), header.strip().lower())


def domain_mode(data: Mapping[str, Any]) -> bool | None:
    """The mode a Paystack object says it belongs to (`domain`: "live" or "test"); None if it says none."""
    domain = data.get("domain")
    return {"live": True, "test": False}.get(domain) if isinstance(domain, str) else None


_MODE_NAMES: Final[Mapping[bool | None, str]] = MappingProxyType(
    {True: "live", False: "test", None: "unknown"}
)


def _event_id(mode: bool | None, event: str, *parts: object) -> str:
    tail = ":".join("" if p is None else str(p) for p in parts)
    name = f"{_MODE_NAMES[mode]}:{event}:{tail}"
    # The inbox keys events by this (255 characters at most).
    return name if len(name) <= 200 else name[:120] + ":" + hashlib.sha256(name.encode()).hexdigest()


def interpret(payload: dict[str, Any], default_mode: bool | None, options: Options) -> WebhookEvent:
    """A verified webhook's body in our terms. `default_mode` is the mode to assume when the body names
    none (the only configured mode); with neither, nothing in the event can match a payment.

    Paystack events carry no event id: money events are deduplicated on (mode, event, reference[,
    amount, refund_reference]), as docs/providers/paystack.md advise."""
    event = payload.get("event")
    data = payload.get("data")
    if not isinstance(event, str) or not isinstance(data, dict):
        raise WebhookPayloadError("a Paystack event has a string `event` and an object `data`")
    mode = domain_mode(data)
    if mode is None:
        mode = default_mode
    try:
        if event in PAYMENT_EVENTS:
            return _payment_event(payload, event, data, mode, options)
        if event in REFUND_EVENTS:
            return _refund_event(payload, event, data, mode)
        if event in TRANSFER_EVENTS:  # payouts (payout_transformers.py)
            event_id = _event_id(mode, event, data["reference"])
            return transfer_event(payload, event, data, mode, event_id)
    except (KeyError, TypeError, ValueError) as e:
        raise WebhookPayloadError(f"{event}: missing or malformed field: {e}") from e
    # Everything else (disputes, subscriptions, ...) is kept in the inbox and ignored.
    ident = data.get("id") or data.get("reference") or data.get("code")
    if ident is None or isinstance(ident, dict | list):
        ident = hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return WebhookEvent(event_id=_event_id(mode, event, ident), event_type=event, payload=payload)


def _payment_event(
    payload: dict[str, Any], event: str, data: Mapping[str, Any], mode: bool | None, options: Options
) -> WebhookEvent:
    reference = data["reference"]
    if not isinstance(reference, str) or not reference:
        raise ValueError("reference must be a non-empty string")
    result = payment_result(data, reference, options)
    ours = is_our_reference(reference, mode)
    return WebhookEvent(
        event_id=_event_id(mode, event, reference),
        event_type=event,
        payload=payload,
        # A reference we did not make for this mode matches nothing (the inbox flags it "unmatched").
        provider_reference=reference if ours else None,
        result=result,
    )


def _refund_event(
    payload: dict[str, Any], event: str, data: Mapping[str, Any], mode: bool | None
) -> WebhookEvent:
    transaction = data["transaction_reference"]
    currency = data["currency"]
    if not isinstance(transaction, str) or not isinstance(currency, str):
        raise ValueError("transaction_reference and currency must be strings")
    amount = subunits(data["amount"])
    # A transaction we did not make for this mode names no refund of ours (flagged "unmatched").
    key = refund_key(transaction, amount) if is_our_reference(transaction, mode) else None
    return WebhookEvent(
        event_id=_event_id(mode, event, transaction, amount, data.get("refund_reference")),
        event_type=event,
        payload=payload,
        refund_reference=key,
        refund_result=refund_result(data, key, currency),
    )


# Every currency Paystack takes has 100 subunits to the unit, as its ISO minor unit says (import time).
assert all(exponent(c) == 2 for c in CURRENCIES)
