"""Request and response bodies of the payment links API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway.api.pagination import Timestamp
from gateway.payments.fields import Amount, Currency, Metadata


class PaymentLinkCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "amount": 150_000,
                    "currency": "KES",
                    "description": "Yoga class, 10 sessions",
                    "reusable": True,
                },
                {
                    "currency": "KES",
                    "description": "Donation",
                    "reusable": True,
                    "min_amount": 10_000,
                    "max_amount": 10_000_000,
                },
            ]
        },
    )

    amount: Amount | None = Field(
        None, description="Minor units; leave out to let the customer choose (within min and max)"
    )
    currency: Currency
    description: str = Field(min_length=1, max_length=1000, description="What the customer pays for")
    reusable: bool = Field(description="true: any number of payments; false: the link stops at its first")
    min_amount: Amount | None = Field(None, description="The least a customer may choose (no amount only)")
    max_amount: Amount | None = Field(None, description="The most a customer may choose (no amount only)")
    expires_at: Timestamp | None = Field(None, description="RFC 3339, in the future; opened later: 410")
    metadata: Metadata = Field(default_factory=dict)


class PaymentLinkOut(BaseModel):
    id: str
    object: Literal["payment_link"] = "payment_link"
    url: str = Field(description="The public URL to send customers to: `{GATEWAY_PUBLIC_URL}/l/{slug}`")
    active: bool = Field(description="false once deactivated, expired or (single use) paid")
    amount: int | None
    currency: str
    description: str | None
    reusable: bool
    min_amount: int | None
    max_amount: int | None
    expires_at: datetime | None
    paid_at: datetime | None = Field(description="When a single-use link's payment succeeded")
    metadata: dict[str, str]
    livemode: bool
    created_at: datetime
    updated_at: datetime


class PaymentLinkList(BaseModel):
    object: Literal["list"] = "list"
    data: list[PaymentLinkOut]
    has_more: bool


def payment_link_out(link: Any, base_url: str, now: datetime) -> PaymentLinkOut:
    return PaymentLinkOut(
        id=link.id,
        url=f"{base_url}/l/{link.slug}",
        active=is_open(link, now),
        amount=link.amount,
        currency=link.currency,
        description=link.description,
        reusable=link.reusable,
        min_amount=link.min_amount,
        max_amount=link.max_amount,
        expires_at=link.expires_at,
        paid_at=link.paid_at,
        metadata=link.metadata_,
        livemode=link.livemode,
        created_at=link.created_at,
        updated_at=link.updated_at,
    )


def is_open(link: Any, now: datetime) -> bool:
    """Whether opening the link makes a payment: active, not expired, not a paid single-use link."""
    return bool(
        link.active
        and (link.expires_at is None or link.expires_at > now)
        and (link.reusable or link.paid_at is None)
    )
