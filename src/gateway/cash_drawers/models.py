"""The cash_sessions table (schema for alembic) and its one row type: a drawer's session, from its
opening float to the count that closes it."""

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
    String,
    Table,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from gateway.db.base import metadata, timestamp
from gateway.db.rows import RowSpec

cash_sessions = Table(
    "cash_sessions",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("merchant_id", String(40), ForeignKey("merchants.id"), nullable=False),
    Column("livemode", Boolean, nullable=False),
    # The merchant's own name for the drawer (the path's {drawer}): no table of drawers, a name is enough.
    Column("drawer", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("opening_float", BigInteger, nullable=False),
    # Set by the close, all together (the check below): what the cashier counted, the succeeded cash
    # payments and the cash refunds counted in the session, what should be there, and counted - expected.
    Column("counted", BigInteger),
    Column("payments_total", BigInteger),
    Column("refunds_total", BigInteger),
    Column("expected", BigInteger),
    Column("difference", BigInteger),
    # Who: the API key (`key_…`) that called, and the name the caller gave, if any.
    Column("opened_by", String(40), nullable=False),
    Column("opened_by_name", String(100)),
    Column("closed_by", String(40)),
    Column("closed_by_name", String(100)),
    timestamp("opened_at", nullable=False),
    timestamp("closed_at"),
    Column("metadata", JSONB, server_default=text("'{}'::jsonb"), nullable=False),
    Column("idempotency_key", String(255), nullable=False),
    Column("request_fingerprint", String(64), nullable=False),
    # The close's key: a retry of the close (Redis' stored answer lost) is answered from the row.
    Column("close_idempotency_key", String(255)),
    Column("close_request_fingerprint", String(64)),
    timestamp("created_at", now=True),
    timestamp("updated_at", now=True),
    UniqueConstraint("merchant_id", "idempotency_key"),
    CheckConstraint("status IN ('open', 'closed')", name="status_known"),
    CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency_iso"),
    CheckConstraint("opening_float >= 0", name="float_not_negative"),
    CheckConstraint(
        "status = 'open' OR (closed_at IS NOT NULL AND closed_by IS NOT NULL AND counted >= 0"
        " AND expected = opening_float + payments_total - refunds_total"
        " AND difference = counted - expected)",
        name="closed_adds_up",
    ),
    Index("ix_cash_sessions_merchant_id_id", "merchant_id", text("id DESC")),
    Index("ix_cash_sessions_merchant_drawer_id", "merchant_id", "drawer", text("id DESC")),
    # One open session per drawer: the database's word, whatever two requests racing believe.
    Index(
        "ix_cash_sessions_one_open",
        "merchant_id",
        "livemode",
        "drawer",
        unique=True,
        postgresql_where=text("status = 'open'"),
    ),
)


@dataclass(slots=True)
class CashSession:
    id: str
    merchant_id: str
    livemode: bool
    drawer: str
    status: str
    currency: str
    opening_float: int
    counted: int | None
    payments_total: int | None
    refunds_total: int | None
    expected: int | None
    difference: int | None
    opened_by: str
    opened_by_name: str | None
    closed_by: str | None
    closed_by_name: str | None
    opened_at: datetime
    closed_at: datetime | None
    metadata_: dict[str, Any]
    idempotency_key: str
    request_fingerprint: str
    close_idempotency_key: str | None
    close_request_fingerprint: str | None
    created_at: datetime
    updated_at: datetime


CASH_SESSIONS = RowSpec(cash_sessions, CashSession)
