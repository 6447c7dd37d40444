"""Stripe's JSON in, our dataclasses out; our requests in, Stripe's parameters out. Pure functions.

Shapes as docs/providers/stripe.md records them: PaymentIntent, Refund, Event, amounts.
Everything here works on plain dicts (the SDK's objects are turned into dicts by the adapter).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from gateway.providers.base import PaymentRequest, PaymentResult, RefundRequest, RefundResult
from gateway.providers.details import Card
from gateway.providers.stripe.amounts import money, to_stripe_amount

# Our ids in the Stripe objects' metadata: how webhooks, search and humans in the Stripe dashboard find
# a PaymentIntent's or a Refund's gateway twin.
META_PAYMENT: Final = "gateway_payment_id"
META_REFUND: Final = "gateway_refund_id"
META_REFERENCE: Final = "gateway_reference"
# Who confirms the PaymentIntent: we do, server-side, with the merchant's `pm_...` token ("server"), or
# the merchant's front end does with Stripe.js and the client secret ("client"). A decline ends a
# "server" payment; a "client" customer can try another card on the same PaymentIntent.
META_FLOW: Final = "gateway_flow"
FLOW_SERVER: Final = "server"
FLOW_CLIENT: Final = "client"


# Stripe's decline reasons (`decline_code`, else `code`) mapped to our stable failure codes. Reasons
# Stripe says must reach the customer only as a generic decline (lost or stolen card, fraud, ...) are
# deliberately folded into card_declined: merchants show our codes to their customers.
DECLINE_CODES: Final[Mapping[str, str]] = {
    "insufficient_funds": "insufficient_funds",
    "expired_card": "expired_card",
    "incorrect_cvc": "incorrect_cvc",
    "invalid_cvc": "incorrect_cvc",
    "incorrect_number": "incorrect_number",
    "invalid_number": "incorrect_number",
    "invalid_expiry_month": "invalid_expiry",
    "invalid_expiry_year": "invalid_expiry",
    "processing_error": "processing_error",
    "authentication_required": "authentication_required",
    "payment_intent_authentication_failure": "authentication_failed",
    "card_velocity_exceeded": "card_velocity_exceeded",
    "withdrawal_count_limit_exceeded": "card_velocity_exceeded",
    "card_not_supported": "card_not_supported",
    "currency_not_supported": "card_not_supported",
}
# Stripe's refusals of a request (400 invalid_request_error) that name the money or the method.
REQUEST_ERRORS: Final[Mapping[str, str]] = {
    "amount_too_small": "amount_too_small",
    "amount_too_large": "amount_too_large",
    "invalid_charge_amount_no_decimal_compatible": "amount_not_supported",
    "resource_missing": "invalid_payment_method",
    "payment_method_invalid_parameter": "invalid_payment_method",
    "payment_method_unactivated": "invalid_payment_method",
}
REFUND_REASONS: Final = frozenset({"duplicate", "fraudulent", "requested_by_customer"})
# Asked with every PaymentIntent we create or retrieve: the charge, which names the card it was paid with.
EXPAND_CHARGE: Final = ["latest_charge"]

# A PaymentMethod id as Stripe issues them (pm_ and letters, digits or underscores: pm_card_visa in
# test mode, pm_1Q0PsI... in live mode).
_PM_TOKEN_RE: Final = re.compile(r"pm_[A-Za-z0-9_]{1,250}")
_CARD_NUMBER_RE: Final = re.compile(r"[0-9][0-9 -]{10,28}[0-9]")


class MalformedObject(ValueError):
    """A Stripe object without the fields (or values) its type always has."""


def is_payment_method_token(value: str) -> bool:
    return _PM_TOKEN_RE.fullmatch(value) is not None


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def looks_like_card_number(value: str) -> bool:
    """12 to 19 digits (spaces and dashes allowed between) that pass the Luhn check: a PAN, which must
    never reach Stripe's API from a server (nor our database or logs)."""
    if _CARD_NUMBER_RE.fullmatch(value.strip()) is None:
        return False
    digits = re.sub(r"[ -]", "", value)
    return 12 <= len(digits) <= 19 and _luhn_ok(digits)


CARD_NUMBER_REFUSED: Final = (
    "The gateway never takes card numbers: create a PaymentMethod with Stripe.js or Stripe's mobile SDK "
    "and send its id (pm_...) as payment_method."
)
NOT_A_TOKEN: Final = "payment_method must be a Stripe PaymentMethod id (pm_...)."


def payment_method_problem(payment_method: str | None) -> tuple[str, str] | None:
    """(code, message) when Stripe must not be sent this payment_method, else None. The message never
    repeats the value (it may be a card number)."""
    if payment_method is None or is_payment_method_token(payment_method):
        return None
    if looks_like_card_number(payment_method):
        return "card_number_not_allowed", CARD_NUMBER_REFUSED
    return "invalid_payment_method", NOT_A_TOKEN


def _metadata(payment_id: str, flow: str, reference: str | None) -> dict[str, str]:
    meta = {META_PAYMENT: payment_id, META_FLOW: flow}
    if reference is not None:
        meta[META_REFERENCE] = reference
    return meta


def payment_intent_params(request: PaymentRequest) -> dict[str, Any]:
    """POST /v1/payment_intents parameters. A function of the stored payment alone, so a retry of the
    create (same Idempotency-Key) sends exactly the same parameters and Stripe replays its answer."""
    params: dict[str, Any] = {
        "amount": to_stripe_amount(request.amount, request.currency),
        "currency": request.currency.lower(),
    }
    if request.payment_method is None:
        # Stripe Elements: the merchant's front end collects and confirms with the client secret.
        params["automatic_payment_methods"] = {"enabled": True}
        params["metadata"] = _metadata(request.payment_id, FLOW_CLIENT, request.reference)
    else:
        params["payment_method"] = request.payment_method
        params["confirm"] = True
        if request.return_url is not None:
            # 3-D Secure (and any redirect-based method) answers requires_action + redirect_to_url.
            params["automatic_payment_methods"] = {"enabled": True}
            params["return_url"] = request.return_url
        else:
            # Without a return_url Stripe refuses redirect-capable confirmations; 3-D Secure is then
            # completed by Stripe.js with the client secret.
            params["automatic_payment_methods"] = {"enabled": True, "allow_redirects": "never"}
        params["metadata"] = _metadata(request.payment_id, FLOW_SERVER, request.reference)
    if request.description is not None:
        params["description"] = request.description
    params["expand"] = EXPAND_CHARGE
    return params


def refund_params(request: RefundRequest, payment_intent: str) -> dict[str, Any]:
    params: dict[str, Any] = {
        "payment_intent": payment_intent,
        # Always explicit, also for a full refund: exactly the amount the gateway reserved.
        "amount": to_stripe_amount(request.amount, request.payment.currency),
        "metadata": {META_REFUND: request.refund_id, META_PAYMENT: request.payment.payment_id},
    }
    if request.reason in REFUND_REASONS:
        params["reason"] = request.reason
    return params


def search_query(payment_id: str) -> str:
    # Our ids are [a-z0-9_], nothing to escape inside the quotes.
    return f"metadata['{META_PAYMENT}']:'{payment_id}'"


def pick_payment_intent(found: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The one PaymentIntent a search by our payment id found. There is only ever one (our payment id
    is its Idempotency-Key); should there be more, the one that took money wins, else the newest."""
    if not found:
        return None
    rank = {"succeeded": 2, "processing": 1, "requires_capture": 1}
    return max(found, key=lambda pi: (rank.get(str(pi.get("status")), 0), int(pi.get("created") or 0)))


def find_refund(refunds: Sequence[Mapping[str, Any]], refund_id: str) -> Mapping[str, Any] | None:
    """Our refund among a PaymentIntent's refunds, by the id in its metadata."""
    for refund in refunds:
        if (refund.get("metadata") or {}).get(META_REFUND) == refund_id:
            return refund
    return None


def decline(error: Mapping[str, Any]) -> tuple[str, str]:
    """Our failure code and message for a Stripe error object (an API error's `error`, or a
    PaymentIntent's `last_payment_error`)."""
    code = (
        DECLINE_CODES.get(str(error.get("decline_code")))
        or DECLINE_CODES.get(str(error.get("code")))
        or "card_declined"
    )
    return code, str(error.get("message") or "The card was declined.")


def request_error(error: Mapping[str, Any]) -> tuple[str, str]:
    """Our failure code and message for a 400 invalid_request_error that refused a payment."""
    code = str(error.get("code") or "")
    if error.get("param") == "payment_method":
        ours = "invalid_payment_method"
    else:
        ours = REQUEST_ERRORS.get(code, "payment_rejected")
    return ours, str(error.get("message") or "Stripe refused the payment request.")


def _client_secret_action(pi: Mapping[str, Any]) -> dict[str, Any] | None:
    secret = pi.get("client_secret")
    if not secret:
        return None
    return {"type": "use_client_secret", "use_client_secret": {"client_secret": secret}}


def _next_action(pi: Mapping[str, Any]) -> dict[str, Any] | None:
    action = pi.get("next_action") or {}
    redirect = action.get("redirect_to_url") if action.get("type") == "redirect_to_url" else None
    if redirect and redirect.get("url"):
        return {
            "type": "redirect_to_url",
            "redirect_to_url": {"url": redirect["url"], "return_url": redirect.get("return_url")},
        }
    # use_stripe_sdk (3-D Secure without a return_url) and every other kind: Stripe.js handles them.
    return _client_secret_action(pi)


def card_of(card: Any) -> Card | None:
    """A charge's `payment_method_details.card` (or a PaymentMethod's `card`, which card errors carry):
    brand, last4, exp_month, exp_year, funding, country: Stripe's vocabulary is ours."""
    if not isinstance(card, Mapping):
        return None
    return Card.of(
        brand=card.get("brand"),
        number=card.get("last4"),
        exp_month=card.get("exp_month"),
        exp_year=card.get("exp_year"),
        funding=card.get("funding"),
        country_code=card.get("country"),
    )


def charge_card(charge: Any) -> Card | None:
    """The card a Charge was paid with; None for a charge id (not expanded) or another method type."""
    if not isinstance(charge, Mapping):
        return None
    details = charge.get("payment_method_details") or {}
    return card_of(details.get("card")) if details.get("type") == "card" else None


def payment_result(pi: Mapping[str, Any]) -> PaymentResult:
    """A PaymentIntent in our terms (statuses: docs/providers/stripe.md)."""
    try:
        status = pi["status"]
        flow = (pi.get("metadata") or {}).get(META_FLOW, FLOW_SERVER)
        # What was charged, once there is a charge; the intended amount before.
        field = "amount_received" if status == "succeeded" and "amount_received" in pi else "amount"
        amount, currency = money(pi, field)
        reference = str(pi["id"])
    except (KeyError, TypeError, ValueError) as e:
        raise MalformedObject(f"malformed PaymentIntent: {e}") from e
    common: dict[str, Any] = {"provider_reference": reference, "amount": amount, "currency": currency}
    card = charge_card(pi.get("latest_charge"))
    if status == "succeeded":
        return PaymentResult(status="succeeded", payment_method_details=card, **common)
    if status in ("processing", "requires_capture"):
        # requires_capture: authorised, not yet captured (we never ask for manual capture).
        return PaymentResult(status="processing", **common)
    if status == "canceled":
        return PaymentResult(status="canceled", **common)
    if status == "requires_action":
        return PaymentResult(status="requires_action", next_action=_next_action(pi), **common)
    if status in ("requires_payment_method", "requires_confirmation"):
        error = pi.get("last_payment_error")
        if flow == FLOW_SERVER and status == "requires_payment_method":
            code, message = decline(error) if error else ("payment_failed", "The payment failed.")
            return PaymentResult(
                status="failed",
                failure_code=code,
                failure_message=message,
                payment_method_details=card,
                **common,
            )
        # Waiting for the customer (Elements), also after a declined attempt: they may try again.
        return PaymentResult(status="requires_action", next_action=_client_secret_action(pi), **common)
    raise MalformedObject(f"unknown PaymentIntent status {status!r}")


def refund_result(refund: Mapping[str, Any]) -> RefundResult:
    """A Refund in our terms: pending | succeeded | failed (Stripe's canceled is a failed refund)."""
    try:
        status = refund["status"]
        amount, currency = money(refund)
        reference = str(refund["id"])
    except (KeyError, TypeError, ValueError) as e:
        raise MalformedObject(f"malformed Refund: {e}") from e
    common: dict[str, Any] = {"provider_reference": reference, "amount": amount, "currency": currency}
    if status == "succeeded":
        return RefundResult(status="succeeded", **common)
    if status in ("pending", "requires_action"):
        return RefundResult(status="pending", **common)
    if status == "failed":
        reason = refund.get("failure_reason") or "unknown"
        return RefundResult(
            status="failed",
            failure_code="refund_failed",
            failure_message=f"Stripe could not refund the payment ({reason}).",
            **common,
        )
    if status == "canceled":
        return RefundResult(
            status="failed",
            failure_code="refund_canceled",
            failure_message="The refund was canceled at Stripe.",
            **common,
        )
    raise MalformedObject(f"unknown Refund status {status!r}")
