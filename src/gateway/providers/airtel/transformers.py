"""Airtel Money Collections as pure functions: request bodies out, answers and callbacks in
(docs/providers/airtel.md).

No I/O here. Our payment id (the attempt's key) is Airtel's `transaction.id`: a create retried after a
timeout names the same transaction, which Airtel refuses as a duplicate instead of pushing twice, and
callbacks and enquiries name it, so they are matched without trusting anything else.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import phonenumbers

from gateway.kit.money import to_major_string
from gateway.kit.signing import constant_time_equal
from gateway.providers.base import (
    PaymentRequest,
    PaymentResult,
    RefundResult,
    WebhookEvent,
    WebhookPayloadError,
    WebhookVerificationError,
    mobile_prompt,
)
from gateway.providers.details import MobileMoney

OPERATOR = "airtel"  # payment_method_details.operator
REFERENCE_MAX = 64  # `reference` is shown in the payer's history [U: Airtel's limit]

# A transaction's status, a collection's and a disbursement's alike.
SUCCEEDED = frozenset({"TS"})
# TF failed; TE expired [P: seen in integrations, not in Airtel's own pages].
FAILED = frozenset({"TF", "TE"})
# TIP in progress; TA ambiguous (Airtel asks for another enquiry later).
WAITING = frozenset({"TIP", "TA"})

# Collections' response codes (status.response_code) in our failure codes.
REASONS: Mapping[str, tuple[str, str]] = {
    "DP00800001002": ("incorrect_pin", "The customer entered a wrong Airtel Money PIN."),
    "DP00800001003": ("limit_exceeded", "The payment is over the customer's wallet limit."),
    "DP00800001004": ("invalid_amount", "Airtel Money does not take this amount."),
    "DP00800001005": ("customer_canceled", "The customer did not enter the PIN."),
    "DP00800001007": ("insufficient_funds", "The wallet has insufficient funds."),
    "DP00800001008": ("payment_refused", "Airtel Money refused the payment."),
    "DP00800001009": ("payment_refused", "Airtel Money refused the payment (do not honor)."),
    "DP00800001010": ("payer_not_allowed", "The number is barred or not registered on Airtel Money."),
    "DP00800001024": ("timeout", "The customer did not answer the prompt in time."),
    "DP00800001029": ("timeout", "The payment request expired."),
}
# Codes that say the request is alive but unresolved: ambiguous, in process.
PENDING_CODES = frozenset({"DP00800001000", "DP00800001006"})
# The enquiry's "no such transaction" (response code, and the ESB result code).
NOT_FOUND_CODES = frozenset({"DP00800001025", "ESB000045"})
# A transaction id Airtel already has: our create reached it before.
DUPLICATE_CODES = frozenset({"ESB000041"})
# X-signature and payload did not match: the market requires message signing, which we do not send.
SIGNING_CODES = frozenset({"DP00800001026"})
DEFAULT_FAILURE = ("payment_failed", "Airtel Money reported the payment as failed.")
REFUND_FAILURE = ("refund_declined", "Airtel Money could not return the money to the customer.")


class MalformedAnswer(Exception):
    """Airtel answered with a body we cannot read."""


# --- phone numbers, amounts ------------------------------------------------------------------------


def msisdn(phone: str) -> str:
    """E.164 to Airtel's msisdn, which carries no country code: "+256752123456" -> "752123456"."""
    number = phonenumbers.parse(phone, None)
    return str(phonenumbers.national_significant_number(number))


def phone_problem(phone: str | None, country: str | None) -> str | None:
    """Why Airtel cannot take this payer (None: it can). `phone` is E.164 as the API normalised it."""
    if not phone:
        return "Airtel Money needs the payer's phone number: set customer.phone (E.164, e.g. +256752123456)."
    try:
        number = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        return "customer.phone is not a phone number in international format."
    national = str(phonenumbers.national_significant_number(number))
    if not national.isdigit() or not 6 <= len(national) <= 12:
        return "customer.phone is not a number Airtel Money can take."
    if country is not None and number.country_code != phonenumbers.country_code_for_region(country):
        wanted = phonenumbers.country_code_for_region(country)
        return f"Airtel Money ({country}) takes only +{wanted} numbers."
    return None


def amount_number(amount: int, currency: str) -> orjson.Fragment:
    """Minor units as Airtel's major-unit JSON number, exact: 5000 UGX -> 5000, 1050 KES -> 10.50,
    10000 KES -> 100 (whole amounts without decimals, as Airtel's samples write them)."""
    major = to_major_string(amount, currency)
    whole, _, fraction = major.partition(".")
    return orjson.Fragment(whole if fraction.strip("0") == "" else major)


# --- requests ----------------------------------------------------------------------------------------


def payment_body(request: PaymentRequest, country: str) -> dict[str, Any]:
    """`POST /merchant/v1/payments/`: the USSD push to the subscriber's phone."""
    assert request.customer.phone is not None  # checked before the payment existed
    label = (request.reference or request.description or request.payment_id)[:REFERENCE_MAX]
    return {
        "reference": label,
        "subscriber": {
            "country": country,
            "currency": request.currency,
            "msisdn": msisdn(request.customer.phone),
        },
        "transaction": {
            "amount": amount_number(request.amount, request.currency),
            "country": country,
            "currency": request.currency,
            "id": request.payment_id,
        },
    }


def refund_body(airtel_money_id: str) -> dict[str, Any]:
    """`POST /standard/v1/payments/refund`: names the payment by Airtel's id only (the whole payment)."""
    return {"transaction": {"airtel_money_id": airtel_money_id}}


def prompt(phone: str | None, amount: int | None, currency: str | None) -> dict[str, Any]:
    """next_action for a USSD push that waits for the customer's PIN."""
    ask = "Approve the Airtel Money request for {what} on {where} with the Airtel Money PIN."
    return mobile_prompt(phone, amount, currency, ask)


# --- answers -----------------------------------------------------------------------------------------


def access_token(data: Any) -> tuple[str, int]:
    """`POST /auth/oauth2/token` -> (access_token, seconds it lives); expires_in comes as a string."""
    if not isinstance(data, dict):
        raise MalformedAnswer("token answer is not a JSON object")
    token = data.get("access_token")
    if not isinstance(token, str) or not token:
        raise MalformedAnswer("token answer has no access_token")
    expires_in = data.get("expires_in", 180)
    try:
        seconds = int(expires_in)
    except (TypeError, ValueError) as e:
        raise MalformedAnswer(f"expires_in is not a number: {expires_in!r}"[:200]) from e
    return token, max(seconds, 1)


def envelope(data: Any) -> tuple[bool | None, str | None]:
    """An answer's `status` envelope: (success, response_code or else result_code)."""
    status = data.get("status") if isinstance(data, dict) else None
    if not isinstance(status, dict):
        return None, None
    success = status.get("success")
    code = status.get("response_code") or status.get("result_code")
    return (success if isinstance(success, bool) else None), (code.strip() if isinstance(code, str) else None)


def result_code(data: Any) -> str | None:
    status = data.get("status") if isinstance(data, dict) else None
    code = status.get("result_code") if isinstance(status, dict) else None
    return code.strip() if isinstance(code, str) else None


def transaction(data: Any) -> dict[str, Any]:
    inner = data.get("data") if isinstance(data, dict) else None
    found = inner.get("transaction") if isinstance(inner, dict) else None
    return found if isinstance(found, dict) else {}


@dataclass(frozen=True)
class Enquiry:
    """A status query's word on one transaction (a payment's or a disbursement's)."""

    status: str  # the transaction's status as Airtel wrote it (TS, TF, TIP, ...)
    code: str | None  # the envelope's response_code, else its result_code
    transaction: dict[str, Any]


def read_enquiry(data: Any, transaction_id: str, not_found: frozenset[str], what: str) -> Enquiry | None:
    """A status query's answer (`GET /standard/v1/payments/{id}`, `GET /standard/v1/disbursements/{id}`):
    its envelope and transaction; None when a code in `not_found` says Airtel does not know the id.
    MalformedAnswer, naming `what`, for one without a status or about another transaction."""
    success, code = envelope(data)
    if code in not_found or result_code(data) in not_found:
        return None
    found = transaction(data)
    status = found.get("status")
    if not isinstance(status, str) or not status.strip():
        raise MalformedAnswer(f"the {what} has no transaction status (success={success}, code={code})"[:200])
    named = found.get("id")
    if named is not None and str(named) != transaction_id:
        raise MalformedAnswer(f"the {what} answered for another transaction id")
    return Enquiry(status, code, found)


def refused(code: str | None) -> PaymentResult:
    failure_code, message = REASONS.get(code or "", DEFAULT_FAILURE)
    return PaymentResult(status="failed", failure_code=failure_code, failure_message=message)


def payment_result(
    status: str, transaction_id: str, *, receipt: Any, code: str | None, phone: str | None
) -> PaymentResult:
    """An enquiry's (or callback's) status in our terms; MalformedAnswer for a status we do not know."""
    status = status.strip().upper()
    if status in SUCCEEDED:
        details = MobileMoney.of(operator=OPERATOR, phone=phone, receipt=receipt)
        # The enquiry names no amount or currency: nothing to check them against [C].
        return PaymentResult(
            status="succeeded", provider_reference=transaction_id, payment_method_details=details
        )
    if status in FAILED:
        failure_code, message = REASONS.get(code or "", DEFAULT_FAILURE)
        if status == "TE" and code not in REASONS:
            failure_code, message = REASONS["DP00800001029"]
        return PaymentResult(
            status="failed",
            provider_reference=transaction_id,
            failure_code=failure_code,
            failure_message=message,
        )
    if status in WAITING:
        return PaymentResult(
            status="requires_action", provider_reference=transaction_id, next_action=prompt(phone, None, None)
        )
    raise MalformedAnswer(f"unknown transaction status {status!r}"[:200])


def enquiry_result(data: Any, transaction_id: str, phone: str | None) -> PaymentResult | None:
    """`GET /standard/v1/payments/{id}` in our terms; None when Airtel does not know the transaction."""
    found = read_enquiry(data, transaction_id, NOT_FOUND_CODES, "enquiry")
    if found is None:
        return None
    receipt = found.transaction.get("airtel_money_id")
    return payment_result(found.status, transaction_id, receipt=receipt, code=found.code, phone=phone)


def refund_result(data: Any, amount: int, currency: str) -> RefundResult:
    """`POST /standard/v1/payments/refund`'s answer: done at once, refused, or not known yet."""
    success, code = envelope(data)
    status = str(transaction(data).get("status") or "").strip().upper()
    reference = transaction(data).get("airtel_money_id")
    ref = str(reference)[:255] if reference else None
    if success is True and status in ("SUCCESS", "TS"):
        return RefundResult(status="succeeded", provider_reference=ref, amount=amount, currency=currency)
    if success is False and code not in PENDING_CODES and result_code(data) not in ("ESB000001", "ESB000004"):
        return RefundResult(
            status="failed",
            provider_reference=ref,
            failure_code=REFUND_FAILURE[0],
            failure_message=REFUND_FAILURE[1],
        )
    return RefundResult(status="pending", provider_reference=ref)


# --- callbacks ---------------------------------------------------------------------------------------


def callback_hash(key: str, transaction_object: Mapping[str, Any]) -> str:
    """Base64 HMAC-SHA256 of the callback's transaction object, as JSON without spaces in the order
    Airtel sent its fields [P: the exact serialisation is not documented]."""
    message = json.dumps(transaction_object, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.b64encode(hmac.new(key.encode(), message, hashlib.sha256).digest()).decode()


def check_hash(key: str, payload: Mapping[str, Any]) -> None:
    """With callback authentication on, the `hash` must be the transaction object's HMAC."""
    given = payload.get("hash")
    found = payload.get("transaction")
    if not isinstance(given, str) or not given or not isinstance(found, dict):
        raise WebhookVerificationError("the callback carries no hash")
    if not constant_time_equal(given, callback_hash(key, found)):
        raise WebhookVerificationError("the callback's hash does not match")


def read_callback(
    payload: Mapping[str, Any], accept: Callable[[str], bool], refusal: str
) -> tuple[dict[str, Any], str, str]:
    """A callback's (a payment's or a disbursement's) transaction object, its id (one `accept` takes,
    else WebhookPayloadError(`refusal`)) and its status_code, cut to what an event id holds."""
    found = payload.get("transaction")
    if not isinstance(found, dict):
        raise WebhookPayloadError("the callback has no transaction")
    transaction_id = found.get("id")
    if not isinstance(transaction_id, str) or not accept(transaction_id):
        raise WebhookPayloadError(refusal)
    status = found.get("status_code")
    if not isinstance(status, str) or not status.strip():
        raise WebhookPayloadError("the callback has no status_code")
    return found, transaction_id[:255], status.strip().upper()[:16]


def interpret(payload: dict[str, Any]) -> WebhookEvent:
    """A callback `{transaction: {id, message, status_code, airtel_money_id}, hash?}` as a hint: the
    gateway asks the enquiry before acting (capabilities.query_before_acting)."""
    found, transaction_id, status = read_callback(payload, bool, "the callback has no transaction id")
    try:
        result = payment_result(
            status, transaction_id, receipt=found.get("airtel_money_id"), code=None, phone=None
        )
    except MalformedAnswer:
        result = PaymentResult(status="requires_action", provider_reference=transaction_id)
    return WebhookEvent(
        event_id=f"{transaction_id}:{status}",
        event_type=f"payment.{status.lower()}",
        payload=payload,
        payment_id=transaction_id,
        provider_reference=transaction_id,
        result=result,
    )
