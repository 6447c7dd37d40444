"""PayPal Orders v2 for the contract suite: PayPal is the stateful fake in tests/fakes/paypal.py.

The customer step is PayPal's approval page (the order's payer-action link); the payer's approval is
the fake's `settle`, after which the gateway captures. A decline is PayPal refusing the order (422).
"""

from __future__ import annotations

from typing import Any

import respx

from drivers.base import Driver
from fakes.paypal import (
    API,
    CLIENT_ID,
    CLIENT_SECRET,
    WEBHOOK_ID,
    FakePaypal,
    Order,
    capture_resource,
    event,
    value,
)
from gateway.providers.paypal.settings import PaypalSettings


class PaypalDriver(Driver):
    name = "paypal"
    currency = "USD"
    decline_code = "payment_rejected"

    def __init__(self) -> None:
        self.fake = FakePaypal()

    def settings(self) -> PaypalSettings:
        return PaypalSettings(
            test={
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "webhook_id": WEBHOOK_ID,
                "base_url": API,
            },
            reconcile_after_seconds=10**7,
        )

    def mock_create(self, router: respx.Router, scenario: str) -> None:
        self.fake.refuse_orders = scenario == "decline"
        self.fake.install(router, timeout=scenario == "timeout")

    def mock_fetch(self, router: respx.Router, payment: dict[str, Any], status: str) -> None:
        self.fake.refuse_orders = False
        self.fake.install(router)
        # Succeeded: the payer approved, and the gateway captures when it reads the order.
        theirs = {"succeeded": "APPROVED", "failed": "VOIDED", "requires_action": "PAYER_ACTION_REQUIRED"}
        self.fake.settle(payment, theirs[status])

    def mock_refund(self, router: respx.Router, payment: dict[str, Any], amount: int) -> None:
        self.fake.install(router)

    def success_webhook(
        self,
        payment: dict[str, Any],
        *,
        amount: int | None = None,
        currency: str | None = None,
        event_id: str | None = None,
        reference: str | None = None,
    ) -> tuple[dict[str, str], bytes]:
        if reference is not None:
            ghost = Order(
                reference,
                {
                    "reference_id": reference,
                    "custom_id": reference,
                    "amount": {"currency_code": "USD", "value": "50.00"},
                },
                status="APPROVED",
            )
            return self.fake.deliver(
                event("CHECKOUT.ORDER.APPROVED", "checkout-order", ghost.body(), event_id)
            )
        order = self.fake.settle(payment, "APPROVED")
        if amount is None and currency is None:
            # The payer approved: the gateway reads the order and captures it.
            return self.fake.deliver(
                event("CHECKOUT.ORDER.APPROVED", "checkout-order", order.body(), event_id)
            )
        # Captured for other money than ours (by someone else): the capture says so.
        cur = currency or payment["currency"]
        order.captured(value(payment["amount"] if amount is None else amount, cur), cur)
        return self.fake.deliver(
            event("PAYMENT.CAPTURE.COMPLETED", "capture", capture_resource(order), event_id)
        )

    def refund_webhook(
        self, payment: dict[str, Any], refund: dict[str, Any]
    ) -> tuple[dict[str, str], bytes] | None:
        kept = next(r for r in self.fake.refunds.values() if r["custom_id"] == refund["id"])
        return self.fake.deliver(event("PAYMENT.CAPTURE.REFUNDED", "refund", kept))

    def method_details(self, payment: dict[str, Any], via: str) -> dict[str, Any] | None:
        # A PayPal wallet is neither a card nor mobile money: the gateway shows no details.
        return None

    def forge(self, headers: dict[str, str], body: bytes) -> dict[str, str]:
        sig = headers["paypal-transmission-sig"]
        return {**headers, "paypal-transmission-sig": ("A" if sig[0] != "A" else "B") + sig[1:]}


DRIVER = PaypalDriver()
