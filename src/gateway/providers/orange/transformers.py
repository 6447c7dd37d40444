"""Orange Money Web Payment as pure functions: our requests to its JSON, its JSON to our results.

Shapes follow docs/providers/orange.md. Token: `{"token_type": "Bearer", "access_token", "expires_in"}`
(`expires_in` a number or a numeric string). Web payment (HTTP 201): `{"status": 201, "message": "OK",
"pay_token", "payment_url", "notif_token"}`. Transaction status: `{"status": "INITIATED" | "PENDING" |
"EXPIRED" | "SUCCESS" | "FAILED", "order_id", "txnid"}`. Notification to notif_url: `{"status",
"notif_token", "txnid"}`, which proves itself only by its notif_token (the one the web payment's answer
carried), and is then only a hint: the status query is what is applied.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any, Literal

import orjson

from gateway.kit.money import exponent, to_major_string
from gateway.kit.signing import constant_time_equal
from gateway.providers.base import (
    PaymentRequest,
    PaymentResult,
    WebhookEvent,
    WebhookPayloadError,
    WebhookVerificationError,
)
from gateway.providers.details import MobileMoney

OPERATOR = "orange"  # payment_method_details.operator
# The keys of what the payment keeps (PaymentResult.private): the pay_token the status query needs,
# and the notif_token's digest (the token itself is never stored: a digest is all a comparison needs).
PAY_TOKEN = "pay_token"
NOTIF_DIGEST = "notif_token_sha256"
# Orange's statuses (docs/providers/orange.md) to ours.
STATUSES: Mapping[str, str] = {
    "INITIATED": "requires_action",
    "PENDING": "requires_action",
    "SUCCESS": "succeeded",
    "FAILED": "failed",
    "EXPIRED": "expired",
}
REJECTED = "payment_rejected"
FAILED = "payment_failed"
# The order ids we give Orange are our payment ids (pay_…, pay_…_2): a notification's URL names one.
ORDER_ID = re.compile(r"[A-Za-z0-9_-]{1,100}")


class MalformedAnswer(ValueError):
    """Orange's JSON is not shaped as documented."""


# --- requests ----------------------------------------------------------------------------------------


def amount_value(amount: int, currency: str, unit: Literal["major", "minor"]) -> int | orjson.Fragment:
    """Minor units as Orange's `amount` number, exactly: XOF/XAF/GNF have no decimals, so 5000 is 5000
    either way; a two-decimal currency in major units is written as its exact literal (10.50)."""
    if unit == "minor" or exponent(currency) == 0:
        return amount
    return orjson.Fragment(to_major_string(amount, currency).encode())


def webpayment_body(
    request: PaymentRequest,
    *,
    merchant_key: str,
    currency: str,
    amount: int | orjson.Fragment,
    lang: str,
    return_url: str,
    notif_url: str,
) -> dict[str, Any]:
    """`POST .../webpayment`: our payment id (attempt key) is the order_id; the customer goes back to
    the same URL whether they paid or cancelled (the gateway asks Orange which it was)."""
    return {
        "merchant_key": merchant_key,
        "currency": currency,
        "order_id": request.payment_id,
        "amount": amount,
        "return_url": return_url,
        "cancel_url": return_url,
        "notif_url": notif_url,
        "lang": lang,
        "reference": (request.reference or request.payment_id)[:100],
    }


def status_body(order_id: str, amount: int | orjson.Fragment, pay_token: str) -> dict[str, Any]:
    """`POST .../transactionstatus`."""
    return {"order_id": order_id, "amount": amount, "pay_token": pay_token}


# --- answers -----------------------------------------------------------------------------------------


def access_token(body: Any) -> tuple[str, int]:
    """`POST /oauth/v3/token`'s answer: the token and its lifetime in seconds."""
    if not isinstance(body, dict):
        raise MalformedAnswer("the token answer is not a JSON object")
    token, expires = body.get("access_token"), body.get("expires_in")
    if not isinstance(token, str) or not token:
        raise MalformedAnswer("the token answer has no access_token")
    if isinstance(expires, str) and expires.isascii() and expires.isdigit():
        expires = int(expires)
    if isinstance(expires, bool) or not isinstance(expires, int) or expires <= 0:
        raise MalformedAnswer("the token answer has no expires_in")
    return token, expires


def error_message(body: Any) -> str:
    """A short reason from an error answer: Orange's `description` says more than its `message`
    ("Bad Request"), then OAuth's `error_description`."""
    if not isinstance(body, dict):
        return ""
    for key in ("description", "message", "error_description", "error"):
        value = body.get(key)
        if isinstance(value, str) and value:
            return value[:300]
    return ""


def digest(notif_token: str) -> str:
    return hashlib.sha256(notif_token.encode()).hexdigest()


def opened(body: Any, return_url: str) -> PaymentResult:
    """The web payment's answer: the customer's next step is Orange's payment page; what must be kept
    (pay_token, the notif_token's digest) goes to `private`, never to the result's public fields."""
    if not isinstance(body, dict):
        raise MalformedAnswer("the web payment answer is not a JSON object")
    pay_token, url, notif_token = body.get("pay_token"), body.get("payment_url"), body.get("notif_token")
    if not isinstance(pay_token, str) or not pay_token:
        raise MalformedAnswer("the web payment answer has no pay_token")
    if not isinstance(notif_token, str) or not notif_token:
        raise MalformedAnswer("the web payment answer has no notif_token")
    if not isinstance(url, str) or not url.startswith("https://"):
        raise MalformedAnswer("the web payment answer has no https payment_url")
    return PaymentResult(
        status="requires_action",
        next_action={"type": "redirect_to_url", "redirect_to_url": {"url": url, "return_url": return_url}},
        private={PAY_TOKEN: pay_token, NOTIF_DIGEST: digest(notif_token)},
    )


def status_result(body: Any, order_id: str) -> PaymentResult:
    """The transaction status answer in our terms. It names no money: the query named ours (order_id,
    amount, pay_token), so a SUCCESS is the payment of exactly that amount."""
    if not isinstance(body, dict):
        raise MalformedAnswer("the status answer is not a JSON object")
    named = body.get("order_id")
    if named is not None and named != order_id:
        raise MalformedAnswer("the status answer names another order_id")
    raw = body.get("status")
    status = STATUSES.get(raw) if isinstance(raw, str) else None
    if status is None:
        raise MalformedAnswer(f"unknown transaction status {str(raw)[:40]!r}")
    txnid = body.get("txnid")
    receipt = txnid if isinstance(txnid, str) and txnid else None
    if status == "failed":
        return PaymentResult(
            status="failed",
            provider_reference=receipt,
            failure_code=FAILED,
            failure_message="Orange Money reported the payment as failed.",
        )
    if status == "succeeded":
        return PaymentResult(
            status="succeeded",
            provider_reference=receipt,
            payment_method_details=MobileMoney.of(operator=OPERATOR, receipt=receipt),
        )
    return PaymentResult(status=status)


# --- notifications -----------------------------------------------------------------------------------


def notification_authentic(proof: str | None, private: Mapping[str, Any] | None) -> bool:
    """capabilities.check_notification: the notif_token a notification carries against the digest the
    payment keeps, in constant time. Nothing kept (no such payment, an earlier attempt, a create whose
    answer never came) authenticates nothing."""
    kept = (private or {}).get(NOTIF_DIGEST)
    if not proof or not isinstance(kept, str):
        return False
    return constant_time_equal(digest(proof), kept)


def stored_payload(body: Mapping[str, Any], order_id: str) -> tuple[dict[str, Any], str]:
    """(what is stored of a notification, its notif_token): the token is never stored or logged; the
    order id comes from the notif_url's path, where the gateway put it."""
    if not ORDER_ID.fullmatch(order_id):
        raise WebhookPayloadError("the notification URL names no order")
    named = body.get("order_id")
    if named is not None and named != order_id:
        raise WebhookPayloadError("the notification names another order than its URL")
    token = body.get("notif_token")
    if not isinstance(token, str) or not token:
        raise WebhookVerificationError("the notification carries no notif_token")
    payload = {k: v for k, v in body.items() if k != "notif_token"}
    payload["order_id"] = order_id
    return payload, token


def interpret(payload: dict[str, Any]) -> WebhookEvent:
    """A stored notification in our terms: only a hint (capabilities.query_before_acting), so its
    result says no more than "look now". A status we do not know moves nothing."""
    order_id, raw, txnid = payload.get("order_id"), payload.get("status"), payload.get("txnid")
    if not isinstance(order_id, str) or not order_id or not isinstance(raw, str) or not raw:
        raise WebhookPayloadError("an Orange notification has a string `status` and our `order_id`")
    receipt = txnid if isinstance(txnid, str) and txnid else "-"
    status = STATUSES.get(raw)
    return WebhookEvent(
        # Orange sends no event id: a repeat is the same order, transaction and status again.
        event_id=f"{order_id}:{receipt}:{raw}"[:255],
        event_type=f"webpayment.{raw.lower()}"[:64],
        payload=payload,
        payment_id=order_id,
        result=PaymentResult(status=status) if status is not None else None,
    )
