"""The payment_links table (schema for alembic) and its row type."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, CheckConstraint, Column, ForeignKey, Index, String, Table, text
from sqlalchemy.dialects.postgresql import JSONB

from gateway.db.base import metadata, timestamp
from gateway.db.rows import RowSpec

payment_links = Table(
    "payment_links",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("merchant_id", String(40), ForeignKey("merchants.id"), nullable=False),
    Column("livemode", Boolean, nullable=False),
    # The public URL's last segment ({GATEWAY_PUBLIC_URL}/l/{slug}): unguessable, unique.
    Column("slug", String(64), nullable=False, unique=True),
    # NULL: the customer chooses the amount, within min_amount and max_amount.
    Column("amount", BigInteger),
    Column("currency", String(3), nullable=False),
    Column("description", String(1000)),
    Column("reusable", Boolean, nullable=False),
    Column("min_amount", BigInteger),
    Column("max_amount", BigInteger),
    timestamp("expires_at"),
    Column("active", Boolean, server_default=text("true"), nullable=False),
    # A single-use link stops at its first success.
    timestamp("paid_at"),
    Column("metadata", JSONB, server_default=text("'{}'::jsonb"), nullable=False),
    timestamp("created_at", now=True),
    timestamp("updated_at", now=True),
    CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency_iso"),
    Index("ix_payment_links_merchant_id", "merchant_id", text("id DESC")),
)


@dataclass(slots=True)
class PaymentLink:
    id: str
    merchant_id: str
    livemode: bool
    slug: str
    amount: int | None
    currency: str
    description: str | None
    reusable: bool
    min_amount: int | None
    max_amount: int | None
    expires_at: datetime | None
    active: bool
    paid_at: datetime | None
    metadata_: dict[str, Any]
    created_at: datetime
    updated_at: datetime


PAYMENT_LINKS = RowSpec(payment_links, PaymentLink)
