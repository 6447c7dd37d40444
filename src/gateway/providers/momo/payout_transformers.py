"""MTN MoMo Disbursement transfers as pure functions: the transfer body out, its status body in
(docs/providers/momo.md, "Payouts").

`POST /disbursement/v1_0/transfer` takes the payee's MSISDN, a major-unit amount string and our
payout id as `externalId`; its `X-Reference-Id` is uuid5(our payout id), so the same payout always
names the same transfer at MoMo. `GET /disbursement/v1_0/transfer/{referenceId}` answers the same
JSON as a callback: `status` PENDING | SUCCESSFUL | FAILED (+ `reason`).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from gateway.providers.base import WebhookEvent, WebhookPayloadError
from gateway.providers.momo.transformers import (
    FAILED,
    SUCCEEDED,
    WAITING,
    MalformedAnswer,
    amount_string,
    minor_amount,
    msisdn,
    phone_problem,
    reason_code,
)
from gateway.providers.payouts import (
    MOBILE_MONEY,
    PayoutDestination,
    PayoutRequest,
    PayoutResult,
    PayoutUpdate,
)

# Fixed for good, like the payment and refund namespaces: changing it would orphan every transfer sent.
PAYOUT_NAMESPACE = uuid.UUID("5b0f4f0e-8a43-5d8e-9d0b-6d6f6d6f706f")
PAYOUT_PREFIX = "po_"
MESSAGE_MAX = 160  # [U] as for requests to pay

# MoMo's reasons for a failed transfer in our payout failure codes. The disbursement-side meanings
# are MTN's ("Reason for some FAILED API responses updated", momodevelopercommunity.mtn.com):
# NOT_ENOUGH_FUNDS is our disbursement account's balance (or the payee's receive limit).
PAYOUT_REASONS: Mapping[str, tuple[str, str]] = {
    "NOT_ENOUGH_FUNDS": (
        "insufficient_funds",
        "The disbursement account's balance is too low, or the payee's wallet limit was reached.",
    ),
    "PAYEE_NOT_FOUND": ("recipient_not_found", "The phone number has no MTN MoMo wallet."),
    "PAYER_NOT_FOUND": ("recipient_not_found", "The phone number has no MTN MoMo wallet."),
    "PAYEE_NOT_ALLOWED_TO_RECEIVE": ("recipient_not_allowed", "The payee's wallet may not receive money."),
    "NOT_ALLOWED": ("not_allowed", "MTN MoMo does not allow this transfer from the disbursement account."),
    "NOT_ALLOWED_TARGET_ENVIRONMENT": ("not_allowed", "The disbursement account is not allowed here."),
    "PAYER_LIMIT_REACHED": ("limit_exceeded", "The transfer is over the disbursement account's limit."),
    "INVALID_CURRENCY": ("currency_not_supported", "The wallet does not take this currency."),
    "INVALID_CALLBACK_URL_HOST": ("invalid_callback_url", "MTN MoMo refused the gateway's callback URL."),
    "INTERNAL_PROCESSING_ERROR": ("processing_error", "MTN MoMo could not process the transfer."),
    "SERVICE_UNAVAILABLE": ("provider_unavailable", "MTN MoMo was unavailable."),
    "COULD_NOT_PERFORM_TRANSACTION": ("transaction_failed", "MTN MoMo could not perform the transfer."),
    "EXPIRED": ("timeout", "MTN MoMo did not complete the transfer in time."),
}
DEFAULT_PAYOUT_FAILURE = ("payout_failed", "MTN MoMo reported the transfer as failed.")
REFUSED = ("payout_rejected", "MTN MoMo refused the transfer.")


def payout_reference_id(payout_id: str) -> str:
    """The transfer's X-Reference-Id: the same UUID for this payout, always."""
    return str(uuid.uuid5(PAYOUT_NAMESPACE, payout_id))


def is_payout(external_id: str) -> bool:
    return external_id.startswith(PAYOUT_PREFIX)


def destination_problem(
    destination: PayoutDestination, target_environment: str | None
) -> tuple[str, str] | None:
    """Why MoMo cannot pay this destination (None: it can): a mobile money phone of the target
    environment's country (the sandbox takes any)."""
    if destination.type != MOBILE_MONEY:
        return ("invalid_destination", "MTN MoMo pays out to mobile_money destinations only.")
    problem = phone_problem(destination.phone, target_environment)
    if problem is not None:
        return ("invalid_destination", problem.replace("customer.phone", "destination.phone"))
    return None


def _clip(text: str) -> str:
    return text[:MESSAGE_MAX]


def transfer_body(request: PayoutRequest) -> dict[str, Any]:
    """`POST /disbursement/v1_0/transfer`. externalId is our payout id: status answers and callbacks
    name it, so they can be matched to the payout without trusting anything else."""
    phone = request.destination.phone
    assert phone is not None  # checked before the payout existed (destination_problem)
    label = request.reference or request.payout_id
    return {
        "amount": amount_string(request.amount, request.currency),
        "currency": request.currency,
        "externalId": request.payout_id,
        "payee": {"partyIdType": "MSISDN", "partyId": msisdn(phone)},
        "payerMessage": _clip(f"Payout {label}"),
        "payeeNote": _clip(label),
    }


def payout_failure(status: str, reason: Any) -> tuple[str, str]:
    code = reason_code(reason)
    if code is not None and code in PAYOUT_REASONS:
        return PAYOUT_REASONS[code]
    if status == "TIMEOUT":
        return PAYOUT_REASONS["EXPIRED"]
    return DEFAULT_PAYOUT_FAILURE


def refused(error: Any) -> tuple[str, str]:
    """A 4xx on the transfer POST (`{"code", "message"}`): MoMo created nothing."""
    code = reason_code(error) if isinstance(error, dict) else None
    return PAYOUT_REASONS.get(code or "", REFUSED)


def payout_result(data: Mapping[str, Any], reference: str) -> PayoutResult:
    """A transfer's status body (GET, or a callback) in our terms; MalformedAnswer for an unknown
    status or an unreadable amount on a success."""
    status = data.get("status")
    if not isinstance(status, str):
        raise MalformedAnswer("the transfer's answer has no status")
    status = status.strip().upper()
    currency = data.get("currency") if isinstance(data.get("currency"), str) else None
    if status in SUCCEEDED:
        if currency is None:
            raise MalformedAnswer("a successful transfer names no currency")
        return PayoutResult(
            status="succeeded",
            provider_reference=reference,
            amount=minor_amount(data.get("amount"), currency),
            currency=currency,
        )
    if status in FAILED:
        code, message = payout_failure(status, data.get("reason"))
        return PayoutResult(
            status="failed", provider_reference=reference, failure_code=code, failure_message=message
        )
    if status in WAITING:
        return PayoutResult(status="pending", provider_reference=reference)
    raise MalformedAnswer(f"unknown transfer status {status!r}"[:200])


def interpret_callback(payload: dict[str, Any]) -> WebhookEvent:
    """A transfer's callback (the status GET's body, naming our payout as externalId). It proves
    nothing (payout_capabilities.query_before_acting): the gateway asks the status GET instead."""
    external_id = payload.get("externalId")
    status = payload.get("status")
    if not isinstance(external_id, str) or not is_payout(external_id):
        raise WebhookPayloadError("a transfer callback names our payout as externalId")
    if not isinstance(status, str) or not status:
        raise WebhookPayloadError("the callback has no status")
    status = status.strip().upper()[:32]
    reference = payout_reference_id(external_id)
    try:
        result = payout_result(payload, reference)
    except MalformedAnswer:
        result = PayoutResult(status="pending", provider_reference=reference)
    return WebhookEvent(
        event_id=f"{reference}:{status}",
        event_type=f"transfer.{status.lower()}",
        payload=payload,
        payout=PayoutUpdate(result=result, payout_id=external_id[:255], provider_reference=reference),
    )
