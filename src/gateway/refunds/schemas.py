"""Request and response bodies of the refunds API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypeAliasType

from gateway.payments.fields import Amount, Metadata

# Named: one schema each in the OpenAPI document, one enum each in generated clients.
RefundReason = TypeAliasType(
    "RefundReason", Literal["requested_by_customer", "duplicate", "fraudulent", "other"]
)
RefundStatus = TypeAliasType("RefundStatus", Literal["pending", "succeeded", "failed"])


class RefundCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"amount": 500, "reason": "requested_by_customer", "metadata": {"ticket": "SUP-18"}},
            ]
        },
    )

    amount: Amount | None = Field(None, description="Minor units; default: all that is left to refund")
    reason: RefundReason | None = None
    metadata: Metadata = Field(default_factory=dict)
    cash_session: str | None = Field(
        None,
        min_length=1,
        max_length=40,
        description="A cash refund: the open drawer session (`cds_…`) the cash leaves from; default: "
        "the open session of the drawer the payment's cash went into",
    )


class RefundOut(BaseModel):
    id: str
    object: Literal["refund"] = "refund"
    payment: str
    amount: int
    currency: str
    status: RefundStatus
    reason: RefundReason | None
    provider_reference: str | None
    failure_code: str | None
    failure_message: str | None
    metadata: dict[str, str]
    cash_session: str | None = Field(description="A cash refund's drawer session (`cds_…`), if any")
    livemode: bool
    created_at: datetime
    updated_at: datetime


class RefundList(BaseModel):
    object: Literal["list"] = "list"
    data: list[RefundOut]
    has_more: bool


@dataclass(frozen=True)
class RefundFilters:
    status: str | None = None
    payment: str | None = None
    created_gte: datetime | None = None
    created_lt: datetime | None = None


def refund_out(r: Any) -> RefundOut:
    return RefundOut(
        id=r.id,
        payment=r.payment_id,
        amount=r.amount,
        currency=r.currency,
        status=r.status,
        reason=r.reason,
        provider_reference=r.provider_reference,
        failure_code=r.failure_code,
        failure_message=r.failure_message,
        metadata=r.metadata_,
        cash_session=r.cash_session,
        livemode=r.livemode,
        created_at=r.created_at,
        updated_at=r.updated_at,
    )
