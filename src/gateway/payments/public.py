"""What a browser may see of a payment (a publishable key with its client secret; the checkout page;
the payment's WebSocket): enough to show and finish the payment, nothing about the merchant's
customer, references, metadata or other payments."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from gateway.payments.fields import PaymentStatus
from gateway.payments.shapes import NextAction


class PaymentError(BaseModel):
    code: str
    message: str | None


class PublicPaymentOut(BaseModel):
    id: str
    object: Literal["payment"] = "payment"
    amount: int
    currency: str
    status: PaymentStatus
    livemode: bool
    description: str | None
    provider: str | None = Field(description="The rail chosen (null until the payment is confirmed)")
    next_action: NextAction | None
    last_payment_error: PaymentError | None = Field(description="Why the last attempt failed, if it did")
    payment_methods: list[str] = Field(
        description="The providers this payment may be confirmed with (for its currency and mode)"
    )


def public_payment_json(p: Any, methods: list[str]) -> dict[str, Any]:
    """`PublicPaymentOut`'s fields, in its order, as plain data (the model is OpenAPI's schema)."""
    return {
        "id": p.id,
        "object": "payment",
        "amount": p.amount,
        "currency": p.currency,
        "status": p.status,
        "livemode": p.livemode,
        "description": p.description,
        "provider": p.provider,
        "next_action": (
            NextAction.model_validate(p.next_action).model_dump(mode="json") if p.next_action else None
        ),
        "last_payment_error": (
            {"code": p.failure_code, "message": p.failure_message} if p.failure_code else None
        ),
        "payment_methods": methods,
    }
