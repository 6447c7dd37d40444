from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from drivers.base import Driver
from gateway.providers.sandbox.settings import SandboxSettings
from support import ACTION_DELAY, SANDBOX_SECRET, signed

# The sandbox's test card of its customer-step scenarios, as its webhooks carry it.
CARD_3DS = {
    "type": "card",
    "brand": "visa",
    "exp_month": 12,
    "exp_year": 2034,
    "funding": "credit",
    "country": "US",
    "last4": "3155",
}


class SandboxDriver(Driver):
    name = "sandbox"
    decline_code = "card_declined"

    def settings(self) -> SandboxSettings:
        # Nothing becomes due for the reconciler unless a test says so (tests/reconciler runs it by hand).
        return SandboxSettings(
            webhook_secret=SANDBOX_SECRET, action_delay_seconds=ACTION_DELAY, reconcile_after_seconds=10**7
        )

    def create_body(self, scenario: str) -> dict[str, Any]:
        method = {
            "action": "pm_action_never",
            "decline": "pm_card_declined",
            "timeout": "pm_provider_timeout",
            "refund_async": "pm_refund_async",
        }[scenario]
        return {**super().create_body(scenario), "payment_method": method}

    def success_webhook(
        self,
        payment: dict[str, Any],
        *,
        amount: int | None = None,
        currency: str | None = None,
        event_id: str | None = None,
        reference: str | None = None,
    ) -> tuple[dict[str, str], bytes]:
        body = json.dumps(
            {
                "id": event_id or f"sbevt_{uuid.uuid4().hex}",
                "type": "payment.succeeded",
                "created": int(datetime.now(UTC).timestamp()),
                "data": {
                    "object": "payment",
                    "reference": reference or payment["provider_reference"],
                    "payment_id": payment["id"] if reference is None else None,
                    "status": "succeeded",
                    "amount": payment["amount"] if amount is None else amount,
                    "currency": currency or payment["currency"],
                    "failure_code": None,
                    "failure_message": None,
                    "payment_method_details": CARD_3DS,
                },
            }
        ).encode()
        return signed(body), body

    def method_details(self, payment: dict[str, Any], via: str) -> dict[str, Any] | None:
        return {
            k: CARD_3DS[k] for k in ("type", "brand", "last4", "exp_month", "exp_year", "funding", "country")
        }

    def forge(self, headers: dict[str, str], body: bytes) -> dict[str, str]:
        sig = headers["webhook-signature"]
        return {
            **headers,
            "webhook-signature": sig[:-6] + ("AAAAA=" if not sig.endswith("AAAAA=") else "BBBBB="),
        }


DRIVER = SandboxDriver()
