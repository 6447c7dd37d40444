"""The sandbox's payout test values and its payout webhook format, as pure functions.

A payout's scenario is chosen by the last four digits of its destination (the phone's, or the bank
account number's), as docs/providers/sandbox.md lists them; any other ending succeeds at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.providers.base import WebhookEvent, WebhookPayloadError
from gateway.providers.payouts import PayoutDestination, PayoutResult, PayoutUpdate


@dataclass(frozen=True)
class PayoutScenario:
    # What create_payout does: a status, or an outage ("timeout": the payout exists at the sandbox
    # all the same; "error": the sandbox never received it).
    immediate: str
    # Where it ends once the delay has passed (None: it never does).
    outcome: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None


PAYOUT_SCENARIOS: dict[str, PayoutScenario] = {
    "0000": PayoutScenario("succeeded", "succeeded"),
    "1111": PayoutScenario("pending", "succeeded"),
    "2222": PayoutScenario(
        "failed", "failed", "recipient_invalid", "The recipient's account does not exist."
    ),
    "3333": PayoutScenario("pending", "failed", "account_closed", "The recipient's account is closed."),
    "4444": PayoutScenario("pending", None),
    "5555": PayoutScenario("timeout", "succeeded"),
    "6666": PayoutScenario(
        "error", "failed", "provider_not_found", "The provider never received this payout."
    ),
}
DEFAULT_PAYOUT_SCENARIO = PAYOUT_SCENARIOS["0000"]


def payout_scenario(destination: PayoutDestination) -> PayoutScenario:
    number = destination.phone or destination.account_number or ""
    return PAYOUT_SCENARIOS.get(number[-4:], DEFAULT_PAYOUT_SCENARIO)


def payout_reference_for(payout_id: str) -> str:
    # Derived from our id: the sandbox's idempotency key.
    return "sbxpo_" + payout_id.split("_", 1)[1]


def payout_result(scenario: PayoutScenario, status: str, reference: str) -> PayoutResult:
    failed = status == "failed"
    return PayoutResult(
        status=status,
        provider_reference=reference,
        failure_code=scenario.failure_code if failed else None,
        failure_message=scenario.failure_message if failed else None,
    )


def payout_webhook_payload(
    *,
    event_id: str,
    payout_id: str,
    reference: str,
    scenario: PayoutScenario,
    status: str,
    amount: int,
    currency: str,
    created: int,
) -> dict[str, Any]:
    failed = status == "failed"
    return {
        "id": event_id,
        "type": f"payout.{status}",
        "created": created,
        "data": {
            "object": "payout",
            "reference": reference,
            "payout_id": payout_id,
            "status": status,
            "amount": amount,
            "currency": currency,
            "failure_code": scenario.failure_code if failed else None,
            "failure_message": scenario.failure_message if failed else None,
        },
    }


def interpret_payout(payload: dict[str, Any], data: dict[str, Any]) -> WebhookEvent:
    status = data["status"]
    if status not in ("succeeded", "failed", "pending"):
        raise WebhookPayloadError(f"unknown payout status {status!r}")
    amount, currency = data["amount"], data["currency"]
    if not isinstance(amount, int) or isinstance(amount, bool) or not isinstance(currency, str):
        raise WebhookPayloadError("amount must be an integer and currency a string")
    return WebhookEvent(
        event_id=str(payload["id"]),
        event_type=str(payload["type"]),
        payload=payload,
        payout=PayoutUpdate(
            payout_id=data.get("payout_id"),
            provider_reference=data["reference"],
            result=PayoutResult(
                status=status,
                provider_reference=data["reference"],
                failure_code=data.get("failure_code"),
                failure_message=data.get("failure_message"),
                amount=amount,
                currency=currency,
            ),
        ),
    )
