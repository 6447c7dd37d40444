"""M-Pesa payouts through the B2C API (docs/providers/mpesa.md, "Payouts"), pure: the request body,
what Daraja's synchronous answer means, and the Result it later POSTs to the ResultURL. The outcome
only ever arrives there: Daraja has no synchronous B2C status (the reconciler can only wait)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import structlog

from gateway.kit.ids import is_valid
from gateway.providers.base import WebhookEvent, WebhookPayloadError
from gateway.providers.mpesa import transformers as tf
from gateway.providers.mpesa.callbacks import minor, parameters
from gateway.providers.mpesa.settings import B2C
from gateway.providers.payouts import (
    MOBILE_MONEY,
    PayoutDestination,
    PayoutRequest,
    PayoutResult,
    PayoutUpdate,
    payout_failed,
)

log = structlog.get_logger("gateway.providers.mpesa")

B2C_PATH = "/mpesa/b2c/v3/paymentrequest"
REMARKS_MAX = 100
OCCASION_MAX = 100

# B2C ResultCode -> (failure_code, message) [P: Daraja's published result codes, in part].
B2C_CODES: dict[str, tuple[str, str]] = {
    "1": ("insufficient_balance", "The B2C shortcode's balance is too low for this payout."),
    "2": ("amount_too_small", "M-Pesa refused an amount below its minimum."),
    "3": ("amount_too_large", "M-Pesa refused an amount above its maximum."),
    "4": ("limit_exceeded", "The payout would pass a daily transfer limit."),
    "8": ("recipient_limit_exceeded", "The payout would pass the recipient's maximum balance."),
    "11": ("provider_account_invalid", "The B2C shortcode is in an invalid state."),
    "21": ("initiator_not_allowed", "The M-Pesa initiator may not make B2C payments."),
    "2001": ("initiator_credentials_invalid", "M-Pesa rejected the initiator's security credential."),
    "2006": ("recipient_invalid", "The recipient's account does not allow this payout."),
    "2028": ("payout_not_permitted", "The shortcode's products do not permit this payout."),
    "2040": (
        "recipient_not_registered",
        "The recipient is not a registered M-Pesa customer (BusinessPayment pays registered customers only).",
    ),
    "8006": ("initiator_credentials_invalid", "The M-Pesa initiator's security credential is locked."),
}


def check_destination(
    destination: PayoutDestination, currency: str, livemode: bool
) -> tuple[str, str] | None:
    """What B2C cannot pay: anything but a Safaricom number."""
    if destination.type != MOBILE_MONEY:
        return "invalid_destination", "M-Pesa pays out to mobile_money destinations only."
    problem = tf.phone_problem(destination.phone)
    if problem is not None:
        return "invalid_destination", problem.replace("prompt", "pay out to")
    return None


def body(b2c: B2C, request: PayoutRequest, *, command_id: str, result_url: str) -> dict[str, Any]:
    """`POST /mpesa/b2c/v3/paymentrequest`. OriginatorConversationID is our payout id: Daraja echoes
    it in the Result, which is how the Result finds its payout."""
    assert request.destination.phone is not None
    return {
        "OriginatorConversationID": request.payout_id,
        "InitiatorName": b2c.initiator,
        "SecurityCredential": b2c.security_credential,
        "CommandID": command_id,
        "Amount": request.amount // tf.KES,
        "PartyA": b2c.shortcode,
        "PartyB": tf.msisdn(request.destination.phone),
        "Remarks": (request.reference or f"Payout {request.payout_id}")[:REMARKS_MAX],
        "QueueTimeOutURL": result_url,
        "ResultURL": result_url,
        "Occasion": request.payout_id[:OCCASION_MAX],
    }


def answer_result(status: int, data: dict[str, Any]) -> PayoutResult | None:
    """Daraja's answer to the request: accepted (pending until the Result comes), refused (failed:
    nothing was created), or None when it says neither (the caller treats that as no answer)."""
    conversation = data.get("ConversationID")
    if str(data.get("ResponseCode")) == "0" and isinstance(conversation, str) and conversation:
        return PayoutResult(status="pending", provider_reference=conversation)
    error = tf.error_of(data)
    if error is None or (status >= 500 and error.code not in tf.BUSY and error.code != tf.SERVER_ERROR):
        return None
    if error.code in tf.BUSY:
        code = "provider_busy"
    elif error.code in tf.MISCONFIGURED or error.code in (tf.SERVER_ERROR, tf.TOKEN_EXPIRED):
        code = "provider_misconfigured"
        log.error("mpesa_request_rejected", op="B2C", status=status, code=error.code, message=error.message)
    else:
        code = "payout_declined"
    return payout_failed(code, f"M-Pesa refused the payout: {error.code} {error.message}"[:1000])


@dataclass(frozen=True)
class B2CResult:
    conversation_id: str
    payout_id: str
    result_type: str
    result_code: str
    result_desc: str
    amount: int | None  # TransactionAmount, minor units
    receipt: str | None  # TransactionReceipt


def is_b2c_result(result: Any) -> bool:
    """A Result that names one of our payouts (OriginatorConversationID po_…); a reversal's names
    Daraja's own originator id."""
    return isinstance(result, dict) and is_valid(str(result.get("OriginatorConversationID") or ""), "po")


def parse_result(result: dict[str, Any]) -> B2CResult:
    conversation, code = result.get("ConversationID"), result.get("ResultCode")
    if not isinstance(conversation, str) or not conversation or code is None or isinstance(code, bool):
        raise WebhookPayloadError("Result needs ConversationID and ResultCode")
    params = parameters(result.get("ResultParameters"))
    receipt = params.get("TransactionReceipt") or result.get("TransactionID")
    return B2CResult(
        conversation_id=conversation,
        payout_id=str(result["OriginatorConversationID"]),
        result_type=str(result.get("ResultType", "0")),
        result_code=str(code),
        result_desc=str(result.get("ResultDesc") or ""),
        amount=minor(params.get("TransactionAmount")),
        receipt=str(receipt) if receipt else None,
    )


def payout_result(outcome: B2CResult) -> PayoutResult:
    ref = outcome.conversation_id
    if outcome.result_type != "0":  # 1: waiting for further messages
        return PayoutResult(status="pending", provider_reference=ref)
    if outcome.result_code == "0":
        return PayoutResult(
            status="succeeded",
            provider_reference=ref,
            amount=outcome.amount,
            currency=tf.CURRENCY if outcome.amount is not None else None,
        )
    code, message = B2C_CODES.get(outcome.result_code, ("payout_failed", "M-Pesa did not pay it out."))
    return PayoutResult(
        status="failed",
        provider_reference=ref,
        failure_code=code,
        failure_message=f"{message} (M-Pesa: {outcome.result_code} {outcome.result_desc})".strip()[:1000],
    )


def interpret(payload: dict[str, Any]) -> WebhookEvent:
    outcome = parse_result(payload["Result"])
    result = payout_result(outcome)
    return WebhookEvent(
        event_id=f"b2c:{outcome.conversation_id}:{outcome.result_type}:{outcome.result_code}",
        event_type=f"b2c_result.{result.status}",
        payload=payload,
        payout=PayoutUpdate(
            result=result, payout_id=outcome.payout_id, provider_reference=outcome.conversation_id
        ),
    )
