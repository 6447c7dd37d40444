"""Wave Checkout as pure functions: our requests to its JSON, its JSON to our results, its signatures.

Shapes follow docs/providers/wave.md. A checkout session carries `id` (`cos-...`), `amount` (a
major-unit string), `currency`, `checkout_status` (`open` | `complete` | `expired`), `payment_status`
(`processing` | `cancelled` | `succeeded`), `client_reference` (our payment id), `wave_launch_url`,
`transaction_id` once paid, `when_refunded` once refunded, and `last_payment_error` `{code, message}`.
Errors are `{"code": "kebab-case", "message": ...}`. Webhooks are events `{"id": "AE_...", "type":
"checkout.session.completed", "data": <session>}` signed by `Wave-Signature: t=<unix>,v1=<hex>[,...]`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from gateway.kit.money import from_provider_number, to_major_string
from gateway.providers.base import PaymentRequest, PaymentResult, WebhookEvent, WebhookPayloadError
from gateway.providers.details import MobileMoney

OPERATOR = "wave"  # payment_method_details.operator
CHECKOUT_EVENTS = frozenset({"checkout.session.completed", "checkout.session.payment_failed"})

# Wave's payment-error codes (last_payment_error.code, and error bodies) to our stable decline codes.
# `insufficient-funds` is in docs/providers/wave.md; the others are Wave's documented checkout errors [U].
DECLINE_CODES: Mapping[str, str] = {
    "insufficient-funds": "insufficient_funds",
    "blocked-account": "account_blocked",
    "payer-mobile-mismatch": "payer_mobile_mismatch",
    "cross-border-payment-not-allowed": "cross_border_not_allowed",
    "kyb-limits-exceeded": "limit_exceeded",
    "payment-failure": "payment_failed",
}
# A create that Wave refuses with an error code we do not know: the payment could not be started.
REJECTED = "payment_rejected"
# A session Wave reports failed without saying why.
FAILED = "payment_failed"
REFUND_FAILED = "refund_declined"


class MalformedAnswer(ValueError):
    """Wave's JSON is not shaped as documented (or names money we cannot read exactly)."""


# --- requests ----------------------------------------------------------------------------------------


def session_body(
    request: PaymentRequest, *, success_url: str, error_url: str, restrict_payer_mobile: bool = False
) -> dict[str, Any]:
    """`POST /v1/checkout/sessions`: the amount as an exact major-unit string (XOF: "5000")."""
    body: dict[str, Any] = {
        "amount": to_major_string(request.amount, request.currency),
        "currency": request.currency,
        "success_url": success_url,
        "error_url": error_url,
        "client_reference": request.payment_id,
    }
    if restrict_payer_mobile and request.customer.phone:
        body["restrict_payer_mobile"] = request.customer.phone
    return body


# --- answers -----------------------------------------------------------------------------------------


def error_of(body: Any) -> tuple[str | None, str]:
    """An error body's `code` and `message` (either may be missing)."""
    if not isinstance(body, dict):
        return None, ""
    code, message = body.get("code"), body.get("message")
    return (code if isinstance(code, str) and code else None), (
        message[:500] if isinstance(message, str) else ""
    )


def decline_code(wave_code: str | None, default: str = FAILED) -> str:
    return DECLINE_CODES.get(wave_code or "", default)


def money(session: Mapping[str, Any]) -> tuple[int, str]:
    """A session's amount (a major-unit string) in minor units, exactly, and its currency."""
    currency = session.get("currency")
    value = session.get("amount")
    if not isinstance(currency, str):
        raise MalformedAnswer("the session has no currency")
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise MalformedAnswer("the session has no amount")
    try:
        return from_provider_number(value, currency), currency
    except (KeyError, TypeError, ValueError) as e:
        raise MalformedAnswer(f"amount {value!r} {currency} is not an exact amount: {e}") from e


def session_id(session: Mapping[str, Any]) -> str:
    value = session.get("id")
    if not isinstance(value, str) or not value:
        raise MalformedAnswer("the session has no id")
    return value


def client_reference(session: Mapping[str, Any]) -> str | None:
    value = session.get("client_reference")
    return value if isinstance(value, str) and value else None


def redirect_action(url: str, return_url: str | None) -> dict[str, Any]:
    return {"type": "redirect_to_url", "redirect_to_url": {"url": url, "return_url": return_url}}


def _failure(session: Mapping[str, Any]) -> tuple[str, str]:
    error = session.get("last_payment_error")
    code, message = error_of(error)
    return decline_code(code), message or "Wave reported the payment as failed."


def session_status(session: Mapping[str, Any]) -> str | None:
    """Our status for a session; None for a combination Wave does not document.

    Paid when `payment_status == "succeeded"` (docs/providers/wave.md). A session still `open` waits for
    its customer, even after a failed attempt (`last_payment_error` is the *last* attempt's: the
    customer may try again until the session expires). `cancelled` means Wave ended the payment;
    an `expired` session nobody paid expires here too, or fails if an attempt failed.
    """
    checkout, payment = session.get("checkout_status"), session.get("payment_status")
    if payment == "succeeded":
        return "succeeded"
    if checkout == "expired":
        return "failed" if session.get("last_payment_error") else "expired"
    if payment == "cancelled" and checkout in ("open", "complete"):
        return "failed"
    if payment == "processing" and checkout == "open":
        return "requires_action"
    if payment == "processing" and checkout == "complete":
        return "processing"  # the customer paid; Wave has not settled it yet
    return None


def session_result(session: Mapping[str, Any]) -> PaymentResult:
    """A session (create, GET, search, webhook `data`) in our terms, with its money always filled in
    so the state machine refuses a success that names other money than the payment's. An open
    session's next action is Wave's launch URL; the customer comes back to its `success_url`."""
    status = session_status(session)
    if status is None:
        raise MalformedAnswer(
            f"unknown session state {session.get('checkout_status')!r}/{session.get('payment_status')!r}"
        )
    reference = session_id(session)
    amount, currency = money(session)
    if status == "failed":
        code, message = _failure(session)
        return PaymentResult(
            status="failed",
            provider_reference=reference,
            failure_code=code,
            failure_message=message,
            amount=amount,
            currency=currency,
        )
    next_action = None
    if status == "requires_action":
        url = session.get("wave_launch_url")
        if not isinstance(url, str) or not url.startswith("https://"):
            raise MalformedAnswer("an open session without an https wave_launch_url")
        success_url = session.get("success_url")
        next_action = redirect_action(url, success_url if isinstance(success_url, str) else None)
    details = None
    if status in ("succeeded", "processing"):
        # The session names no payer, except the one mobile it was restricted to (if it was).
        details = MobileMoney.of(
            operator=OPERATOR,
            phone=session.get("restrict_payer_mobile"),
            receipt=session.get("transaction_id"),
        )
    return PaymentResult(
        status=status,
        provider_reference=reference,
        next_action=next_action,
        amount=amount,
        currency=currency,
        payment_method_details=details,
    )


def search_results(body: Any) -> list[dict[str, Any]]:
    """`GET /v1/checkout/sessions/search?client_reference=...` answers `{"result": [<session>, ...]}`."""
    results = body.get("result") if isinstance(body, dict) else body
    if not isinstance(results, list):
        raise MalformedAnswer("the search answer has no result list")
    return [s for s in results if isinstance(s, dict)]


def pick_session(sessions: Iterable[Mapping[str, Any]], payment_id: str) -> Mapping[str, Any] | None:
    """Of the sessions naming our payment: the paid one if any, else the newest (a create retried
    without provider-side idempotency may have opened two)."""
    ours = [s for s in sessions if client_reference(s) == payment_id]
    if not ours:
        return None
    paid = [s for s in ours if s.get("payment_status") == "succeeded"]
    if paid:
        return paid[0]
    return max(ours, key=lambda s: str(s.get("when_created") or ""))


def refunded(session: Mapping[str, Any]) -> bool:
    return bool(session.get("when_refunded"))


# --- webhooks ----------------------------------------------------------------------------------------


def signature(secret: str, timestamp: str, body: bytes, separator: str = "") -> str:
    """`v1` of Wave-Signature: lowercase hex HMAC-SHA256(secret, timestamp + separator + raw body)."""
    message = timestamp.encode() + separator.encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def parse_signature_header(header: str) -> tuple[str | None, list[str]]:
    """`t=<unix ts>,v1=<hex>[,v1=<hex>...]` -> (t, [v1, ...]); unknown parts are ignored."""
    timestamp: str | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            timestamp = value.strip()
        elif key == "v1" and value.strip():
            signatures.append(value.strip())
    return timestamp, signatures


def signature_valid(
    header: str,
    body: bytes,
    secrets: Sequence[str],
    *,
    now: int,
    tolerance_seconds: int,
    separator: str = "",
) -> bool:
    """True if any v1 matches the HMAC under any secret (constant-time) and, with a tolerance, the
    timestamp is that close to `now`. Every comparison runs, so timing says nothing about which."""
    timestamp, given = parse_signature_header(header)
    if timestamp is None or not timestamp.isascii() or not timestamp.isdigit() or not given:
        return False
    if tolerance_seconds and abs(now - int(timestamp)) > tolerance_seconds:
        return False
    expected = [signature(secret, timestamp, body, separator) for secret in secrets]
    matches = [hmac.compare_digest(e.encode(), g.lower().encode()) for e in expected for g in given]
    return any(matches)


def bearer_valid(authorization: str | None, secrets: Sequence[str]) -> bool:
    """The shared-secret strategy: `Authorization: Bearer <webhook secret>`, compared in constant time."""
    if not authorization:
        return False
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return False
    token = token.strip()
    matches = [hmac.compare_digest(token.encode(), s.encode()) for s in secrets]
    return any(matches)


def interpret(payload: dict[str, Any]) -> WebhookEvent:
    """A verified event in our terms. Events other than checkout sessions' (merchant.payment_received,
    b2b.*, test.test_event) are stored and ignored; a session state we do not know moves nothing."""
    event_id, event_type, data = payload.get("id"), payload.get("type"), payload.get("data")
    if not isinstance(event_id, str) or not event_id or not isinstance(event_type, str):
        raise WebhookPayloadError("a Wave event has a string `id` and `type`")
    if event_type not in CHECKOUT_EVENTS:
        return WebhookEvent(event_id=event_id, event_type=event_type, payload=payload)
    if not isinstance(data, dict):
        raise WebhookPayloadError(f"{event_type} without a session in `data`")
    try:
        reference = session_id(data)
        result = session_result(data) if session_status(data) is not None else None
    except MalformedAnswer as e:
        raise WebhookPayloadError(str(e)) from e
    if result is not None and result.status == "requires_action":
        # A failed attempt on a session that stays open: the customer may still pay. Nothing moves.
        result = None
    return WebhookEvent(
        event_id=event_id,
        event_type=event_type,
        payload=payload,
        payment_id=client_reference(data),
        provider_reference=reference,
        result=result,
    )
