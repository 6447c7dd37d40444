"""Airtel Money disbursements as pure functions: the disbursement body out, its answers in
(docs/providers/airtel.md, "Payouts").

`POST /standard/v1/disbursements/` takes the payee's national msisdn, a major-unit amount, the
disbursing wallet's encrypted PIN and our payout id as `transaction.id`; `GET
/standard/v1/disbursements/{id}` names it again, so the same payout is always the same disbursement
at Airtel and a lost answer is resolved by the status query, never by a second POST.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from gateway.providers.airtel.transformers import (
    FAILED,
    SUCCEEDED,
    WAITING,
    MalformedAnswer,
    amount_number,
    envelope,
    msisdn,
    phone_problem,
    read_callback,
    read_enquiry,
    result_code,
    transaction,
)
from gateway.providers.base import WebhookEvent
from gateway.providers.payouts import (
    MOBILE_MONEY,
    PayoutDestination,
    PayoutRequest,
    PayoutResult,
    PayoutUpdate,
)

PAYOUT_PREFIX = "po_"
# `reference`: alphanumeric, 4 to 64 characters [P: integrations quoting Airtel's field notes].
REFERENCE_MIN, REFERENCE_MAX = 4, 64

SUCCESS_CODE = "DP00900001001"
# The disbursement is alive but unresolved: ambiguous (000), in process (006).
PENDING_CODES = frozenset({"DP00900001000", "DP00900001006"})
# Airtel's internal errors (ESB000001 something went wrong, ESB000004 an error occurred): unknown.
AMBIGUOUS_RESULTS = frozenset({"ESB000001", "ESB000004"})
# Airtel already holds a disbursement with this transaction id: our one POST reached it before.
DUPLICATE_CODES = frozenset({"DP00900001011", "ESB000041"})
# The status query's "no such transaction".
NOT_FOUND_CODES = frozenset({"DP00900001015", "ESB000045"})
# Airtel's disbursement response codes in our payout failure codes [P: response-code tables quoted by
# integrations, docs/providers/airtel.md]; any other refusal is payout_rejected with its code.
PAYOUT_REASONS: Mapping[str, tuple[str, str]] = {
    "DP00900001003": ("limit_exceeded", "The payout is over the disbursing wallet's or payee's limit."),
    "DP00900001004": ("invalid_amount", "Airtel Money does not take this amount."),
    "DP00900001007": ("insufficient_funds", "The disbursing wallet's balance is too low."),
    "DP00900001010": ("not_allowed", "Airtel Money does not allow this payout from the disbursing wallet."),
    "DP00900001012": ("recipient_not_found", "The phone number has no Airtel Money wallet."),
}
DEFAULT_PAYOUT_FAILURE = ("payout_failed", "Airtel Money reported the disbursement as failed.")
REFUSED = ("payout_rejected", "Airtel Money refused the disbursement.")


def is_payout(transaction_id: str) -> bool:
    return transaction_id.startswith(PAYOUT_PREFIX)


def destination_problem(destination: PayoutDestination, country: str | None) -> tuple[str, str] | None:
    """Why Airtel cannot pay this destination (None: it can): a mobile money phone of the mode's
    market, checked as the collection rail checks a payer."""
    if destination.type != MOBILE_MONEY:
        return ("invalid_destination", "Airtel Money pays out to mobile_money destinations only.")
    problem = phone_problem(destination.phone, country)
    if problem is not None:
        return ("invalid_destination", problem.replace("customer.phone", "destination.phone"))
    return None


def reference(request: PayoutRequest) -> str:
    """The merchant's reference as Airtel takes it (letters and digits only), else our payout id."""
    for candidate in (request.reference, request.payout_id):
        cleaned = re.sub(r"[^A-Za-z0-9]", "", candidate or "")[:REFERENCE_MAX]
        if len(cleaned) >= REFERENCE_MIN:
            return cleaned
    return re.sub(r"[^A-Za-z0-9]", "", request.payout_id)[:REFERENCE_MAX]


def disbursement_body(request: PayoutRequest, pin: str) -> dict[str, Any]:
    """`POST /standard/v1/disbursements/`: `transaction.id` is our payout id (the status query and the
    callback name it)."""
    phone = request.destination.phone
    assert phone is not None  # checked before the payout existed (destination_problem)
    return {
        "payee": {"msisdn": msisdn(phone)},
        "reference": reference(request),
        "pin": pin,
        "transaction": {"amount": amount_number(request.amount, request.currency), "id": request.payout_id},
    }


def _failed(code: str | None, payout_id: str, default: tuple[str, str]) -> PayoutResult:
    failure_code, message = PAYOUT_REASONS.get(code or "", default)
    if code and code not in PAYOUT_REASONS:
        message = f"{message} ({code})"[:200]
    return PayoutResult(
        status="failed", provider_reference=payout_id, failure_code=failure_code, failure_message=message
    )


def status_result(status: str, code: str | None, payout_id: str) -> PayoutResult:
    """A disbursement's transaction status in our terms; MalformedAnswer for one we do not know."""
    status = status.strip().upper()
    if status in SUCCEEDED:
        # Airtel names no amount here [P]: the state machine has nothing to compare.
        return PayoutResult(status="succeeded", provider_reference=payout_id)
    if status in FAILED:
        return _failed(code, payout_id, DEFAULT_PAYOUT_FAILURE)
    if status in WAITING:
        return PayoutResult(status="pending", provider_reference=payout_id)
    raise MalformedAnswer(f"unknown disbursement status {status!r}"[:200])


def create_answer(data: Any, payout_id: str) -> PayoutResult | None:
    """The disbursement POST's answer (HTTP 200 or 400): a final word, pending, or None for "Airtel
    already holds this id" (the status query then answers)."""
    success, code = envelope(data)
    if code in DUPLICATE_CODES or result_code(data) in DUPLICATE_CODES:
        return None
    status = transaction(data).get("status")
    if success is True and code == SUCCESS_CODE:
        if isinstance(status, str) and status.strip().upper() in FAILED | WAITING:
            return status_result(status, code, payout_id)
        return PayoutResult(status="succeeded", provider_reference=payout_id)
    if code in PENDING_CODES or success is None or result_code(data) in AMBIGUOUS_RESULTS:
        # Ambiguous, in process, or an answer without a verdict: the status query settles it.
        return PayoutResult(status="pending", provider_reference=payout_id)
    if success is True:
        if isinstance(status, str) and status.strip():
            try:
                return status_result(status, code, payout_id)
            except MalformedAnswer:
                pass
        return PayoutResult(status="pending", provider_reference=payout_id)
    return _failed(code, payout_id, REFUSED)


def fetch_answer(data: Any, payout_id: str) -> PayoutResult | None:
    """`GET /standard/v1/disbursements/{id}` in our terms; None when Airtel does not know the id."""
    found = read_enquiry(data, payout_id, NOT_FOUND_CODES, "disbursement enquiry")
    return None if found is None else status_result(found.status, found.code, payout_id)


def interpret_callback(payload: dict[str, Any]) -> WebhookEvent:
    """A disbursement's callback (`transaction.id` our payout id): a hint only; the gateway asks the
    status query before acting (payout_capabilities.query_before_acting)."""
    _, payout_id, status = read_callback(
        payload, is_payout, "a disbursement callback names our payout as transaction.id"
    )
    try:
        result = status_result(status, None, payout_id)
    except MalformedAnswer:
        result = PayoutResult(status="pending", provider_reference=payout_id)
    return WebhookEvent(
        event_id=f"{payout_id}:{status}",
        event_type=f"disbursement.{status.lower()}",
        payload=payload,
        payout=PayoutUpdate(result=result, payout_id=payout_id, provider_reference=payout_id),
    )
