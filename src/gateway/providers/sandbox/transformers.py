"""The sandbox's test values and its webhook format, as pure functions.

A payment's `payment_method` picks the scenario (see README, "Sandbox test values").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.providers.base import PaymentResult, RefundResult, WebhookEvent, WebhookPayloadError
from gateway.providers.details import Card
from gateway.providers.sandbox.payout_values import interpret_payout


@dataclass(frozen=True)
class Scenario:
    # What create answers: a status, or an outage of the provider ("error", "timeout").
    immediate: str
    # Where the payment ends once the customer has acted (None: it never does).
    outcome: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    # How refunds of the payment go: succeeded or failed at once, or pending and then settled by a
    # webhook ("async_succeeded", "async_failed"); "webhook_first" settles by webhook before answering.
    refund: str = "succeeded"
    # The test card the scenario is paid with (Stripe's test numbers' last four digits), shown once the
    # payment has succeeded or failed, so merchants can build receipts in test mode.
    last4: str = "4242"


# Every sandbox card: a Visa credit card issued in the US, valid until the end of 2034.
SANDBOX_CARD = {"brand": "visa", "exp_month": 12, "exp_year": 2034, "funding": "credit", "country": "US"}
REFUND_FAILURE = ("refund_declined", "The provider could not return the money to the customer.")

SCENARIOS: dict[str, Scenario] = {
    "pm_success": Scenario("succeeded", "succeeded"),
    "pm_card_declined": Scenario("failed", "failed", "card_declined", "The card was declined.", last4="0002"),
    "pm_insufficient_funds": Scenario(
        "failed", "failed", "insufficient_funds", "The account has insufficient funds.", last4="9995"
    ),
    "pm_action_success": Scenario("requires_action", "succeeded", last4="3155"),
    "pm_action_failure": Scenario(
        "requires_action",
        "failed",
        "authentication_failed",
        "The customer failed authentication.",
        last4="3155",
    ),
    "pm_action_never": Scenario("requires_action", None, last4="3155"),
    # The provider processes the payment but its answer is lost: sync finds it succeeded.
    "pm_provider_error": Scenario("error", "succeeded"),
    "pm_provider_timeout": Scenario("timeout", "succeeded"),
    "pm_refund_failure": Scenario("succeeded", "succeeded", refund="failed"),
    "pm_refund_async": Scenario("succeeded", "succeeded", refund="async_succeeded"),
    "pm_refund_async_failure": Scenario("succeeded", "succeeded", refund="async_failed"),
    "pm_refund_webhook_first": Scenario("succeeded", "succeeded", refund="webhook_first"),
}
DEFAULT_METHOD = "pm_success"


def scenario_for(payment_method: str | None) -> Scenario | None:
    return SCENARIOS.get(payment_method or DEFAULT_METHOD)


def reference_for(payment_id: str) -> str:
    # Derived from our id, so a retried create finds the same sandbox object (provider-side idempotency).
    return "sbx_" + payment_id.split("_", 1)[1]


def refund_reference_for(refund_id: str) -> str:
    return "sbxre_" + refund_id.split("_", 1)[1]


def refund_outcome(scenario: Scenario) -> str:
    """Where a refund of this scenario ends."""
    return "failed" if scenario.refund in ("failed", "async_failed") else "succeeded"


def refund_result(
    scenario: Scenario, status: str, reference: str, amount: int, currency: str
) -> RefundResult:
    failed = status == "failed"
    return RefundResult(
        status=status,
        provider_reference=reference,
        failure_code=REFUND_FAILURE[0] if failed else None,
        failure_message=REFUND_FAILURE[1] if failed else None,
        amount=amount,
        currency=currency,
    )


def refund_webhook_payload(
    *,
    event_id: str,
    refund_id: str,
    reference: str,
    payment_id: str,
    status: str,
    amount: int,
    currency: str,
    created: int,
) -> dict[str, Any]:
    failed = status == "failed"
    return {
        "id": event_id,
        "type": f"refund.{status}",
        "created": created,
        "data": {
            "object": "refund",
            "reference": reference,
            "refund_id": refund_id,
            "payment_id": payment_id,
            "status": status,
            "amount": amount,
            "currency": currency,
            "failure_code": REFUND_FAILURE[0] if failed else None,
            "failure_message": REFUND_FAILURE[1] if failed else None,
        },
    }


def card_json(scenario: Scenario, status: str) -> dict[str, Any] | None:
    """The card as the sandbox's webhooks carry it: known once the charge was attempted."""
    if status not in ("succeeded", "failed"):
        return None
    return {"type": "card", **SANDBOX_CARD, "last4": scenario.last4}


def _card(data: Any) -> Card | None:
    if not isinstance(data, dict) or data.get("type") != "card":
        return None
    return Card.of(
        brand=data.get("brand"),
        number=data.get("last4"),
        exp_month=data.get("exp_month"),
        exp_year=data.get("exp_year"),
        funding=data.get("funding"),
        country_code=data.get("country"),
    )


def result(
    scenario: Scenario,
    status: str,
    reference: str,
    amount: int,
    currency: str,
    next_action: dict[str, Any] | None = None,
) -> PaymentResult:
    failed = status == "failed"
    return PaymentResult(
        status=status,
        provider_reference=reference,
        next_action=next_action,
        failure_code=scenario.failure_code if failed else None,
        failure_message=scenario.failure_message if failed else None,
        amount=amount,
        currency=currency,
        payment_method_details=_card(card_json(scenario, status)),
    )


def webhook_payload(
    *,
    event_id: str,
    payment_id: str,
    reference: str,
    status: str,
    amount: int,
    currency: str,
    scenario: Scenario,
    created: int,
) -> dict[str, Any]:
    failed = status == "failed"
    return {
        "id": event_id,
        "type": f"payment.{status}",
        "created": created,
        "data": {
            "object": "payment",
            "reference": reference,
            "payment_id": payment_id,
            "status": status,
            "amount": amount,
            "currency": currency,
            "failure_code": scenario.failure_code if failed else None,
            "failure_message": scenario.failure_message if failed else None,
            "payment_method_details": card_json(scenario, status),
        },
    }


def _interpret_refund(payload: dict[str, Any], data: dict[str, Any]) -> WebhookEvent:
    status = data["status"]
    if status not in ("succeeded", "failed", "pending"):
        raise WebhookPayloadError(f"unknown refund status {status!r}")
    amount, currency = data["amount"], data["currency"]
    if not isinstance(amount, int) or isinstance(amount, bool) or not isinstance(currency, str):
        raise WebhookPayloadError("amount must be an integer and currency a string")
    return WebhookEvent(
        event_id=str(payload["id"]),
        event_type=str(payload["type"]),
        payload=payload,
        payment_id=data.get("payment_id"),
        refund_id=data.get("refund_id"),
        refund_reference=data["reference"],
        refund_result=RefundResult(
            status=status,
            provider_reference=data["reference"],
            failure_code=data.get("failure_code"),
            failure_message=data.get("failure_message"),
            amount=amount,
            currency=currency,
        ),
    )


def interpret(payload: dict[str, Any]) -> WebhookEvent:
    try:
        data = payload["data"]
        if data.get("object") == "refund":
            return _interpret_refund(payload, data)
        if data.get("object") == "payout":
            return interpret_payout(payload, data)
        status = data["status"]
        if status not in ("succeeded", "failed", "canceled", "processing", "requires_action"):
            raise WebhookPayloadError(f"unknown status {status!r}")
        amount, currency = data["amount"], data["currency"]
        if not isinstance(amount, int) or isinstance(amount, bool) or not isinstance(currency, str):
            raise WebhookPayloadError("amount must be an integer and currency a string")
        return WebhookEvent(
            event_id=str(payload["id"]),
            event_type=str(payload["type"]),
            payload=payload,
            payment_id=data.get("payment_id"),
            provider_reference=data["reference"],
            result=PaymentResult(
                status=status,
                provider_reference=data["reference"],
                failure_code=data.get("failure_code"),
                failure_message=data.get("failure_message"),
                amount=amount,
                currency=currency,
                payment_method_details=_card(data.get("payment_method_details")),
            ),
        )
    except (KeyError, TypeError) as e:
        raise WebhookPayloadError(f"missing or malformed field: {e}") from e
