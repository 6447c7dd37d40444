"""The payouts tables (schema for alembic) and their row types: payouts, the merchants' payout limits
and the per-day totals that make the daily limit race-free."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Index,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from gateway.db.base import metadata, timestamp
from gateway.db.rows import RowSpec

payouts = Table(
    "payouts",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("merchant_id", String(40), ForeignKey("merchants.id"), nullable=False),
    Column("livemode", Boolean, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("provider", String(32), nullable=False),
    # The merchant's own provider account the payout went through; NULL: the deployment-wide one.
    Column("provider_account_id", String(40), ForeignKey("provider_accounts.id")),
    # {type, phone | account_number + bank_code, name}: what the rail needs, nothing more. Shown
    # masked in answers and events (payouts/schemas.mask_destination).
    Column("destination", JSONB, nullable=False),
    Column("reference", String(255)),
    Column("metadata", JSONB, server_default=text("'{}'::jsonb"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("failure_code", String(64)),
    Column("failure_message", String(1000)),
    Column("provider_reference", String(255)),
    # Set (and committed) just BEFORE the provider hears of the payout: a payout with it set is never
    # sent again, whatever happened after (a crash, a timeout); NULL: never sent, may be canceled.
    timestamp("submitted_at"),
    Column("idempotency_key", String(255), nullable=False),
    Column("request_fingerprint", String(64), nullable=False),
    timestamp("next_reconcile_at"),
    Column("reconcile_attempts", SmallInteger, server_default="0", nullable=False),
    timestamp("created_at", now=True),
    timestamp("updated_at", now=True),
    timestamp("completed_at"),
    UniqueConstraint("merchant_id", "idempotency_key"),
    CheckConstraint("amount > 0", name="amount_positive"),
    CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency_iso"),
    CheckConstraint("status IN ('pending', 'succeeded', 'failed', 'canceled')", name="status_known"),
    Index("ix_payouts_merchant_id_id", "merchant_id", text("id DESC")),
    Index("ix_payouts_provider_reference", "provider", "provider_reference"),
    # The reconciler's work: submitted payouts with no outcome yet.
    Index(
        "ix_payouts_reconcile_due",
        "next_reconcile_at",
        postgresql_where=text("status = 'pending' AND submitted_at IS NOT NULL"),
    ),
    # Payouts whose request died between their insert and their submission (canceled by the reconciler).
    Index(
        "ix_payouts_unsubmitted",
        "created_at",
        postgresql_where=text("status = 'pending' AND submitted_at IS NULL"),
    ),
)


@dataclass(slots=True)
class Payout:
    id: str
    merchant_id: str
    livemode: bool
    amount: int
    currency: str
    provider: str
    provider_account_id: str | None
    destination: dict[str, Any]
    reference: str | None
    metadata_: dict[str, Any]
    status: str
    failure_code: str | None
    failure_message: str | None
    provider_reference: str | None
    submitted_at: datetime | None
    idempotency_key: str
    request_fingerprint: str
    next_reconcile_at: datetime | None
    reconcile_attempts: int
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None


PAYOUTS = RowSpec(payouts, Payout)

# A merchant's own limits per currency and mode, where they differ from the deployment's defaults
# (GATEWAY_PAYOUTS__MAX_PER_PAYOUT / MAX_PER_DAY). NULL: the default.
payout_limits = Table(
    "payout_limits",
    metadata,
    Column("merchant_id", String(40), ForeignKey("merchants.id"), nullable=False),
    Column("livemode", Boolean, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("max_per_payout", BigInteger),
    Column("max_per_day", BigInteger),
    timestamp("updated_at", now=True),
    PrimaryKeyConstraint("merchant_id", "livemode", "currency"),
    CheckConstraint("max_per_payout IS NULL OR max_per_payout >= 0", name="per_payout_not_negative"),
    CheckConstraint("max_per_day IS NULL OR max_per_day >= 0", name="per_day_not_negative"),
)


@dataclass(slots=True)
class PayoutLimit:
    merchant_id: str
    livemode: bool
    currency: str
    max_per_payout: int | None
    max_per_day: int | None
    updated_at: datetime


PAYOUT_LIMITS = RowSpec(payout_limits, PayoutLimit)

# What a merchant's payouts hold of a UTC day's limit (pending and succeeded; a failed or canceled
# payout gives its amount back). One row per (merchant, mode, currency, day): the insert of a payout
# adds to it in one conditional upsert, which serialises racing payouts on the row.
payout_daily_totals = Table(
    "payout_daily_totals",
    metadata,
    Column("merchant_id", String(40), ForeignKey("merchants.id"), nullable=False),
    Column("livemode", Boolean, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("day", Date, nullable=False),
    Column("total", BigInteger, nullable=False),
    PrimaryKeyConstraint("merchant_id", "livemode", "currency", "day"),
    CheckConstraint("total >= 0", name="total_not_negative"),
)


@dataclass(slots=True)
class PayoutDailyTotal:
    merchant_id: str
    livemode: bool
    currency: str
    day: date
    total: int


PAYOUT_DAILY_TOTALS = RowSpec(payout_daily_totals, PayoutDailyTotal)
