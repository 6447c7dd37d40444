"""Paystack's JSON in, our dataclasses out: pure functions, no I/O (shapes from docs/providers/paystack.md).

References. Our payment id is the Paystack `reference`, in the only form Paystack accepts (letters,
digits, `-`, `.`, `=`; no `_`): `pay_<id>` becomes `pay-<id>` in live mode and `pay-<id>-test` in test
mode. The mode mark matters: a webhook signed with the test key can only name test payments, so anyone
holding the (widely shared) test key cannot move a live payment by sending a test event that names a
live payment's reference.

Refunds. Paystack's refund webhooks name the refunded transaction and the amount, not the refund (no
refund id, no merchant_note), so a refund's `provider_reference` is `<transaction reference>:<amount>`,
which both the API's answer and every later webhook yield.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from gateway.kit.money import exponent
from gateway.providers.base import PaymentRequest, PaymentResult, RefundResult
from gateway.providers.details import Card, MethodDetails, MobileMoney

# docs/providers/paystack.md: the currencies Paystack's initialize takes. Each has 100 subunits to the unit,
# the same as its ISO 4217 minor unit, so our amounts go to Paystack as they are (checked below).
CURRENCIES: Final = frozenset({"GHS", "KES", "NGN", "ZAR", "USD"})
# docs/providers/paystack.md: `channels` of initialize; a payment_method naming one limits checkout to it.
CHANNELS: Final = frozenset({"card", "bank", "ussd", "qr", "eft", "mobile_money", "bank_transfer"})
# A payment_method of this form is a saved card's authorization code: charged at once, no checkout.
AUTHORIZATION_PREFIX: Final = "AUTH_"

# Where Paystack's transaction statuses land in ours (docs/providers/paystack.md, [C]). "abandoned" is an
# initialized transaction nobody paid yet: the customer may still pay at the checkout page.
PAYMENT_STATUSES: Final[Mapping[str, str]] = MappingProxyType(
    {"success": "succeeded", "failed": "failed", "abandoned": "requires_action", "reversed": "failed"}
)
# [U] in docs/providers/paystack.md: statuses of a transaction still in flight. "ongoing": the customer is
# at a step of checkout (OTP, PIN); the others: money is moving but not settled.
IN_FLIGHT_STATUSES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "ongoing": "requires_action",
        "pending": "processing",
        "processing": "processing",
        "queued": "processing",
    }
)
# docs/providers/paystack.md "needs-attention": Paystack waits for the customer's bank details (dashboard
# retry); the refund is not over, so it stays pending.
REFUND_STATUSES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "pending": "pending",
        "processing": "pending",
        "needs-attention": "pending",
        "processed": "succeeded",
        "failed": "failed",
    }
)
# [U] Paystack's `gateway_response` / `message` texts of a declined charge are not a documented enum;
# matched case-insensitively as substrings, first match wins. Anything else failed is payment_failed.
DECLINE_CODES: Final[tuple[tuple[str, str], ...]] = (
    ("insufficient", "insufficient_funds"),
    ("expired", "expired_card"),
    ("incorrect pin", "incorrect_pin"),
    ("invalid pin", "incorrect_pin"),
    ("pin tries exceeded", "incorrect_pin"),
    ("cvv", "incorrect_cvc"),
    ("not permitted", "transaction_not_allowed"),
    ("not allowed", "transaction_not_allowed"),
    ("declined", "card_declined"),
    ("do not honor", "card_declined"),
    ("not honored", "card_declined"),
    ("lost card", "card_declined"),
    ("stolen", "card_declined"),
    ("fraud", "card_declined"),
    ("restricted card", "card_declined"),
    ("authentication", "authentication_failed"),
    ("otp", "authentication_failed"),
)
# [U] docs/providers/paystack.md: the text of Paystack's refusal of a reference it has seen before.
DUPLICATE_REFERENCE_MARKERS: Final = ("duplicate transaction reference", "duplicate reference")

# Events docs/providers/paystack.md lists that the gateway acts on; the rest (disputes, transfers,
# subscriptions, invoices, payment requests, identification, dedicated accounts) are stored and ignored.
PAYMENT_EVENTS: Final = frozenset({"charge.success"})
REFUND_EVENTS: Final = frozenset(
    {"refund.pending", "refund.processing", "refund.processed", "refund.failed", "refund.needs-attention"}
)
KNOWN_EVENTS: Final = (
    PAYMENT_EVENTS
    | REFUND_EVENTS
    | frozenset(
        {
            "charge.dispute.create",
            "charge.dispute.remind",
            "charge.dispute.resolve",
            "transfer.success",
            "transfer.failed",
            "transfer.reversed",
            "subscription.create",
            "subscription.disable",
            "subscription.not_renew",
            "subscription.expiring_cards",
            "invoice.create",
            "invoice.update",
            "invoice.payment_failed",
            "paymentrequest.pending",
            "paymentrequest.success",
            "customeridentification.success",
            "customeridentification.failed",
            "dedicatedaccount.assign.success",
            "dedicatedaccount.assign.failed",
        }
    )
)

SIGNATURE_HEADER: Final = "x-paystack-signature"
# `-2`, `-3`...: an attempt after the first (payments/rails.attempt_key's `_n`; Paystack takes only
# alphanumerics, `-`, `.` and `=` in a reference).
_REFERENCE_RE: Final = re.compile(r"pay-([0-9a-hjkmnp-tv-z]{26})(-[0-9]+)?(-test)?")
_DIGITS_RE: Final = re.compile(r"[0-9]{1,18}")


@dataclass(frozen=True)
class Options:
    """The [U] items of docs/providers/paystack.md, replaceable without touching the code paths."""

    in_flight_statuses: Mapping[str, str] = field(default_factory=lambda: IN_FLIGHT_STATUSES)
    duplicate_reference_markers: tuple[str, ...] = DUPLICATE_REFERENCE_MARKERS
    decline_codes: tuple[tuple[str, str], ...] = DECLINE_CODES


class UnexpectedAnswer(ValueError):
    """Paystack answered in a shape or with a status we do not know: we know nothing of the outcome."""


# --- money ---------------------------------------------------------------------------------------


def to_subunits(amount: int, currency: str) -> int:
    """Our minor units as Paystack's subunits: the same integer for every currency Paystack takes."""
    if currency not in CURRENCIES or exponent(currency) != 2:
        raise ValueError(f"Paystack does not take {currency!r}")
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise TypeError("amount must be an int of minor units")
    return amount


def subunits(value: Any) -> int:
    """An amount as Paystack writes it: an int, or (refund webhooks) a string of digits. Never a float."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and _DIGITS_RE.fullmatch(value):
        return int(value)
    raise ValueError(f"not an amount in subunits: {value!r}")


# --- references ----------------------------------------------------------------------------------


def reference_for(payment_id: str, livemode: bool) -> str:
    """`pay_01h…` -> `pay-01h…` (live) or `pay-01h…-test` (test), attempt n's `pay_01h…_n` ->
    `pay-01h…-n(-test)`: stable across our retries."""
    return payment_id.replace("_", "-") + ("" if livemode else "-test")


def is_our_reference(reference: str, livemode: bool | None) -> bool:
    """True if `reference` is one we made for a payment of this mode (None: mode unknown -> False)."""
    m = _REFERENCE_RE.fullmatch(reference)
    if m is None or livemode is None:
        return False
    return (m.group(3) is None) == livemode


def refund_key(transaction_reference: str, amount: int) -> str:
    """What names a refund both in Paystack's answer to POST /refund and in its refund webhooks."""
    return f"{transaction_reference}:{amount}"


# --- requests ------------------------------------------------------------------------------------


def _metadata(request: PaymentRequest) -> dict[str, str]:
    meta = {"payment_id": request.payment_id}
    if request.reference:
        meta["order_reference"] = request.reference
    return meta


def initialize_body(request: PaymentRequest, reference: str, channel: str | None) -> dict[str, Any]:
    """POST /transaction/initialize (docs/providers/paystack.md)."""
    assert request.customer.email is not None
    body: dict[str, Any] = {
        "email": request.customer.email,
        "amount": to_subunits(request.amount, request.currency),
        "currency": request.currency,
        "reference": reference,
        "metadata": _metadata(request),
    }
    if request.return_url:
        body["callback_url"] = request.return_url
    if channel is not None:
        body["channels"] = [channel]
    return body


def charge_authorization_body(request: PaymentRequest, reference: str) -> dict[str, Any]:
    """POST /transaction/charge_authorization: a saved card (`AUTH_…`) charged without checkout."""
    assert request.customer.email is not None
    assert request.payment_method is not None
    return {
        "email": request.customer.email,
        "amount": to_subunits(request.amount, request.currency),
        "currency": request.currency,
        "authorization_code": request.payment_method,
        "reference": reference,
        "metadata": _metadata(request),
    }


def refund_body(
    transaction_reference: str, refund_id: str, payment_id: str, amount: int, currency: str
) -> dict[str, Any]:
    """POST /refund (docs/providers/paystack.md): always with the amount, so full and partial read alike."""
    return {
        "transaction": transaction_reference,
        "amount": to_subunits(amount, currency),
        "currency": currency,
        "merchant_note": f"Gateway refund {refund_id} of payment {payment_id}",
    }


# --- answers -------------------------------------------------------------------------------------


def message_of(answer: Mapping[str, Any]) -> str:
    msg = answer.get("message")
    return msg[:500] if isinstance(msg, str) and msg else "Paystack gave no reason."


def accepted(answer: Mapping[str, Any]) -> bool:
    """Paystack's envelope: `status: true` means the call worked (not that anyone paid)."""
    return answer.get("status") is True and isinstance(answer.get("data"), dict)


def is_duplicate_reference(answer: Mapping[str, Any], options: Options) -> bool:
    text = message_of(answer).lower()
    return answer.get("status") is False and any(m in text for m in options.duplicate_reference_markers)


def decline_code(reason: str | None, options: Options, default: str = "payment_failed") -> str:
    text = (reason or "").lower()
    for needle, code in options.decline_codes:
        if needle in text:
            return code
    return default


def redirect_result(answer: Mapping[str, Any], reference: str, return_url: str | None) -> PaymentResult:
    """An initialize answer: the customer goes to Paystack's single-use checkout page."""
    url = answer["data"].get("authorization_url")
    if not isinstance(url, str) or not url.startswith("https://"):
        raise UnexpectedAnswer("initialize answered without an https authorization_url")
    return PaymentResult(
        status="requires_action",
        provider_reference=reference,
        next_action={"type": "redirect_to_url", "redirect_to_url": {"url": url, "return_url": return_url}},
    )


def charged_amount(data: Mapping[str, Any]) -> int:
    """What the customer paid for our order. Where the merchant passes Paystack's fees on, `amount`
    is `requested_amount` plus fees (docs/providers/paystack.md sample: 30050 + 10283 = 40333); the order is
    the requested amount, as long as at least that much was charged."""
    amount = subunits(data["amount"])
    requested = data.get("requested_amount")
    if requested is not None:
        try:
            asked = subunits(requested)
        except ValueError:
            return amount
        if amount >= asked:
            return asked
    return amount


def method_details(data: Mapping[str, Any]) -> MethodDetails | None:
    """How a transaction was paid, from its `authorization` (docs/providers/paystack.md): a card's
    brand, last4, exp_month/exp_year (strings), card_type ("visa "), country_code; for mobile money,
    the operator in `bank` and the number's last four digits in `last4`. Other channels (bank,
    ussd, qr, bank_transfer): None."""
    auth = data.get("authorization")
    if not isinstance(auth, dict):
        return None
    channel = auth.get("channel") or data.get("channel")
    if channel == "card":
        return Card.of(
            brand=auth.get("brand") or auth.get("card_type"),
            number=auth.get("last4"),
            exp_month=auth.get("exp_month"),
            exp_year=auth.get("exp_year"),
            funding=auth.get("card_type"),
            country_code=auth.get("country_code"),
        )
    if channel == "mobile_money":
        operator = auth.get("bank") or auth.get("brand")
        return MobileMoney.of(
            operator=operator.strip().lower() if isinstance(operator, str) and operator.strip() else None,
            phone=auth.get("last4"),
        )
    return None


def payment_result(data: Mapping[str, Any], reference: str, options: Options) -> PaymentResult:
    """A transaction object (verify, charge_authorization, charge.success) in our terms.

    A success always carries the amount and currency Paystack names, so the state machine refuses it
    when they are not ours (docs/providers/paystack.md: check data.status, data.amount and data.currency)."""
    raw = data.get("status")
    status = None
    if isinstance(raw, str):
        status = PAYMENT_STATUSES.get(raw) or options.in_flight_statuses.get(raw)
    if status is None:
        raise UnexpectedAnswer(f"unknown Paystack transaction status {raw!r}")
    currency = data.get("currency")
    amount: int | None = None
    try:
        amount = charged_amount(data)
    except (KeyError, ValueError):
        if status == "succeeded":
            raise UnexpectedAnswer("a successful transaction without an amount in subunits") from None
    if status == "succeeded" and not isinstance(currency, str):
        raise UnexpectedAnswer("a successful transaction without a currency")
    failure_code = failure_message = None
    if raw == "reversed":
        failure_code, failure_message = "payment_reversed", "Paystack reversed the transaction."
    elif status == "failed":
        reason = data.get("gateway_response") or data.get("message")
        failure_message = reason[:500] if isinstance(reason, str) and reason else "Paystack declined it."
        failure_code = decline_code(failure_message, options)
    return PaymentResult(
        status=status,
        provider_reference=reference,
        failure_code=failure_code,
        failure_message=failure_message,
        amount=amount,
        currency=currency if isinstance(currency, str) else None,
        # Known once the customer paid or tried to (an abandoned checkout has no authorization).
        payment_method_details=method_details(data) if status in ("succeeded", "failed") else None,
    )


def rejected_result(answer: Mapping[str, Any], reference: str, options: Options) -> PaymentResult:
    """A 4xx from Paystack on a charge: it will not take this payment; its message says why."""
    reason = message_of(answer)
    return PaymentResult(
        status="failed",
        provider_reference=reference,
        failure_code=decline_code(reason, options, default="provider_rejected"),
        failure_message=f"Paystack: {reason}",
    )


def refund_result(data: Mapping[str, Any], key: str | None, currency: str) -> RefundResult:
    """A refund object (POST /refund answer) or a refund event's data, in our terms."""
    raw = data.get("status")
    status = REFUND_STATUSES.get(raw) if isinstance(raw, str) else None
    if status is None:
        raise UnexpectedAnswer(f"unknown Paystack refund status {raw!r}")
    named = data.get("currency")
    amount = subunits(data["amount"]) if data.get("amount") is not None else None
    failed = status == "failed"
    return RefundResult(
        status=status,
        provider_reference=key,
        failure_code="refund_failed" if failed else None,
        failure_message="Paystack could not return the money to the customer." if failed else None,
        amount=amount,
        currency=named if isinstance(named, str) else currency,
    )


def refund_rejected(answer: Mapping[str, Any]) -> RefundResult:
    return RefundResult(
        status="failed", failure_code="refund_declined", failure_message=f"Paystack: {message_of(answer)}"
    )
