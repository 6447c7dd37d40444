"""Flutterwave v3 as pure functions: our requests to its JSON bodies, its JSON to our results.

Shapes follow docs/providers/flutterwave.md: every answer is an envelope `{"status": "success"|"error",
"message": ..., "data": ...}`; amounts are JSON numbers in major units (sent as exact literals,
read back exactly through kit.money); a transaction (verify, tokenized charge, webhook `data`)
carries `id`, `tx_ref`, `amount`, `currency`, `status`, `processor_response`, `payment_type`.
Our payment id is the `tx_ref`, so every answer can be checked against the payment it names.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.kit.money import from_provider_number, to_major_string
from gateway.kit.signing import hmac_base64, matches_any
from gateway.providers.base import (
    PaymentRequest,
    PaymentResult,
    RefundResult,
    WebhookEvent,
    WebhookPayloadError,
    header,
)
from gateway.providers.details import Card, card_funding

# Collection currencies of Flutterwave's v3 checkout. Not listed in the protocol notes [U]: taken from
# Flutterwave's own SDK currency constants and payment-method guides; the adapter takes another set.
CURRENCIES = frozenset(
    {
        "NGN",
        "GHS",
        "KES",
        "UGX",
        "TZS",
        "RWF",
        "ZAR",
        "ZMW",
        "MWK",
        "XAF",
        "XOF",
        "EGP",
        "USD",
        "EUR",
        "GBP",
    }
)

# A `payment_method` starting so is a saved-card token (`flw-t1nf-...`, from a verify's data.card.token):
# the payment is charged at once through /v3/tokenized-charges instead of the hosted checkout.
TOKEN_PREFIX = "flw-t"

# Transaction statuses (docs/providers/flutterwave.md; `pending` [U]). A pending transaction has
# started (a bank transfer under way, a charge in flight): the customer has acted, the money has not
# moved yet.
STATUSES: Mapping[str, str] = {"successful": "succeeded", "failed": "failed", "pending": "processing"}

# Refund statuses: `completed` [C]; `pending` and `failed` [U]. Any other word is read as pending (the
# reconciler asks again) rather than guessed into an outcome.
REFUND_STATUSES: Mapping[str, str] = {"completed": "succeeded", "pending": "pending", "failed": "failed"}

CHARGE_EVENTS = frozenset({"charge.completed", "charge.failed"})  # charge.failed: v4 naming [U for v3]
REFUND_EVENTS = frozenset({"refund.completed"})  # v4 naming [U for v3]

# The processor's reason (free text) to our stable decline codes; the first match wins.
DECLINE_RULES: tuple[tuple[str, str], ...] = (
    ("insufficient", "insufficient_funds"),
    ("not sufficient", "insufficient_funds"),
    ("expired card", "expired_card"),
    ("card expired", "expired_card"),
    ("card has expired", "expired_card"),
    ("token expired", "expired_card"),
    ("incorrect pin", "incorrect_pin"),
    ("invalid pin", "incorrect_pin"),
    ("wrong pin", "incorrect_pin"),
    ("pin tries", "incorrect_pin"),
    ("otp", "authentication_failed"),
    ("authentication", "authentication_failed"),
    ("3ds", "authentication_failed"),
    ("exceeds", "limit_exceeded"),
    ("limit", "limit_exceeded"),
    ("token", "invalid_payment_method"),
    ("invalid card", "invalid_payment_method"),
    ("issuer or switch inoperative", "processing_error"),
    ("timeout", "processing_error"),
    ("timed out", "processing_error"),
    ("do not honor", "card_declined"),
    ("declined", "card_declined"),
    ("not permitted", "card_declined"),
    ("restricted", "card_declined"),
    ("fraud", "card_declined"),
    ("lost", "card_declined"),
    ("stolen", "card_declined"),
    ("pick up", "card_declined"),
)
REFUND_FAILURE_CODE = "refund_declined"


class MalformedAnswer(ValueError):
    """Flutterwave's JSON is not shaped as documented (or names money we cannot read exactly)."""


@dataclass(frozen=True)
class Envelope:
    status: str | None
    message: str
    data: Any

    @property
    def ok(self) -> bool:
        return self.status == "success"


def envelope(body: Any) -> Envelope:
    if not isinstance(body, dict):
        raise MalformedAnswer("the answer is not a JSON object")
    status, message = body.get("status"), body.get("message")
    return Envelope(
        status=status if isinstance(status, str) else None,
        message=message if isinstance(message, str) else "",
        data=body.get("data"),
    )


def _amount(amount: int, currency: str) -> orjson.Fragment:
    # The exact major-unit literal ("50.00", "5000"): a JSON number, never a float on the way.
    return orjson.Fragment(to_major_string(amount, currency))


def _customer(request: PaymentRequest) -> dict[str, str]:
    c = request.customer
    customer = {"email": c.email or ""}
    if c.name:
        customer["name"] = c.name
    if c.phone:
        customer["phonenumber"] = c.phone
    return customer


def hosted_payment_body(
    request: PaymentRequest,
    *,
    redirect_url: str,
    session_duration_minutes: int,
    payment_options: str | None,
) -> dict[str, Any]:
    """`POST /v3/payments` (Flutterwave Standard): our payment id is the tx_ref."""
    body: dict[str, Any] = {
        "tx_ref": request.payment_id,
        "amount": _amount(request.amount, request.currency),
        "currency": request.currency,
        "redirect_url": redirect_url,
        "customer": _customer(request),
        "session_duration": session_duration_minutes,
    }
    if payment_options:
        body["payment_options"] = payment_options
    if request.description:
        body["customizations"] = {"description": request.description}
    if request.metadata:
        body["meta"] = dict(request.metadata)
    return body


def tokenized_charge_body(
    request: PaymentRequest, token: str, *, country: str, redirect_url: str | None
) -> dict[str, Any]:
    """`POST /v3/tokenized-charges`: charge a saved card now (Flutterwave's v3 API reference)."""
    body: dict[str, Any] = {
        "token": token,
        "currency": request.currency,
        "country": country,
        "amount": _amount(request.amount, request.currency),
        "email": request.customer.email or "",
        "tx_ref": request.payment_id,
    }
    if redirect_url:
        body["redirect_url"] = redirect_url
    if request.description:
        body["narration"] = request.description
    return body


def refund_body(amount: int, currency: str) -> dict[str, Any]:
    """`POST /v3/transactions/{id}/refund`: always the exact amount, so full and partial read alike."""
    return {"amount": _amount(amount, currency)}


def decline_code(reason: str | None, payment_type: str | None = "card") -> str:
    text = (reason or "").lower()
    for needle, code in DECLINE_RULES:
        if needle in text:
            return code
    return "card_declined" if payment_type in (None, "card") else "payment_failed"


def redirect_action(url: str, return_url: str | None) -> dict[str, Any]:
    return {"type": "redirect_to_url", "redirect_to_url": {"url": url, "return_url": return_url}}


def hosted_link_result(data: Any, return_url: str | None) -> PaymentResult:
    """The hosted link: the customer pays there, and we learn the outcome by webhook or verify."""
    link = data.get("link") if isinstance(data, dict) else None
    if not isinstance(link, str) or not link.startswith("https://"):
        raise MalformedAnswer("no https data.link in the hosted-link answer")
    return PaymentResult(status="requires_action", next_action=redirect_action(link, return_url))


def transaction_id(data: Mapping[str, Any]) -> str | None:
    value = data.get("id")
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
        return None
    return str(value)


def money(value: Any, currency: Any) -> tuple[int, str]:
    """A transaction's amount (major units, a JSON number) in minor units, exactly, and its currency."""
    if not isinstance(currency, str):
        raise MalformedAnswer("currency is missing")
    try:
        return from_provider_number(value, currency), currency
    except (KeyError, TypeError, ValueError) as e:
        raise MalformedAnswer(f"amount {value!r} {currency} is not an exact amount: {e}") from e


def card_details(data: Mapping[str, Any]) -> Card | None:
    """A card transaction's `card` object (docs/providers/flutterwave.md): `type` is the brand
    ("MASTERCARD", "VERVE"; some payloads put "DEBIT" there and the brand in `issuer`), `issuer` may
    end with the funding ("MASTERCARD  CREDIT"), `country` may be "NIGERIA NG", `expiry` is "MM/YY"."""
    card = data.get("card")
    if not isinstance(card, dict):
        return None
    kind, issuer = card.get("type"), card.get("issuer")
    brand = kind if card_funding(kind) is None else issuer
    month, _, year = str(card.get("expiry") or "").partition("/")
    return Card.of(
        brand=brand,
        number=card.get("last_4digits"),
        exp_month=month,
        exp_year=year,
        funding=card_funding(issuer) or card_funding(kind),
        country_code=card.get("country"),
    )


def transaction_result(data: Mapping[str, Any], return_url: str | None = None) -> PaymentResult:
    """A transaction object (verify, tokenized charge, `charge.completed` data) in our terms.

    The amount and currency are always filled in, so the state machine refuses a success that names
    other money than the payment's.
    """
    raw = data.get("status")
    status = STATUSES.get(raw) if isinstance(raw, str) else None
    if status is None:
        raise MalformedAnswer(f"unknown transaction status {raw!r}")
    amount, currency = money(data.get("amount"), data.get("currency"))
    reference = transaction_id(data)
    reason = data.get("processor_response")
    reason = reason if isinstance(reason, str) and reason else None
    details = card_details(data) if status in ("succeeded", "failed") else None
    if status == "failed":
        payment_type = data.get("payment_type")
        return PaymentResult(
            status="failed",
            provider_reference=reference,
            failure_code=decline_code(reason, payment_type if isinstance(payment_type, str) else None),
            failure_message=reason or "Flutterwave reported the payment as failed.",
            amount=amount,
            currency=currency,
            payment_method_details=details,
        )
    if status == "processing":
        # A charge that waits for the customer's bank (3-D Secure) names the page to send them to.
        meta = data.get("meta")
        auth = meta.get("authorization") if isinstance(meta, dict) else None
        url = auth.get("redirect") if isinstance(auth, dict) and auth.get("mode") == "redirect" else None
        if isinstance(url, str) and url.startswith("https://"):
            return PaymentResult(
                status="requires_action",
                provider_reference=reference,
                next_action=redirect_action(url, return_url),
                amount=amount,
                currency=currency,
            )
    return PaymentResult(
        status=status,
        provider_reference=reference,
        amount=amount,
        currency=currency,
        payment_method_details=details,
    )


def refund_result(data: Mapping[str, Any], currency: str) -> RefundResult:
    """A refund object (`POST .../refund`, `GET /v3/refunds/{id}`); amounts in the payment's currency."""
    reference = transaction_id(data)
    if reference is None:
        raise MalformedAnswer("the refund has no id")
    raw = data.get("status")
    status = REFUND_STATUSES.get(raw, "pending") if isinstance(raw, str) else "pending"
    amount = None
    if data.get("amount_refunded") is not None:
        amount, _ = money(data["amount_refunded"], currency)
    comment = data.get("comment")
    failed = status == "failed"
    return RefundResult(
        status=status,
        provider_reference=reference,
        failure_code=REFUND_FAILURE_CODE if failed else None,
        failure_message=(
            comment if isinstance(comment, str) and comment else "Flutterwave refused the refund."
        )
        if failed
        else None,
        amount=amount,
        currency=currency,
    )


def _event_id(event: str, data: Mapping[str, Any], payload: Mapping[str, Any]) -> str:
    # Flutterwave's events carry no id of their own: the transaction id plus what it says is the
    # dedupe key (docs/providers/flutterwave.md), so a repeat is dropped and a later status is not.
    if transaction_id(data) is not None:
        return f"{event}:{transaction_id(data)}:{data.get('status')}"
    digest = hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return f"{event}:sha256:{digest[:32]}"


def _charge_event(payload: dict[str, Any], event: str, data: Mapping[str, Any]) -> WebhookEvent:
    tx_ref = data.get("tx_ref")
    if not isinstance(tx_ref, str) or not tx_ref or transaction_id(data) is None:
        raise WebhookPayloadError(f"{event} without tx_ref or numeric id")
    event_id = _event_id(event, data, payload)
    raw = data.get("status")
    if not isinstance(raw, str) or raw not in STATUSES:
        # Stored (and visible) but not acted on: no word we do not know moves money.
        return WebhookEvent(event_id=event_id, event_type=event, payload=payload, payment_id=tx_ref)
    try:
        result = transaction_result(data)
    except MalformedAnswer as e:
        raise WebhookPayloadError(str(e)) from e
    # Found by tx_ref (our payment id) alone: the provider's transaction id is recorded from the result.
    return WebhookEvent(
        event_id=event_id, event_type=event, payload=payload, payment_id=tx_ref, result=result
    )


def _refund_event(payload: dict[str, Any], event: str, data: Mapping[str, Any]) -> WebhookEvent:
    """A refund event names the refund but carries no outcome we act on: nothing in it proves what it
    says, and a forged `failed` would free the amount for a second, real refund (Flutterwave's refunds
    take no idempotency key). Stored and ignored; the reconciler asks `GET /v3/refunds/{id}`."""
    reference = transaction_id(data)
    if reference is None:
        raise WebhookPayloadError(f"{event} without a numeric refund id")
    return WebhookEvent(
        event_id=_event_id(event, data, payload),
        event_type=event,
        payload=payload,
        refund_reference=reference,
    )


def interpret(payload: dict[str, Any]) -> WebhookEvent:
    """A verified webhook body in our terms. Unknown events are kept and ignored, never guessed at."""
    event, data = payload.get("event"), payload.get("data")
    if not isinstance(event, str) or not isinstance(data, dict):
        raise WebhookPayloadError("a Flutterwave webhook has a string `event` and an object `data`")
    if event in CHARGE_EVENTS:
        return _charge_event(payload, event, data)
    if event in REFUND_EVENTS:
        return _refund_event(payload, event, data)
    return WebhookEvent(event_id=_event_id(event, data, payload), event_type=event, payload=payload)


# --- webhook authenticity (docs/providers/flutterwave.md) ---------------------------------------


def webhook_signature(secret_hash: str, body: bytes) -> str:
    """`flutterwave-signature`: base64(HMAC-SHA256(key = secret hash, message = raw body))."""
    return hmac_base64(secret_hash.encode(), body)


def webhook_authentic(headers: Mapping[str, str], body: bytes, secret_hashes: Sequence[str]) -> bool:
    """The signature header when present (HMAC of the raw bytes), else `verif-hash` equal to the
    dashboard's secret hash. Constant-time compares; any configured hash (test, live)."""
    signature = header(headers, "flutterwave-signature")
    if signature is not None:
        return matches_any([webhook_signature(h, body) for h in secret_hashes], signature.strip())
    verif_hash = header(headers, "verif-hash")
    if not verif_hash:
        return False
    return matches_any(list(secret_hashes), verif_hash)
