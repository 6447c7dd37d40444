"""Cash: the merchant collected the money in person; the gateway records it, nothing is sent anywhere."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.kit.money import CURRENCY_EXPONENTS
from gateway.providers.base import (
    Capabilities,
    Flow,
    PaymentRef,
    PaymentRequest,
    PaymentResult,
    RefundRef,
    RefundRequest,
    RefundResult,
    WebhookEvent,
    WebhookVerificationError,
)


def _reference(our_id: str) -> str:
    return "cash_" + our_id.split("_", 1)[1]


class CashProvider:
    name = "cash"
    capabilities = Capabilities(
        currencies=frozenset(CURRENCY_EXPONENTS),
        flows=frozenset({Flow.CASH}),
        refunds=True,
        partial_refunds=True,
        cancel=False,
        action_ttl_seconds=None,
        in_process=True,
    )

    def is_configured(self, livemode: bool) -> bool:
        return True

    async def create_payment(self, request: PaymentRequest) -> PaymentResult:
        return PaymentResult(
            status="succeeded",
            provider_reference=_reference(request.payment_id),
            amount=request.amount,
            currency=request.currency,
        )

    async def fetch_payment(self, ref: PaymentRef) -> PaymentResult:
        return PaymentResult(
            status="succeeded",
            provider_reference=_reference(ref.payment_id),
            amount=ref.amount,
            currency=ref.currency,
        )

    async def cancel_payment(self, ref: PaymentRef) -> PaymentResult:
        return await self.fetch_payment(ref)  # collected cash cannot be un-collected; refund it instead

    async def refund_payment(self, request: RefundRequest) -> RefundResult:
        # The merchant hands the cash back; we record it.
        return RefundResult(
            status="succeeded",
            provider_reference=_reference(request.refund_id),
            amount=request.amount,
            currency=request.payment.currency,
        )

    async def fetch_refund(self, ref: RefundRef) -> RefundResult:
        return RefundResult(
            status="succeeded",
            provider_reference=_reference(ref.refund_id),
            amount=ref.amount,
            currency=ref.payment.currency,
        )

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> list[WebhookEvent]:
        raise WebhookVerificationError("cash sends no webhooks")

    def interpret_webhook(self, payload: dict[str, Any]) -> WebhookEvent:
        raise WebhookVerificationError("cash sends no webhooks")

    async def aclose(self) -> None:
        return None
