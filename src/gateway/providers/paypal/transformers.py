"""PayPal Orders v2 shapes, pure: amounts as PayPal writes them, the order and refund bodies we send,
orders, captures and refunds in our terms, and webhook events (docs/providers/paypal.md)."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from typing import Any

from gateway.kit.money import CURRENCY_EXPONENTS, from_major, to_major_string
from gateway.providers.base import (
    PaymentRequest,
    PaymentResult,
    RefundResult,
    WebhookEvent,
    WebhookPayloadError,
    payment_failed,
)


class UnsupportedAmount(ValueError):
    """An amount PayPal cannot take in this currency without changing it (which we never do)."""


class UnexpectedAnswer(ValueError):
    """PayPal answered with a shape docs/providers/paypal.md does not describe."""


# --- amounts ---------------------------------------------------------------------------------------


def amount_value(amount: int, currency: str, zero_decimal: Collection[str]) -> str:
    """Our minor units as PayPal's `value`: a decimal string in major units ("10.50"); whole units
    only for PayPal's zero-decimal currencies (HUF and TWD have two decimals in ISO 4217)."""
    if currency in zero_decimal:
        unit = 10 ** CURRENCY_EXPONENTS[currency]
        whole, rest = divmod(amount, unit)
        if rest:
            raise UnsupportedAmount(
                f"PayPal takes {currency} in whole units only: amount must be a multiple of {unit}"
            )
        return str(whole)
    return to_major_string(amount, currency)


def amount_problem(amount: int, currency: str, zero_decimal: Collection[str]) -> str | None:
    try:
        amount_value(amount, currency, zero_decimal)
    except UnsupportedAmount as e:
        return str(e)
    return None


def money_of(amount: Any) -> tuple[int, str]:
    """PayPal's `{"currency_code", "value"}` in our minor units; ValueError if it is not exact."""
    if not isinstance(amount, Mapping):
        raise UnexpectedAnswer("no amount object")
    currency, value = amount.get("currency_code"), amount.get("value")
    if not isinstance(currency, str) or not isinstance(value, str):
        raise UnexpectedAnswer("amount without currency_code or a string value")
    if currency not in CURRENCY_EXPONENTS:
        # Unknown to us: can never equal a payment's currency, so a mismatch check still fires.
        return 0, currency
    try:
        return from_major(value, currency), currency
    except (ValueError, TypeError) as e:
        raise UnexpectedAnswer(f"amount {value!r} {currency}: {e}") from e


# --- requests --------------------------------------------------------------------------------------


def request_id(key: str, op: str) -> str:
    """PayPal-Request-Id of one operation on one of our objects: stable across our retries, so a
    retry is answered with the first call's result instead of doing it twice."""
    return f"{key}-{op}"


def order_body(
    request: PaymentRequest, zero_decimal: Collection[str], brand_name: str | None
) -> dict[str, Any]:
    unit: dict[str, Any] = {
        "reference_id": request.payment_id,
        "custom_id": request.payment_id,
        "amount": {
            "currency_code": request.currency,
            "value": amount_value(request.amount, request.currency, zero_decimal),
        },
    }
    if request.description:
        unit["description"] = request.description[:127]
    if request.reference:
        unit["invoice_id"] = request.reference[:127]
    context: dict[str, Any] = {"user_action": "PAY_NOW", "shipping_preference": "NO_SHIPPING"}
    if request.return_url:
        context["return_url"] = context["cancel_url"] = request.return_url
    if brand_name:
        context["brand_name"] = brand_name
    body: dict[str, Any] = {
        "intent": "CAPTURE",
        "purchase_units": [unit],
        "payment_source": {"paypal": {"experience_context": context}},
    }
    return body


def refund_body(
    refund_id: str, amount: int, currency: str, zero_decimal: Collection[str], reason: str | None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "amount": {"currency_code": currency, "value": amount_value(amount, currency, zero_decimal)},
        "custom_id": refund_id,
    }
    if reason:
        body["note_to_payer"] = reason[:255]
    return body


def error_issue(body: Any) -> str | None:
    """The first `details[].issue` of a PayPal error body (INSTRUMENT_DECLINED, ...), else its `name`."""
    if not isinstance(body, Mapping):
        return None
    details = body.get("details")
    if isinstance(details, list) and details and isinstance(details[0], Mapping):
        issue = details[0].get("issue")
        if isinstance(issue, str):
            return issue
    name = body.get("name")
    return name if isinstance(name, str) else None


# --- orders ----------------------------------------------------------------------------------------

WAITING = frozenset({"CREATED", "SAVED", "PAYER_ACTION_REQUIRED"})
# Capture statuses: PENDING is money on its way (e.g. an eCheck); refunds do not undo the payment.
CAPTURED = frozenset({"COMPLETED", "PARTIALLY_REFUNDED", "REFUNDED"})
CAPTURE_FAILED = frozenset({"DECLINED", "FAILED"})


def approve_link(order: Mapping[str, Any]) -> str | None:
    """Where the payer approves: `links[rel=payer-action]` (payment_source flows) or `rel=approve`."""
    links = order.get("links")
    for rel in ("payer-action", "approve"):
        for link in links if isinstance(links, list) else []:
            if isinstance(link, Mapping) and link.get("rel") == rel:
                href = link.get("href")
                if isinstance(href, str) and href.startswith("https://"):
                    return href
    return None


def redirect(url: str, return_url: str | None) -> dict[str, Any]:
    return {"type": "redirect_to_url", "redirect_to_url": {"url": url, "return_url": return_url}}


def unit_of(order: Mapping[str, Any]) -> Mapping[str, Any]:
    units = order.get("purchase_units")
    if not isinstance(units, list) or not units or not isinstance(units[0], Mapping):
        raise UnexpectedAnswer("an order without purchase_units")
    unit: Mapping[str, Any] = units[0]
    return unit


def custom_id(order: Mapping[str, Any]) -> str | None:
    """Our payment id as the order carries it (purchase_units[0].custom_id, else reference_id)."""
    try:
        unit = unit_of(order)
    except UnexpectedAnswer:
        return None
    named = unit.get("custom_id") or unit.get("reference_id")
    return named if isinstance(named, str) else None


def capture_of(order: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The order's capture (purchase_units[0].payments.captures[0]), once there is one."""
    payments = unit_of(order).get("payments")
    captures = payments.get("captures") if isinstance(payments, Mapping) else None
    if isinstance(captures, list) and captures and isinstance(captures[0], Mapping):
        capture: Mapping[str, Any] = captures[0]
        return capture
    return None


def order_status(order: Mapping[str, Any]) -> str:
    status = order.get("status")
    if not isinstance(status, str):
        raise UnexpectedAnswer("an order without status")
    return status


def order_result(order: Mapping[str, Any], return_url: str | None = None) -> PaymentResult:
    """An order in our terms, except APPROVED, which the adapter captures before answering."""
    order_id = order.get("id")
    if not isinstance(order_id, str):
        raise UnexpectedAnswer("an order without id")
    status = order_status(order)
    if status in WAITING:
        url = approve_link(order)
        return PaymentResult(
            status="requires_action",
            provider_reference=order_id,
            next_action=redirect(url, return_url) if url is not None else None,
        )
    if status == "VOIDED":
        failed = payment_failed("payment_voided", "PayPal voided the order.")
        return dataclasses.replace(failed, provider_reference=order_id)
    if status == "COMPLETED":
        capture = capture_of(order)
        if capture is None:
            raise UnexpectedAnswer("a COMPLETED order without a capture")
        return capture_result(capture, order_id)
    raise UnexpectedAnswer(f"order status {status!r} is not one this adapter reads")


def capture_result(capture: Mapping[str, Any], order_id: str) -> PaymentResult:
    """A capture (in a COMPLETED order, or a PAYMENT.CAPTURE.* event's resource) in our terms."""
    status = capture.get("status")
    amount, currency = money_of(capture.get("amount"))
    if status in CAPTURED:
        return PaymentResult(
            status="succeeded", provider_reference=order_id, amount=amount, currency=currency
        )
    if status == "PENDING":
        return PaymentResult(status="processing", provider_reference=order_id)
    if status in CAPTURE_FAILED:
        details = capture.get("status_details")
        reason = details.get("reason") if isinstance(details, Mapping) else None
        message = f"PayPal declined the payment ({reason})." if reason else "PayPal declined the payment."
        return PaymentResult(
            status="failed",
            provider_reference=order_id,
            failure_code="payment_declined",
            failure_message=message,
        )
    raise UnexpectedAnswer(f"capture status {status!r}")


# --- refunds ---------------------------------------------------------------------------------------

REFUND_STATUSES = {"COMPLETED": "succeeded", "PENDING": "pending", "CANCELLED": "failed", "FAILED": "failed"}


def refund_result(refund: Mapping[str, Any], currency: str | None) -> RefundResult:
    raw = refund.get("status")
    status = REFUND_STATUSES.get(raw) if isinstance(raw, str) else None
    refund_id = refund.get("id")
    if status is None or not isinstance(refund_id, str):
        raise UnexpectedAnswer(f"a refund with status {raw!r} and id {refund_id!r}")
    amount: int | None = None
    if refund.get("amount") is not None:
        amount, currency = money_of(refund["amount"])
    failed = status == "failed"
    return RefundResult(
        status=status,
        provider_reference=refund_id,
        failure_code="refund_failed" if failed else None,
        failure_message="PayPal could not return the money to the payer." if failed else None,
        amount=amount,
        currency=currency,
    )


# --- webhooks --------------------------------------------------------------------------------------

ORDER_EVENTS = frozenset({"CHECKOUT.ORDER.APPROVED", "CHECKOUT.ORDER.COMPLETED"})
CAPTURE_EVENTS = frozenset(
    {
        "PAYMENT.CAPTURE.COMPLETED",
        "PAYMENT.CAPTURE.PENDING",
        "PAYMENT.CAPTURE.DENIED",
        "PAYMENT.CAPTURE.DECLINED",
    }
)
REFUND_EVENTS = frozenset({"PAYMENT.CAPTURE.REFUNDED"})


def _related_order(capture: Mapping[str, Any]) -> str | None:
    supplementary = capture.get("supplementary_data")
    related = supplementary.get("related_ids") if isinstance(supplementary, Mapping) else None
    order_id = related.get("order_id") if isinstance(related, Mapping) else None
    return order_id if isinstance(order_id, str) else None


def interpret(payload: dict[str, Any]) -> WebhookEvent:
    """A verified event in our terms. Payment events are hints (capabilities.query_before_acting):
    the gateway then reads the order, capturing it if approved; refund events are applied as sent."""
    event_id, event_type, resource = payload.get("id"), payload.get("event_type"), payload.get("resource")
    if not isinstance(event_id, str) or not isinstance(event_type, str) or not isinstance(resource, dict):
        raise WebhookPayloadError("a PayPal event has a string id and event_type and an object resource")
    try:
        if event_type in ORDER_EVENTS:
            order_id = resource.get("id")
            return WebhookEvent(
                event_id=event_id,
                event_type=event_type,
                payload=payload,
                payment_id=custom_id(resource),
                provider_reference=order_id if isinstance(order_id, str) else None,
                result=PaymentResult(status="processing"),
            )
        if event_type in CAPTURE_EVENTS:
            named = resource.get("custom_id")
            return WebhookEvent(
                event_id=event_id,
                event_type=event_type,
                payload=payload,
                payment_id=named if isinstance(named, str) else None,
                provider_reference=_related_order(resource),
                result=PaymentResult(status="processing"),
            )
        if event_type in REFUND_EVENTS:
            named = resource.get("custom_id")
            refund = refund_result(resource, None)
            return WebhookEvent(
                event_id=event_id,
                event_type=event_type,
                payload=payload,
                refund_id=named if isinstance(named, str) else None,
                refund_reference=refund.provider_reference,
                refund_result=refund,
            )
    except (UnexpectedAnswer, ValueError, TypeError) as e:
        raise WebhookPayloadError(f"{event_type}: {e}") from e
    # Everything else (reversals, disputes, vault, ...) is kept in the inbox and ignored.
    return WebhookEvent(event_id=event_id, event_type=event_type, payload=payload)
