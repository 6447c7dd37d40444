"""M-Pesa refunds through the Reversal API (docs/providers/mpesa.md), pure: what is checked before a
reversal is asked for, its request body, and what Daraja's synchronous answer means. The outcome
itself only ever arrives later, at the ResultURL (transformers.reversal_result)."""

from __future__ import annotations

from typing import Any

import structlog

from gateway.providers.base import ProviderUnavailable, RefundRequest, RefundResult, refund_failed
from gateway.providers.mpesa import transformers as tf
from gateway.providers.mpesa.settings import Account

log = structlog.get_logger("gateway.providers.mpesa")

RECEIPT_UNKNOWN = (
    "receipt_unknown",
    "The M-Pesa receipt (MpesaReceiptNumber) of this payment is unknown to the gateway (its callback "
    "never arrived); reverse it in the M-Pesa portal.",
)


def refusal(account: Account, request: RefundRequest, *, partial_reversals: bool) -> RefundResult | None:
    """Why this refund cannot be a reversal, before anything is sent; None if it can."""
    if not (account.initiator and account.security_credential):
        return refund_failed(
            "refund_not_supported", f"No M-Pesa reversal initiator is configured for {account.mode} mode."
        )
    if request.amount % tf.KES:
        return refund_failed("amount_not_supported", "M-Pesa reverses whole shillings only.")
    if request.amount != request.payment.amount and not partial_reversals:
        return refund_failed("partial_refund_not_supported", "M-Pesa reverses whole payments only.")
    return None


def body(account: Account, request: RefundRequest, *, receipt: str, result_url: str) -> dict[str, Any]:
    """`POST /mpesa/reversal/v1/request`, with Daraja's own spelling `RecieverIdentifierType`."""
    return {
        "Initiator": account.initiator,
        "SecurityCredential": account.security_credential,
        "CommandID": "TransactionReversal",
        "TransactionID": receipt,
        "Amount": str(request.amount // tf.KES),
        "ReceiverParty": account.shortcode,
        "RecieverIdentifierType": "11",
        "ResultURL": result_url,
        "QueueTimeOutURL": result_url,
        "Remarks": f"Refund {request.refund_id}"[:100],
        "Occasion": request.refund_id[:100],
    }


def answer_result(status: int, data: dict[str, Any], amount: int) -> RefundResult:
    """Daraja's answer to the request: accepted (pending until the Result comes), or refused."""
    conversation = data.get("ConversationID")
    if str(data.get("ResponseCode")) == "0" and isinstance(conversation, str) and conversation:
        return RefundResult(
            status="pending", provider_reference=conversation, amount=amount, currency=tf.CURRENCY
        )
    error = tf.error_of(data)
    if error is None:
        raise ProviderUnavailable(f"mpesa: Reversal answered {status} without a result")
    # Daraja refused the request: no reversal exists, so the refund fails (and its amount is free
    # again) rather than staying pending, since a reversal is never re-sent (idempotent_refunds).
    if error.code in tf.BUSY:
        code = "provider_busy"
    elif error.code in tf.MISCONFIGURED or error.code in (tf.SERVER_ERROR, tf.TOKEN_EXPIRED):
        code = "provider_misconfigured"
        log.error(
            "mpesa_request_rejected", op="Reversal", status=status, code=error.code, message=error.message
        )
    else:
        code = "refund_declined"
    return refund_failed(code, f"M-Pesa refused the reversal: {error.code} {error.message}"[:1000])
