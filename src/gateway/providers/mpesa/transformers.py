"""M-Pesa Daraja (STK Push, STK Query, Reversal) as pure functions: our values in, Daraja JSON out, and
Daraja JSON back into our vocabulary. Shapes and codes as docs/providers/mpesa.md records them.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from gateway.providers.base import PaymentResult

CURRENCY = "KES"
OPERATOR = "mpesa"  # payment_method_details.operator
# Minor units per shilling: STK Push takes whole shillings only.
KES = 100
MIN_AMOUNT_KES = 1
MAX_AMOUNT_KES = 250_000  # per transaction (Daraja FAQ)
ACCOUNT_REFERENCE_MAX = 12
TRANSACTION_DESC_MAX = 13
# Safaricom lines: 2547XXXXXXXX and 2541XXXXXXXX (E.164 with the "+").
PHONE_RE = re.compile(r"\+254([17][0-9]{8})")
PHONE_HINT = "a Safaricom number in Kenya, +2547XXXXXXXX or +2541XXXXXXXX"

TOKEN_EXPIRED = "404.001.03"  # Invalid Access Token
BAD_REQUEST = "400.002.02"  # Bad Request - Invalid <field>
SERVER_ERROR = "500.001.1001"  # several: wrong credentials, merchant does not exist, subscriber locked
# Errors that say Daraja is busy or down: the request was not taken; ask again later.
BUSY = frozenset({"500.003.02", "500.003.03", "500.003.1001"})
# Errors that say our configuration is wrong: the base URL, the method, the OAuth grant.
MISCONFIGURED = frozenset({"404.001.01", "405.001", "400.008.01", "400.008.02"})


class MalformedAnswer(Exception):
    """Daraja answered something that is not the documented JSON."""


# --- requests --------------------------------------------------------------------------------------


def phone_problem(phone: str | None) -> str | None:
    """Why STK Push cannot prompt this customer.phone (E.164), or None."""
    if phone is None:
        return f"M-Pesa needs customer.phone: {PHONE_HINT}."
    if PHONE_RE.fullmatch(phone) is None:
        return f"M-Pesa cannot prompt {phone}: it takes {PHONE_HINT}."
    return None


def msisdn(phone: str) -> str:
    """E.164 to Daraja's PartyA/PhoneNumber format: +254712345678 -> 254712345678."""
    m = PHONE_RE.fullmatch(phone)
    if m is None:
        raise ValueError(phone_problem(phone))
    return "254" + m.group(1)


def amount_problem(amount: int, currency: str) -> tuple[str, str] | None:
    """Why STK Push cannot ask for this amount (minor units): (failure code, message), or None."""
    if currency != CURRENCY:
        return "currency_not_supported", f"M-Pesa takes only KES, not {currency}."
    if amount % KES:
        return (
            "amount_not_supported",
            f"M-Pesa takes whole shillings only; {amount} is KES {amount // KES}.{amount % KES:02d}.",
        )
    if amount // KES < MIN_AMOUNT_KES:
        return "amount_too_small", f"M-Pesa takes at least KES {MIN_AMOUNT_KES}."
    if amount // KES > MAX_AMOUNT_KES:
        return "amount_too_large", f"M-Pesa takes at most KES {MAX_AMOUNT_KES:,} per payment."
    return None


def timestamp(now: datetime, utc_offset_minutes: int) -> str:
    """Daraja's Timestamp, YYYYMMDDHHmmss, in local time at the offset (EAT, +180, by default)."""
    return now.astimezone(timezone(timedelta(minutes=utc_offset_minutes))).strftime("%Y%m%d%H%M%S")


def password(shortcode: str, passkey: str, ts: str) -> str:
    """base64(BusinessShortCode + Passkey + Timestamp), plain concatenation of the UTF-8 text."""
    return base64.b64encode(f"{shortcode}{passkey}{ts}".encode()).decode()


def _alnum(text: str) -> str:
    return "".join(ch for ch in text if ch.isascii() and ch.isalnum())


def account_reference(reference: str | None, payment_id: str) -> str:
    """AccountReference (shown to the customer, at most 12 alphanumerics): the merchant's order
    reference, else the random end of our payment id."""
    ref = _alnum(reference or "")[:ACCOUNT_REFERENCE_MAX]
    return ref or payment_id.rsplit("_", 1)[-1][-ACCOUNT_REFERENCE_MAX:].upper()


def transaction_desc(description: str | None) -> str:
    """TransactionDesc (at most 13 characters): the description's first letters, digits and spaces."""
    text = "".join(ch for ch in (description or "") if ch.isascii() and (ch.isalnum() or ch == " "))
    return " ".join(text.split())[:TRANSACTION_DESC_MAX].strip() or "Payment"


def stk_push_body(
    *,
    shortcode: str,
    passkey: str,
    ts: str,
    transaction_type: str,
    till_number: str | None,
    amount: int,
    phone: str,
    callback_url: str,
    reference: str | None,
    description: str | None,
    payment_id: str,
) -> dict[str, Any]:
    """`POST /mpesa/stkpush/v1/processrequest`: field types as in Daraja's own sample, Amount a
    whole-shilling integer."""
    party = msisdn(phone)
    party_b = till_number if transaction_type == "CustomerBuyGoodsOnline" else shortcode
    if party_b is None:
        raise ValueError("CustomerBuyGoodsOnline needs a till number")
    return {
        "BusinessShortCode": int(shortcode),
        "Password": password(shortcode, passkey, ts),
        "Timestamp": ts,
        "TransactionType": transaction_type,
        "Amount": amount // KES,
        "PartyA": party,
        "PartyB": party_b,
        "PhoneNumber": party,
        "CallBackURL": callback_url,
        "AccountReference": account_reference(reference, payment_id),
        "TransactionDesc": transaction_desc(description),
    }


def stk_query_body(*, shortcode: str, passkey: str, ts: str, checkout_request_id: str) -> dict[str, Any]:
    """`POST /mpesa/stkpushquery/v1/query`."""
    return {
        "BusinessShortCode": shortcode,
        "Password": password(shortcode, passkey, ts),
        "Timestamp": ts,
        "CheckoutRequestID": checkout_request_id,
    }


def prompt(phone: str, amount: int) -> dict[str, Any]:
    """next_action for a payment waiting for the customer's PIN."""
    return {
        "type": "mobile_money_prompt",
        "mobile_money_prompt": {
            "phone": phone,
            "message": f"Enter your M-Pesa PIN on the prompt sent to {phone} to pay KES {amount // KES:,}.",
        },
    }


# --- answers ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DarajaError:
    """Daraja's error body: {"requestId", "errorCode", "errorMessage"}."""

    code: str
    message: str


def error_of(data: dict[str, Any]) -> DarajaError | None:
    code = data.get("errorCode")
    if code is None:
        return None
    return DarajaError(str(code), str(data.get("errorMessage") or ""))


def token_of(data: Any) -> tuple[str, int]:
    """`GET /oauth/v1/generate` -> (access_token, expires_in seconds); expires_in may be a string."""
    try:
        token, expires_in = data["access_token"], int(data["expires_in"])
    except (KeyError, TypeError, ValueError) as e:
        raise MalformedAnswer(f"no access_token/expires_in: {e}") from e
    if not isinstance(token, str) or not token or expires_in <= 0:
        raise MalformedAnswer("empty access_token or expires_in")
    return token, expires_in


@dataclass(frozen=True)
class PushAccepted:
    checkout_request_id: str
    merchant_request_id: str | None


def push_accepted(data: dict[str, Any]) -> PushAccepted | None:
    """The STK Push answer: accepted for processing (ResponseCode "0"; not yet paid), else None."""
    if str(data.get("ResponseCode")) != "0" or not isinstance(data.get("CheckoutRequestID"), str):
        return None
    merchant = data.get("MerchantRequestID")
    return PushAccepted(data["CheckoutRequestID"], merchant if isinstance(merchant, str) else None)


def push_refusal(error: DarajaError) -> PaymentResult | None:
    """A push Daraja refuses for this customer (a decline, 402), or None when the refusal is ours to fix."""
    message = error.message.lower()
    if error.code == SERVER_ERROR and "lock subscriber" in message:
        return _failed(
            "customer_busy",
            "The customer has another M-Pesa transaction in progress; try again in a minute.",
            error.message,
        )
    if error.code == BAD_REQUEST and ("phonenumber" in message or "partya" in message):
        return _failed("invalid_phone", "M-Pesa refused the customer's phone number.", error.message)
    return None


# ResultCode -> (failure_code, message) for STK Push callbacks and STK Query (the callback table and the codes
# reported in practice). 0 is success; every other code is a terminal failure.
RESULT_CODES: dict[str, tuple[str, str]] = {
    "1": ("insufficient_funds", "The customer's M-Pesa balance is insufficient."),
    "2": ("amount_too_small", "The amount is below M-Pesa's minimum (KES 1)."),
    "3": ("amount_too_large", "The amount is above M-Pesa's maximum per transaction."),
    "4": ("limit_exceeded", "The payment would exceed the customer's daily M-Pesa limit."),
    "8": ("merchant_limit_exceeded", "The payment would exceed the PayBill or Till's maximum balance."),
    "17": (
        "duplicate_transaction",
        "The same amount was just asked of this customer; M-Pesa refuses a repeat within 2 minutes.",
    ),
    "26": ("provider_busy", "M-Pesa was busy; try again."),
    "1001": ("customer_busy", "The customer has another M-Pesa transaction in progress."),
    "1019": ("expired", "The M-Pesa prompt expired before the customer answered."),
    "1025": ("prompt_failed", "M-Pesa could not send the prompt to the customer's phone."),
    "9999": ("prompt_failed", "M-Pesa could not send the prompt to the customer's phone."),
    "1031": ("customer_canceled", "The customer canceled the M-Pesa prompt."),
    "1032": ("customer_canceled", "The customer canceled the M-Pesa prompt."),
    "1037": ("timeout", "The customer's phone could not be reached, or the customer did not answer."),
    "2001": ("incorrect_pin", "The customer entered a wrong M-Pesa PIN."),
    "2028": ("transaction_not_permitted", "M-Pesa does not permit this transaction type for the shortcode."),
    "SFC_IC0003": ("transaction_not_permitted", "M-Pesa does not know the receiving shortcode or till."),
    "8006": ("account_locked", "The M-Pesa security credential is locked."),
}


def _failed(code: str, message: str, desc: str | None) -> PaymentResult:
    detail = f"{message} (M-Pesa: {desc})" if desc else message
    return PaymentResult(status="failed", failure_code=code, failure_message=detail[:1000])


def stk_result(
    result_code: str,
    result_desc: str | None,
    checkout_request_id: str,
    *,
    pending_codes: frozenset[str] = frozenset(),
    next_action: dict[str, Any] | None = None,
) -> PaymentResult:
    """A ResultCode (callback or STK Query) in our terms."""
    if result_code == "0":
        return PaymentResult(status="succeeded", provider_reference=checkout_request_id)
    if result_code in pending_codes:
        return PaymentResult(
            status="requires_action", provider_reference=checkout_request_id, next_action=next_action
        )
    code, message = RESULT_CODES.get(result_code, ("payment_failed", "M-Pesa did not complete the payment."))
    failed = _failed(code, message, f"{result_code} {result_desc or ''}".strip())
    return PaymentResult(
        status="failed",
        provider_reference=checkout_request_id,
        failure_code=failed.failure_code,
        failure_message=failed.failure_message,
    )


def query_result(
    data: dict[str, Any],
    checkout_request_id: str,
    *,
    pending_error_codes: frozenset[str],
    pending_result_codes: frozenset[str],
    next_action: dict[str, Any] | None,
) -> PaymentResult | None:
    """An STK Query answer in our terms; None when it is neither a result nor "still processing"."""
    error = error_of(data)
    if error is not None:
        if error.code in pending_error_codes:
            return PaymentResult(
                status="requires_action", provider_reference=checkout_request_id, next_action=next_action
            )
        return None
    if str(data.get("ResponseCode")) != "0" or data.get("ResultCode") is None:
        return None
    return stk_result(
        str(data["ResultCode"]),
        str(data.get("ResultDesc") or ""),
        checkout_request_id,
        pending_codes=pending_result_codes,
        next_action=next_action,
    )
