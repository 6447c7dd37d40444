"""M-Pesa's callbacks in our terms, pure: STK Push results (`Body.stkCallback`) and Reversal results
(`Result`), shapes and codes as docs/providers/mpesa.md records them. M-Pesa signs nothing: the adapter
checks the callback URL's token and confirms every STK callback by STK Query before acting.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.kit.money import from_provider_number
from gateway.providers.base import PaymentResult, RefundResult, WebhookEvent, WebhookPayloadError
from gateway.providers.mpesa.transformers import CURRENCY, stk_result

# --- callbacks -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StkCallback:
    checkout_request_id: str
    merchant_request_id: str | None
    result_code: str
    result_desc: str
    amount: int | None  # minor units, from CallbackMetadata (success only)
    receipt: str | None  # MpesaReceiptNumber: the M-Pesa transaction id reversals name
    phone: str | None


@dataclass(frozen=True)
class ReversalOutcome:
    conversation_id: str
    originator_conversation_id: str | None
    result_type: str
    result_code: str
    result_desc: str
    amount: int | None


def parameters(container: Any) -> dict[str, Any]:
    """A Result's ResultParameters by Key (B2C and reversal results alike)."""
    return _items(container, "ResultParameter", "Key")


def _items(container: Any, list_key: str, name_key: str) -> dict[str, Any]:
    """Metadata lists looked up by name, not position; entries without a Value are skipped."""
    items = container.get(list_key) if isinstance(container, dict) else None
    if isinstance(items, dict):  # a single entry, not wrapped in a list
        items = [items]
    out: dict[str, Any] = {}
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and "Value" in item and isinstance(item.get(name_key), str):
            out[item[name_key]] = item["Value"]
    return out


def minor(value: Any) -> int | None:
    """A KES amount in a callback as minor units."""
    return _minor(value)


def _minor(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return from_provider_number(value, CURRENCY)
    except (TypeError, ValueError) as e:
        raise WebhookPayloadError(f"amount {value!r} is not a KES amount") from e


def parse_stk_callback(stk: Any) -> StkCallback:
    if not isinstance(stk, dict):
        raise WebhookPayloadError("Body.stkCallback is not an object")
    checkout, code = stk.get("CheckoutRequestID"), stk.get("ResultCode")
    if not isinstance(checkout, str) or not checkout or code is None or isinstance(code, bool):
        raise WebhookPayloadError("stkCallback needs CheckoutRequestID and ResultCode")
    meta = _items(stk.get("CallbackMetadata"), "Item", "Name")
    receipt = meta.get("MpesaReceiptNumber")
    phone = meta.get("PhoneNumber")
    merchant = stk.get("MerchantRequestID")
    return StkCallback(
        checkout_request_id=checkout,
        merchant_request_id=merchant if isinstance(merchant, str) else None,
        result_code=str(code),
        result_desc=str(stk.get("ResultDesc") or ""),
        amount=_minor(meta.get("Amount")),
        receipt=str(receipt) if receipt is not None else None,
        phone=str(phone) if phone is not None else None,
    )


def parse_reversal(result: Any) -> ReversalOutcome:
    if not isinstance(result, dict):
        raise WebhookPayloadError("Result is not an object")
    conversation, code = result.get("ConversationID"), result.get("ResultCode")
    if not isinstance(conversation, str) or not conversation or code is None or isinstance(code, bool):
        raise WebhookPayloadError("Result needs ConversationID and ResultCode")
    params = _items(result.get("ResultParameters"), "ResultParameter", "Key")
    originator = result.get("OriginatorConversationID")
    return ReversalOutcome(
        conversation_id=conversation,
        originator_conversation_id=originator if isinstance(originator, str) else None,
        result_type=str(result.get("ResultType", "0")),
        result_code=str(code),
        result_desc=str(result.get("ResultDesc") or ""),
        amount=_minor(params.get("Amount")),
    )


# Reversal ResultCode -> (failure_code, message).
REVERSAL_CODES: dict[str, tuple[str, str]] = {
    "R000001": ("already_reversed", "M-Pesa says this transaction was already reversed."),
    "R000002": ("invalid_transaction", "M-Pesa does not know the original transaction."),
    "11": ("refund_declined", "The M-Pesa debit party is in an invalid state."),
    "21": ("initiator_not_allowed", "The M-Pesa initiator lacks the Org Reversals Initiator role."),
    "2001": ("initiator_credentials_invalid", "M-Pesa rejected the initiator's security credential."),
    "2006": ("refund_declined", "M-Pesa declined the reversal under an account rule."),
    "2028": ("refund_declined", "M-Pesa does not permit this reversal."),
    "8006": ("initiator_credentials_invalid", "The M-Pesa initiator's security credential is locked."),
    "1": ("insufficient_balance", "The shortcode's balance is too low for the reversal."),
}


def reversal_result(outcome: ReversalOutcome) -> RefundResult:
    ref = outcome.conversation_id
    if outcome.result_type != "0":  # 1: waiting for further messages
        return RefundResult(status="pending", provider_reference=ref)
    if outcome.result_code == "0":
        return RefundResult(
            status="succeeded",
            provider_reference=ref,
            amount=outcome.amount,
            currency=CURRENCY if outcome.amount is not None else None,
        )
    code, message = REVERSAL_CODES.get(outcome.result_code, ("refund_failed", "M-Pesa did not reverse it."))
    return RefundResult(
        status="failed",
        provider_reference=ref,
        failure_code=code,
        failure_message=f"{message} (M-Pesa: {outcome.result_code} {outcome.result_desc})".strip()[:1000],
    )


def _digest(payload: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


def interpret(payload: dict[str, Any]) -> tuple[WebhookEvent, StkCallback | None]:
    """A callback in our terms, and the STK callback's own facts (amount, receipt) when it is one.

    STK callbacks (`Body.stkCallback`) name the payment by CheckoutRequestID; Reversal results
    (`Result`) name the refund by ConversationID. Anything else (a queue timeout notice, whose shape
    is not documented) is stored and ignored: the reconciler settles what it concerns.
    """
    body = payload.get("Body")
    if isinstance(body, dict) and "stkCallback" in body:
        cb = parse_stk_callback(body["stkCallback"])
        result = stk_result(cb.result_code, cb.result_desc, cb.checkout_request_id)
        if result.status == "succeeded" and cb.amount is not None:
            result = PaymentResult(
                status="succeeded",
                provider_reference=cb.checkout_request_id,
                amount=cb.amount,
                currency=CURRENCY,
            )
        event = WebhookEvent(
            event_id=f"stk:{cb.checkout_request_id}:{cb.result_code}",
            event_type=f"stk_callback.{result.status}",
            payload=payload,
            provider_reference=cb.checkout_request_id,
            result=result,
        )
        return event, cb
    if "Result" in payload:
        outcome = parse_reversal(payload["Result"])
        refund = reversal_result(outcome)
        event = WebhookEvent(
            event_id=f"reversal:{outcome.conversation_id}:{outcome.result_type}:{outcome.result_code}",
            event_type=f"reversal_result.{refund.status}",
            payload=payload,
            refund_reference=outcome.conversation_id,
            refund_result=refund,
        )
        return event, None
    return WebhookEvent(event_id=f"unknown:{_digest(payload)}", event_type="unknown", payload=payload), None
