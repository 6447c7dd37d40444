"""MTN MoMo Collection as pure functions: request bodies out, status bodies in (docs/providers/momo.md).

No I/O here. Our ids become MoMo's references by uuid5, so the same payment (or refund) always names
the same request to pay (or refund) at MoMo: a create retried after a timeout cannot make a second one.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import phonenumbers

from gateway.kit.money import from_provider_number, to_major_string
from gateway.providers.base import (
    PaymentRequest,
    PaymentResult,
    RefundRequest,
    RefundResult,
    WebhookEvent,
    WebhookPayloadError,
    mobile_prompt,
)
from gateway.providers.details import MobileMoney

OPERATOR = "mtn"  # payment_method_details.operator

# Fixed for good: changing either would orphan every request to pay and refund already sent.
REQUEST_TO_PAY_NAMESPACE = uuid.UUID("5b0f4f0e-8a43-5d8e-9d0b-6d6f6d6f7274")
REFUND_NAMESPACE = uuid.UUID("5b0f4f0e-8a43-5d8e-9d0b-6d6f6d6f7266")

# payerMessage and payeeNote end up in the payer's and our transaction history [U: MoMo's limit].
MESSAGE_MAX = 160

# The country calling codes a target environment's wallets have (its payer's MSISDN must start so).
# Unlisted environments (and the sandbox, whose test numbers are Swedish +46733...) take any number.
COUNTRY_CODES: Mapping[str, frozenset[int]] = {
    "mtnuganda": frozenset({256}),
    "mtnghana": frozenset({233}),
    "mtnrwanda": frozenset({250}),
    "mtnivorycoast": frozenset({225}),
    "mtncongo": frozenset({242}),
    "mtncameroon": frozenset({237}),
    "mtnbenin": frozenset({229}),
    "mtnzambia": frozenset({260}),
    "mtnguineaconakry": frozenset({224}),
    "mtnliberia": frozenset({231}),
    "mtnswaziland": frozenset({268}),
    "mtnsouthafrica": frozenset({27}),
}

SUCCEEDED = frozenset({"SUCCESSFUL"})
FAILED = frozenset({"FAILED", "REJECTED", "TIMEOUT"})
# CREATED: seen in the sandbox before a request resolves [P].
WAITING = frozenset({"PENDING", "CREATED"})

# MoMo's reasons (a string, or {code, message}) in our failure codes.
REASONS: Mapping[str, tuple[str, str]] = {
    "APPROVAL_REJECTED": ("customer_canceled", "The customer declined the request on their phone."),
    "TRANSACTION_CANCELED": ("customer_canceled", "The request was canceled."),
    "EXPIRED": ("timeout", "The customer did not answer the request in time."),
    "PAYER_NOT_FOUND": ("payer_not_found", "The phone number has no MTN MoMo wallet."),
    "PAYER_ONGOING": ("payer_busy", "The customer's wallet is busy with another request."),
    "PAYER_DELAYED": ("payer_busy", "The customer's wallet could not be reached in time."),
    "NOT_ENOUGH_FUNDS": ("insufficient_funds", "The wallet has insufficient funds."),
    "PAYER_LIMIT_REACHED": ("limit_exceeded", "The payment is over the customer's wallet limit."),
    "PAYEE_NOT_ALLOWED_TO_RECEIVE": ("payee_not_allowed", "The merchant account may not receive this."),
    "PAYEE_NOT_FOUND": ("payee_not_allowed", "MTN MoMo does not know the merchant account."),
    "NOT_ALLOWED": ("not_allowed", "MTN MoMo does not allow this payment."),
    "NOT_ALLOWED_TARGET_ENVIRONMENT": ("not_allowed", "The merchant account is not allowed here."),
    "PAYMENT_NOT_APPROVED": ("customer_canceled", "The customer did not approve the payment."),
    "INVALID_CALLBACK_URL_HOST": ("invalid_callback_url", "MTN MoMo refused the gateway's callback URL."),
    "INVALID_CURRENCY": ("currency_not_supported", "The wallet does not take this currency."),
    # Often insufficient funds, MoMo does not say which [P].
    "INTERNAL_PROCESSING_ERROR": ("processing_error", "MTN MoMo could not process the payment."),
    "SERVICE_UNAVAILABLE": ("provider_unavailable", "MTN MoMo was unavailable."),
    "COULD_NOT_PERFORM_TRANSACTION": ("transaction_failed", "MTN MoMo could not perform the payment."),
}
# FAILED with no reason we know; REJECTED and TIMEOUT as statuses [P] say what happened themselves.
DEFAULT_FAILURE = ("payment_failed", "MTN MoMo reported the payment as failed.")
STATUS_FAILURES: Mapping[str, tuple[str, str]] = {
    "REJECTED": REASONS["APPROVAL_REJECTED"],
    "TIMEOUT": REASONS["EXPIRED"],
}
REFUND_FAILURE = ("refund_declined", "MTN MoMo could not return the money to the customer.")


class MalformedAnswer(Exception):
    """MoMo answered with a body we cannot read."""


# --- ids, phone numbers, amounts -------------------------------------------------------------------


def reference_id(payment_id: str) -> str:
    """The payment's X-Reference-Id: the same UUID for every attempt to create it."""
    return str(uuid.uuid5(REQUEST_TO_PAY_NAMESPACE, payment_id))


def refund_reference_id(refund_id: str) -> str:
    return str(uuid.uuid5(REFUND_NAMESPACE, refund_id))


def msisdn(phone: str) -> str:
    """E.164 to MoMo's MSISDN: "+256772123456" -> "256772123456"."""
    return phone.removeprefix("+")


def phone_problem(phone: str | None, target_environment: str | None) -> str | None:
    """Why MoMo cannot take this payer (None: it can). `phone` is E.164 as the API normalised it."""
    if not phone:
        return "MTN MoMo needs the payer's phone number: set customer.phone (E.164, e.g. +256772123456)."
    try:
        number = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        return "customer.phone is not a phone number in international format."
    digits = msisdn(phone)
    if not digits.isdigit() or not 8 <= len(digits) <= 15:
        return "customer.phone is not an MSISDN MTN MoMo can take."
    codes = COUNTRY_CODES.get((target_environment or "").lower())
    if codes is not None and number.country_code not in codes:
        wanted = ", ".join(f"+{c}" for c in sorted(codes))
        return f"MTN MoMo ({target_environment}) takes only {wanted} numbers."
    return None


def amount_string(amount: int, currency: str) -> str:
    """Minor units as MoMo's major-unit string, exact: 5000 EUR -> "50", 1050 EUR -> "10.50",
    500 UGX -> "500".

    A whole amount goes without its zero decimals, as MoMo's own samples write amounts ("100").
    """
    major = to_major_string(amount, currency)
    whole, _, fraction = major.partition(".")
    return whole if fraction.strip("0") == "" else major


def minor_amount(value: Any, currency: str) -> int:
    """MoMo's amount (a string; a number tolerated) in minor units; MalformedAnswer if it is not exact."""
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise MalformedAnswer(f"amount is not a number: {value!r}"[:200])
    try:
        return from_provider_number(value.strip() if isinstance(value, str) else value, currency)
    except (ValueError, TypeError, KeyError) as e:
        raise MalformedAnswer(f"amount {value!r} is not an exact {currency} amount"[:200]) from e


def _clip(text: str) -> str:
    return text[:MESSAGE_MAX]


# --- requests ----------------------------------------------------------------------------------------


def request_to_pay_body(request: PaymentRequest) -> dict[str, Any]:
    """`POST /collection/v1_0/requesttopay`. externalId is our payment id: callbacks and status
    answers name it, so they can be matched to the payment without trusting anything else."""
    assert request.customer.phone is not None  # checked before the payment existed
    label = request.reference or request.payment_id
    return {
        "amount": amount_string(request.amount, request.currency),
        "currency": request.currency,
        "externalId": request.payment_id,
        "payer": {"partyIdType": "MSISDN", "partyId": msisdn(request.customer.phone)},
        "payerMessage": _clip(request.description or f"Payment {label}"),
        "payeeNote": _clip(label),
    }


def refund_body(request: RefundRequest, payment_reference: str) -> dict[str, Any]:
    """`POST /disbursement/v1_0/refund`, naming the refunded request to pay by its X-Reference-Id."""
    payment = request.payment
    return {
        "amount": amount_string(request.amount, payment.currency),
        "currency": payment.currency,
        "externalId": request.refund_id,
        "payerMessage": _clip(f"Refund of payment {payment.payment_id}"),
        "payeeNote": _clip(f"Refund {request.refund_id} of {payment.payment_id}"),
        "referenceIdToRefund": payment_reference,
    }


def prompt(phone: str | None, amount: int | None, currency: str | None) -> dict[str, Any]:
    """next_action for a request to pay that waits for the customer's PIN."""
    ask = "Approve the MTN MoMo request for {what} on {where} by entering the MoMo PIN."
    return mobile_prompt(phone, amount, currency, ask)


# --- answers -----------------------------------------------------------------------------------------


def access_token(data: Any) -> tuple[str, int]:
    """`POST /{product}/token/` -> (access_token, seconds it lives)."""
    if not isinstance(data, dict):
        raise MalformedAnswer("token answer is not a JSON object")
    token = data.get("access_token")
    if not isinstance(token, str) or not token:
        raise MalformedAnswer("token answer has no access_token")
    expires_in = data.get("expires_in", 3600)
    try:
        seconds = int(expires_in)
    except (TypeError, ValueError) as e:
        raise MalformedAnswer(f"expires_in is not a number: {expires_in!r}"[:200]) from e
    return token, max(seconds, 1)


def reason_code(reason: Any) -> str | None:
    """`reason` is a string or {code, message}."""
    if isinstance(reason, str):
        return reason.strip().upper() or None
    if isinstance(reason, dict):
        code = reason.get("code")
        if isinstance(code, str):
            return code.strip().upper() or None
    return None


def failure(status: str, reason: Any) -> tuple[str, str]:
    code = reason_code(reason)
    if code is not None and code in REASONS:
        return REASONS[code]
    return STATUS_FAILURES.get(status, DEFAULT_FAILURE)


def _status(data: Mapping[str, Any]) -> str:
    status = data.get("status")
    if not isinstance(status, str):
        raise MalformedAnswer("the answer has no status")
    return status.strip().upper()


def payer_phone(data: Mapping[str, Any]) -> str | None:
    payer = data.get("payer")
    if isinstance(payer, dict) and payer.get("partyIdType") == "MSISDN":
        party = payer.get("partyId")
        if isinstance(party, str) and party.isdigit():
            return "+" + party
    return None


def payment_result(data: Mapping[str, Any], reference: str) -> PaymentResult:
    """A request to pay's status body (GET, or a callback) in our terms. MalformedAnswer for an unknown
    status or an unreadable amount on a success."""
    status = _status(data)
    currency = data.get("currency") if isinstance(data.get("currency"), str) else None
    if status in SUCCEEDED:
        if currency is None:
            raise MalformedAnswer("a successful request to pay names no currency")
        return PaymentResult(
            status="succeeded",
            provider_reference=reference,
            amount=minor_amount(data.get("amount"), currency),
            currency=currency,
            payment_method_details=MobileMoney.of(
                operator=OPERATOR, phone=payer_phone(data), receipt=data.get("financialTransactionId")
            ),
        )
    if status in FAILED:
        code, message = failure(status, data.get("reason"))
        return PaymentResult(
            status="failed", provider_reference=reference, failure_code=code, failure_message=message
        )
    if status in WAITING:
        amount = None
        if currency is not None:
            try:
                amount = minor_amount(data.get("amount"), currency)
            except MalformedAnswer:
                amount = None
        return PaymentResult(
            status="requires_action",
            provider_reference=reference,
            next_action=prompt(payer_phone(data), amount, currency),
        )
    raise MalformedAnswer(f"unknown request-to-pay status {status!r}"[:200])


def refund_result(data: Mapping[str, Any], reference: str) -> RefundResult:
    status = _status(data)
    currency = data.get("currency") if isinstance(data.get("currency"), str) else None
    if status in SUCCEEDED:
        if currency is None:
            raise MalformedAnswer("a successful refund names no currency")
        return RefundResult(
            status="succeeded",
            provider_reference=reference,
            amount=minor_amount(data.get("amount"), currency),
            currency=currency,
        )
    if status in FAILED:
        code = reason_code(data.get("reason"))
        message = REASONS.get(code or "", REFUND_FAILURE)[1]
        return RefundResult(
            status="failed",
            provider_reference=reference,
            failure_code=REFUND_FAILURE[0],
            failure_message=message,
        )
    if status in WAITING:
        return RefundResult(status="pending", provider_reference=reference)
    raise MalformedAnswer(f"unknown refund status {status!r}"[:200])


def error_code(data: Any) -> str | None:
    """MoMo's error body `{"code": "...", "message": "..."}` -> the code."""
    return reason_code(data) if isinstance(data, dict) else None


# --- callbacks ---------------------------------------------------------------------------------------


def interpret(payload: dict[str, Any]) -> WebhookEvent:
    """A callback (the status GET's body, PUT or POSTed to our token URL) as a hint: the gateway asks
    the status GET before acting (capabilities.query_before_acting), so its result only says "look"."""
    external_id = payload.get("externalId")
    if not isinstance(external_id, str) or not external_id:
        raise WebhookPayloadError("the callback has no externalId")
    status = payload.get("status")
    if not isinstance(status, str) or not status:
        raise WebhookPayloadError("the callback has no status")
    status = status.strip().upper()[:32]
    reference = reference_id(external_id)
    if external_id.startswith("re_"):
        # A refund's callback: we never ask for one (refunds are confirmed by their status GET), and
        # an unsigned one is no ground for acting. Stored and ignored.
        return WebhookEvent(
            event_id=f"{refund_reference_id(external_id)}:{status}",
            event_type=f"refund.{status.lower()}",
            payload=payload,
        )
    try:
        result = payment_result(payload, reference)
    except MalformedAnswer:
        # Whatever it says, it is only a reason to ask MoMo.
        result = PaymentResult(status="requires_action", provider_reference=reference)
    return WebhookEvent(
        event_id=f"{reference}:{status}",
        event_type=f"requesttopay.{status.lower()}",
        payload=payload,
        payment_id=external_id[:255],
        provider_reference=reference,
        result=result,
    )
