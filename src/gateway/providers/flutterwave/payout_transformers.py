"""Flutterwave v3 Transfers as pure functions: the transfer body out, transfers in
(docs/providers/flutterwave.md, "Payouts").

`POST /v3/transfers` takes `account_bank` (a bank code, or a mobile money operator: MPS, MTN,
AIRTEL, ...), `account_number` (a mobile number with its country code for mobile money), the amount
in major units (a JSON number, sent as its exact literal), `reference` = our payout id (Flutterwave
keeps one transfer per reference), `narration` and `beneficiary_name`. A transfer answers with
`status` NEW, then PENDING, then SUCCESSFUL or FAILED (`complete_message` says why).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

import orjson

from gateway.kit.money import to_major_string
from gateway.providers.base import WebhookEvent, WebhookPayloadError
from gateway.providers.flutterwave.transformers import MalformedAnswer, money, transaction_id
from gateway.providers.payouts import (
    BANK_ACCOUNT,
    MOBILE_MONEY,
    PayoutDestination,
    PayoutRequest,
    PayoutResult,
    PayoutUpdate,
)

PAYOUT_REFERENCE_RE: Final = re.compile(r"po_[0-9a-hjkmnp-tv-z]{26}")
TRANSFER_EVENT: Final = "transfer.completed"
# [C] NEW (queued) and SUCCESSFUL/FAILED (Flutterwave's SDK docs and webhook samples); PENDING [P].
IN_FLIGHT: Final = frozenset({"NEW", "PENDING", "QUEUED"})
# [U] `complete_message` is free text: a balance too low, then anything else.
INSUFFICIENT_MARKERS: Final = ("insufficient", "not enough")
DUPLICATE_MARKERS: Final = ("duplicate", "already exists", "already been used")


def destination_problem(
    destination: PayoutDestination, currency: str, *, default_operators: Mapping[str, str]
) -> tuple[str, str] | None:
    """Why Flutterwave cannot pay this destination (None: it can)."""
    if not destination.name:
        return ("invalid_destination", "Flutterwave needs the beneficiary's name: set destination.name.")
    if destination.type == MOBILE_MONEY:
        phone = destination.phone or ""
        if not (phone.startswith("+") and phone[1:].isdigit() and 8 <= len(phone) - 1 <= 15):
            return ("invalid_destination", "A mobile_money destination needs destination.phone in E.164.")
        if not (destination.bank_code or default_operators.get(currency)):
            return (
                "invalid_destination",
                "Flutterwave needs the operator (MPS, MTN, AIRTEL, ...) as destination.bank_code.",
            )
        return None
    if destination.type == BANK_ACCOUNT:
        if not (destination.account_number and destination.bank_code):
            return ("invalid_destination", "A bank_account destination needs account_number and bank_code.")
        return None
    return ("invalid_destination", f"Flutterwave cannot pay a {destination.type} destination.")


def transfer_body(
    request: PayoutRequest,
    *,
    default_operators: Mapping[str, str],
    sender: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """`POST /v3/transfers` (the destination was checked by destination_problem). `sender` is the
    `meta` M-Pesa Kenya requires (sender, sender_country, mobile_number)."""
    d = request.destination
    label = request.reference or request.payout_id
    if d.type == MOBILE_MONEY:
        assert d.phone is not None
        account_bank = d.bank_code or default_operators[request.currency]
        account_number = d.phone.removeprefix("+")
    else:
        account_bank, account_number = str(d.bank_code), str(d.account_number)
    body: dict[str, Any] = {
        "account_bank": account_bank,
        "account_number": account_number,
        # The exact major-unit literal ("50.00", "5000"): a JSON number, never a float on the way.
        "amount": orjson.Fragment(to_major_string(request.amount, request.currency)),
        "currency": request.currency,
        "reference": request.payout_id,
        "narration": f"Payout {label}"[:100],
        "beneficiary_name": d.name,
    }
    if sender:
        body["meta"] = dict(sender)
    return body


def has_marker(message: str, markers: tuple[str, ...]) -> bool:
    text = message.lower()
    return any(m in text for m in markers)


def transfer_refused(message: str) -> PayoutResult:
    """A 4xx `status: "error"` on the create: Flutterwave made no transfer."""
    code = "insufficient_funds" if has_marker(message, INSUFFICIENT_MARKERS) else "transfer_rejected"
    return PayoutResult(
        "failed", failure_code=code, failure_message=message[:300] or "Flutterwave refused it."
    )


def transfer_result(data: Mapping[str, Any], payout_id: str) -> PayoutResult:
    """A transfer object (create, GET, webhook `data`) in our terms; MalformedAnswer for another
    reference, an unknown status or an unreadable amount on a success."""
    if data.get("reference") != payout_id:
        raise MalformedAnswer("the transfer names another reference")
    status = data.get("status")
    if not isinstance(status, str):
        raise MalformedAnswer("the transfer has no status")
    status = status.strip().upper()
    ident = transaction_id(data)
    if status == "SUCCESSFUL":
        amount, currency = money(data.get("amount"), data.get("currency"))
        return PayoutResult("succeeded", ident, amount=amount, currency=currency)
    if status == "FAILED":
        message = data.get("complete_message")
        message = message[:300] if isinstance(message, str) and message else "Flutterwave could not pay."
        code = "insufficient_funds" if has_marker(message, INSUFFICIENT_MARKERS) else "transfer_failed"
        return PayoutResult("failed", ident, failure_code=code, failure_message=message)
    if status in IN_FLIGHT:
        return PayoutResult("pending", ident)
    raise MalformedAnswer(f"unknown transfer status {status!r}"[:200])


def is_transfer_event(payload: Mapping[str, Any]) -> bool:
    """`{"event": "transfer.completed", "data": {...}}` (v3), or the older
    `{"event.type": "Transfer", "transfer": {...}}` some accounts still receive."""
    return payload.get("event") == TRANSFER_EVENT or (
        payload.get("event.type") == "Transfer" and isinstance(payload.get("transfer"), dict)
    )


def interpret_transfer(payload: dict[str, Any]) -> WebhookEvent:
    """A transfer's webhook as a hint (payout_capabilities.query_before_acting): the gateway asks
    GET /v3/transfers/{id} and applies that answer. A reference not of our form names no payout."""
    data = payload.get("data") if "data" in payload else payload.get("transfer")
    if not isinstance(data, dict):
        raise WebhookPayloadError("a transfer webhook has an object `data`")
    ident, reference = transaction_id(data), data.get("reference")
    if ident is None or not isinstance(reference, str):
        raise WebhookPayloadError("a transfer webhook names the transfer's id and reference")
    status = str(data.get("status") or "").strip().upper()[:32]
    ours = PAYOUT_REFERENCE_RE.fullmatch(reference) is not None
    try:
        result = transfer_result(data, reference)
    except MalformedAnswer:
        result = PayoutResult("pending", ident)
    return WebhookEvent(
        event_id=f"{TRANSFER_EVENT}:{ident}:{status}",
        event_type=TRANSFER_EVENT,
        payload=payload,
        payout=PayoutUpdate(
            result=result,
            payout_id=reference if ours else None,
            provider_reference=ident if ours else None,
        ),
    )
