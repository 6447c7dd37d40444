"""The refunds table (schema for alembic) and its one row type."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    Table,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from gateway.db.base import metadata, timestamp
from gateway.db.rows import RowSpec

refunds = Table(
    "refunds",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("merchant_id", String(40), ForeignKey("merchants.id"), nullable=False),
    Column("payment_id", String(40), ForeignKey("payments.id"), nullable=False),
    Column("livemode", Boolean, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(16), nullable=False),
    Column("reason", String(32)),
    Column("metadata", JSONB, server_default=text("'{}'::jsonb"), nullable=False),
    Column("provider_reference", String(255)),
    Column("failure_code", String(64)),
    Column("failure_message", String(1000)),
    Column("idempotency_key", String(255), nullable=False),
    Column("request_fingerprint", String(64), nullable=False),
    # Set while one request talks to the provider about this refund (see payments.provider_lease_until).
    timestamp("provider_lease_until"),
    timestamp("next_reconcile_at"),
    Column("reconcile_attempts", SmallInteger, server_default="0", nullable=False),
    # A cash refund's drawer session: where the cash left (docs/api.md, "Cash drawer sessions").
    Column("cash_session", String(40), ForeignKey("cash_sessions.id")),
    timestamp("created_at", now=True),
    timestamp("updated_at", now=True),
    UniqueConstraint("merchant_id", "idempotency_key"),
    CheckConstraint("amount > 0", name="amount_positive"),
    CheckConstraint("status IN ('pending', 'succeeded', 'failed')", name="status_known"),
    Index("ix_refunds_merchant_id_id", "merchant_id", text("id DESC")),
    Index("ix_refunds_payment_id_status", "payment_id", "status"),
    Index("ix_refunds_provider_reference", "provider_reference"),
    Index("ix_refunds_cash_session", "cash_session", postgresql_where=text("cash_session IS NOT NULL")),
    Index("ix_refunds_reconcile_due", "next_reconcile_at", postgresql_where=text("status = 'pending'")),
)


@dataclass(slots=True)
class Refund:
    id: str
    merchant_id: str
    payment_id: str
    livemode: bool
    amount: int
    currency: str
    status: str
    reason: str | None
    metadata_: dict[str, Any]
    provider_reference: str | None
    failure_code: str | None
    failure_message: str | None
    idempotency_key: str
    request_fingerprint: str
    provider_lease_until: datetime | None
    next_reconcile_at: datetime | None
    reconcile_attempts: int
    created_at: datetime
    updated_at: datetime
    cash_session: str | None = None


REFUNDS = RowSpec(refunds, Refund)
