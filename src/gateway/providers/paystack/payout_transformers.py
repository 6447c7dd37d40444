"""Paystack Transfers as pure functions: the recipient and transfer bodies out, transfers in
(docs/providers/paystack.md, "Payouts").

A payout is two calls: `POST /transferrecipient` (Paystack answers the existing recipient for an
account it already holds, so creating one again is harmless) and `POST /transfer`, whose `reference`
is our payout id: Paystack keeps one transfer per reference, and `GET /transfer/verify/{reference}`
finds it again after a lost answer. The reference carries the mode as payment references do
(`po_<id>` live, `po_<id>-test` test): a webhook signed with the test key can only name test payouts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

import phonenumbers

from gateway.providers.base import WebhookEvent
from gateway.providers.payouts import (
    BANK_ACCOUNT,
    MOBILE_MONEY,
    PayoutDestination,
    PayoutRequest,
    PayoutResult,
    PayoutUpdate,
)
from gateway.providers.paystack.transformers import UnexpectedAnswer, message_of, subunits, to_subunits

TRANSFER_EVENTS: Final = frozenset({"transfer.success", "transfer.failed", "transfer.reversed"})
_PAYOUT_REFERENCE_RE: Final = re.compile(r"(po_[0-9a-hjkmnp-tv-z]{26})(-test)?")

# https://paystack.com/docs/transfers/how-transfers-work/ [C]: a transfer's statuses. "otp" waits for
# an OTP the gateway never sends (it refuses OTP-enabled accounts, below); "received" waits for the
# merchant server's approval (transfer approval URL); both are in flight at Paystack.
TRANSFER_FAILURES: Final[Mapping[str, tuple[str, str]]] = {
    "failed": ("transfer_failed", "Paystack could not process the transfer."),
    "reversed": (
        "transfer_reversed",
        "The receiving bank could not take the transfer; the amount was returned.",
    ),
    "abandoned": ("transfers_otp_enabled", "The transfer waited for an OTP and was abandoned."),
    "rejected": ("transfer_rejected", "The transfer was declined by the account's transfer approval."),
    "blocked": ("transfer_rejected", "The transfer approval was never answered; Paystack blocked it."),
}
IN_FLIGHT: Final = frozenset({"pending", "received", "queued", "processing"})  # queued, processing [U]
OTP_REFUSED: Final = (
    "transfers_otp_enabled",
    "This Paystack account requires an OTP for every transfer, and the gateway cannot give one: "
    "disable the transfers OTP in Paystack's dashboard (Settings > Preferences) to pay out through it.",
)
# [U] Paystack's words for a balance too low for a transfer, and for a reference it has seen before.
INSUFFICIENT_MARKERS: Final = ("balance is not enough", "insufficient", "not enough")
DUPLICATE_MARKERS: Final = ("duplicate", "already exists", "already been used")


def transfer_reference(payout_id: str, livemode: bool) -> str:
    """`po_01h…` (live) or `po_01h…-test` (test): lowercase letters, digits, `_` and `-`, over 16
    characters, as Paystack asks of transfer references."""
    return payout_id + ("" if livemode else "-test")


def payout_of(reference: str, livemode: bool | None) -> str | None:
    """Our payout id in a transfer reference made for this mode (None: not ours, or another mode's)."""
    m = _PAYOUT_REFERENCE_RE.fullmatch(reference)
    if m is None or livemode is None or (m.group(2) is None) != livemode:
        return None
    return m.group(1)


def national_number(phone: str) -> str:
    """E.164 to the local form Paystack's mobile money recipients use: +233551234987 -> 0551234987."""
    number = phonenumbers.parse(phone, None)
    return "0" + phonenumbers.national_significant_number(number)


def destination_problem(
    destination: PayoutDestination,
    currency: str,
    *,
    recipient_types: Mapping[str, str],
    mobile_money_currencies: frozenset[str],
    default_operators: Mapping[str, str],
) -> tuple[str, str] | None:
    """Why Paystack cannot pay this destination in this currency (None: it can)."""
    if not destination.name:
        return ("invalid_destination", "Paystack needs the recipient's name: set destination.name.")
    if destination.type == MOBILE_MONEY:
        if currency not in mobile_money_currencies:
            allowed = ", ".join(sorted(mobile_money_currencies))
            return ("invalid_destination", f"Paystack pays mobile money in {allowed} only.")
        if not destination.phone:
            return ("invalid_destination", "A mobile_money destination needs destination.phone.")
        try:
            phonenumbers.parse(destination.phone, None)
        except phonenumbers.NumberParseException:
            return ("invalid_destination", "destination.phone is not a phone number in E.164.")
        if not (destination.bank_code or default_operators.get(currency)):
            return (
                "invalid_destination",
                "Paystack needs the mobile money operator's code as destination.bank_code "
                "(e.g. MTN, ATL or VOD in Ghana).",
            )
        return None
    if destination.type == BANK_ACCOUNT:
        if currency not in recipient_types:
            allowed = ", ".join(sorted(recipient_types))
            return ("invalid_destination", f"Paystack pays bank accounts in {allowed} only.")
        if not (destination.account_number and destination.bank_code):
            return ("invalid_destination", "A bank_account destination needs account_number and bank_code.")
        return None
    return ("invalid_destination", f"Paystack cannot pay a {destination.type} destination.")


def recipient_body(
    destination: PayoutDestination,
    currency: str,
    *,
    recipient_types: Mapping[str, str],
    default_operators: Mapping[str, str],
) -> dict[str, Any]:
    """`POST /transferrecipient` (checked by destination_problem before the payout existed)."""
    body: dict[str, Any] = {"name": destination.name, "currency": currency}
    if destination.type == MOBILE_MONEY:
        assert destination.phone is not None
        return body | {
            "type": "mobile_money",
            "account_number": national_number(destination.phone),
            "bank_code": destination.bank_code or default_operators[currency],
        }
    return body | {
        "type": recipient_types[currency],
        "account_number": destination.account_number,
        "bank_code": destination.bank_code,
    }


def recipient_code(answer: Mapping[str, Any]) -> str:
    data = answer.get("data")
    code = data.get("recipient_code") if isinstance(data, dict) else None
    if not isinstance(code, str) or not code.startswith("RCP_"):
        raise UnexpectedAnswer("the recipient answer has no recipient_code")
    return code


def transfer_body(request: PayoutRequest, recipient: str, reference: str) -> dict[str, Any]:
    """`POST /transfer`: from the balance, in subunits (= our minor units), under our reference."""
    label = request.reference or request.payout_id
    return {
        "source": "balance",
        "amount": to_subunits(request.amount, request.currency),
        "currency": request.currency,
        "recipient": recipient,
        "reference": reference,
        "reason": f"Payout {label}"[:100],
    }


def has_marker(answer: Mapping[str, Any], markers: tuple[str, ...]) -> bool:
    message = message_of(answer).lower()
    return any(m in message for m in markers)


def transfer_refused(answer: Mapping[str, Any], what: str) -> PayoutResult:
    """A `status: false` 4xx: Paystack created no transfer."""
    message = message_of(answer)[:300] or f"Paystack refused the {what}."
    code = "insufficient_funds" if has_marker(answer, INSUFFICIENT_MARKERS) else f"{what}_rejected"
    return PayoutResult(status="failed", failure_code=code, failure_message=message)


def transfer_result(data: Mapping[str, Any], reference: str) -> PayoutResult:
    """A transfer object (initiate, verify, webhook `data`) in our terms. UnexpectedAnswer for another
    reference, a status we do not know, or an unreadable amount."""
    if data.get("reference") not in (None, reference):
        raise UnexpectedAnswer("the transfer names another reference")
    status = data.get("status")
    if not isinstance(status, str):
        raise UnexpectedAnswer("the transfer has no status")
    status = status.strip().lower()
    code = data.get("transfer_code") if isinstance(data.get("transfer_code"), str) else None
    amount = subunits(data["amount"]) if data.get("amount") is not None else None
    currency = data.get("currency") if isinstance(data.get("currency"), str) else None
    if status == "success":
        if amount is None or currency is None:
            raise UnexpectedAnswer("a successful transfer names no amount or currency")
        return PayoutResult("succeeded", provider_reference=code, amount=amount, currency=currency)
    if status == "otp":
        return PayoutResult("failed", code, failure_code=OTP_REFUSED[0], failure_message=OTP_REFUSED[1])
    if status in TRANSFER_FAILURES:
        failure, message = TRANSFER_FAILURES[status]
        return PayoutResult("failed", code, failure_code=failure, failure_message=message)
    if status in IN_FLIGHT:
        return PayoutResult("pending", code)
    raise UnexpectedAnswer(f"unknown transfer status {status!r}"[:200])


def transfer_event(
    payload: dict[str, Any], event: str, data: Mapping[str, Any], mode: bool | None, event_id: str
) -> WebhookEvent:
    """transfer.success / failed / reversed, signed with the secret key: proof of the outcome. A
    reference not made for this mode names no payout (the inbox flags it unmatched)."""
    reference = data["reference"]
    if not isinstance(reference, str) or not reference:
        raise ValueError("reference must be a non-empty string")
    result = transfer_result(data, reference)
    payout_id = payout_of(reference, mode)
    return WebhookEvent(
        event_id=event_id,
        event_type=event,
        payload=payload,
        payout=PayoutUpdate(
            result=result,
            payout_id=payout_id,
            provider_reference=result.provider_reference if payout_id is not None else None,
        ),
    )
