"""What a provider driver tells the contract suite."""

from __future__ import annotations

from typing import Any

import respx
from pydantic import BaseModel


class Driver:
    name: str = ""
    currency = "KES"
    amount = 5_000
    decline_code = "card_declined"
    # False for providers with no customer step, no webhooks and no outages to simulate (cash).
    asynchronous = True
    # False for providers that refund only whole payments (Wave): the refund scenario refunds it all.
    partial_refunds = True
    # False where the provider's notifications carry no currency (M-Pesa: KES only), so a success
    # naming another currency cannot be written.
    names_currency = True
    # False where the provider's notifications name no money at all (Orange: status and txnid only;
    # Airtel: neither its callback nor its status enquiry names amount or currency).
    names_money = True
    # False where the provider has no refund API (Orange's WebPay): a refund is a 422.
    refunds = True
    # False where a notification proves itself only against the payment it names (Orange's
    # notif_token): one naming no payment of ours cannot be authenticated, and is refused.
    stores_unknown_notifications = True
    # False where a status query needs what only the create's answer carried (Orange's pay_token): a
    # create that timed out cannot be asked about, and (its payment page never shown) cannot be paid.
    resolves_timeouts = True

    def settings(self) -> BaseModel | None:
        """The provider's settings group for the test gateway (None: its defaults)."""
        return None

    def create_body(self, scenario: str) -> dict[str, Any]:
        """The POST /v1/payments body; scenario: "action" (customer step), "decline", "timeout"."""
        return {"amount": self.amount, "currency": self.currency, "provider": self.name}

    def mock_create(self, router: respx.Router, scenario: str) -> None:
        """Provider HTTP for creating a payment in `scenario`."""

    def mock_fetch(self, router: respx.Router, payment: dict[str, Any], status: str) -> None:
        """Provider HTTP for a status query that finds the payment in `status` (our vocabulary)."""

    def mock_refund(self, router: respx.Router, payment: dict[str, Any], amount: int) -> None:
        """Provider HTTP for a refund of `amount` that the provider accepts."""

    def success_webhook(
        self,
        payment: dict[str, Any],
        *,
        amount: int | None = None,
        currency: str | None = None,
        event_id: str | None = None,
        reference: str | None = None,
    ) -> tuple[dict[str, str], bytes]:
        """A signed notification that the payment succeeded (optionally naming other money or reference)."""
        raise NotImplementedError

    def refund_webhook(
        self, payment: dict[str, Any], refund: dict[str, Any]
    ) -> tuple[dict[str, str], bytes] | None:
        """A signed notification that the refund succeeded; None if refunds complete synchronously."""
        return None

    def forge(self, headers: dict[str, str], body: bytes) -> dict[str, str]:
        """The same delivery with a signature that does not verify."""
        raise NotImplementedError

    def method_details(self, payment: dict[str, Any], via: str) -> dict[str, Any] | None:
        """The payment_method_details the gateway must show once `payment` succeeded, told by this
        driver's success_webhook (via="webhook") or by a status query after mock_fetch (via="query"):
        the values of the provider's own payloads, in our shape."""
        raise NotImplementedError

    def full_numbers(self, payment: dict[str, Any]) -> list[str]:
        """Full card or phone numbers this driver's payloads carry for `payment`: never in an event."""
        return []

    def webhook_path(self, headers: dict[str, str]) -> str:
        """Where this delivery is posted; providers that sign nothing (M-Pesa, MoMo) get a secret token
        in the path (/v1/webhooks/{provider}/{token}), which their drivers read from `headers`."""
        return f"/v1/webhooks/{self.name}"
