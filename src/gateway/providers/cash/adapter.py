"""Cash: the merchant collected the money in person; the gateway records it, nothing is sent anywhere."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.kit.money import CURRENCY_EXPONENTS
from gateway.providers import base as b
from gateway.providers.details import Cash


def _reference(our_id: str) -> str:
    return "cash_" + our_id.split("_", 1)[1]


def _collected(payment_id: str, amount: int, currency: str, till: str | None) -> b.PaymentResult:
    """Cash is in the merchant's hand when the payment is recorded: every question has this answer.
    A cash payment's `payment_method`, if the merchant gives one, names the till or session."""
    return b.PaymentResult(
        status="succeeded",
        provider_reference=_reference(payment_id),
        amount=amount,
        currency=currency,
        payment_method_details=Cash(till=till),
    )


def _handed_back(refund_id: str, amount: int, currency: str) -> b.RefundResult:
    return b.RefundResult(
        status="succeeded", provider_reference=_reference(refund_id), amount=amount, currency=currency
    )


def _answer(request: b.PaymentRequest) -> b.PaymentResult:
    return _collected(request.payment_id, request.amount, request.currency, request.payment_method)


class CashProvider:
    name = "cash"
    capabilities = b.Capabilities(
        currencies=frozenset(CURRENCY_EXPONENTS),
        flows=frozenset({b.Flow.CASH}),
        refunds=True,
        partial_refunds=True,
        cancel=False,
        action_ttl_seconds=None,
        in_process=True,
        answer=_answer,
    )

    def is_configured(self, livemode: bool) -> bool:
        return True

    async def create_payment(self, request: b.PaymentRequest) -> b.PaymentResult:
        return _answer(request)

    async def fetch_payment(self, ref: b.PaymentRef) -> b.PaymentResult:
        return _collected(ref.payment_id, ref.amount, ref.currency, ref.payment_method)

    async def cancel_payment(self, ref: b.PaymentRef) -> b.PaymentResult:
        return await self.fetch_payment(ref)  # collected cash cannot be un-collected; refund it instead

    async def refund_payment(self, request: b.RefundRequest) -> b.RefundResult:
        # The merchant hands the cash back; we record it.
        return _handed_back(request.refund_id, request.amount, request.payment.currency)

    async def fetch_refund(self, ref: b.RefundRef) -> b.RefundResult:
        return _handed_back(ref.refund_id, ref.amount, ref.payment.currency)

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> list[b.WebhookEvent]:
        raise b.WebhookVerificationError("cash sends no webhooks")

    def interpret_webhook(self, payload: dict[str, Any]) -> b.WebhookEvent:
        raise b.WebhookVerificationError("cash sends no webhooks")

    async def aclose(self) -> None:
        return None
