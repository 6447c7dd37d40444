"""The events table (schema for alembic) and its one row type."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Column, Index, String, Table, text
from sqlalchemy.dialects.postgresql import JSONB

from gateway.db.base import metadata, timestamp
from gateway.db.rows import RowSpec

# The append-only log: one row per status change (and per rejected change), never updated.
# No foreign keys (alembic 0014): each row is written by its object's state machine in the
# transaction that writes the object, and nothing deletes merchants, payments, refunds or payouts. A
# foreign key's check locks the parent row (FOR KEY SHARE) for every event, and every event of a
# merchant locked that one merchants row: measured, PostgreSQL's CPU per asynchronous payment
# 1.73 -> 0.93 ms without them (bench/README.md, #15).
events = Table(
    "events",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("merchant_id", String(40), nullable=False),
    Column("livemode", Boolean, nullable=False),
    Column("type", String(64), nullable=False),
    Column("payment_id", String(40)),
    # Set on refund events (which carry their payment's id too, so a payment's trail shows them).
    Column("refund_id", String(40)),
    Column("previous_status", String(32)),
    Column("status", String(32)),
    # Who caused it: api, webhook, sync, sweeper, reconciler.
    Column("source", String(32), nullable=False),
    # The object as the API showed it at that moment.
    Column("data", JSONB, nullable=False),
    timestamp("created_at", now=True),
    # Set on payout events (payouts/state.py); a payout concerns no payment.
    Column("payout_id", String(40)),
    Index("ix_events_merchant_id_id", "merchant_id", text("id DESC")),
    Index("ix_events_payment_id_id", "payment_id", "id"),
    Index("ix_events_refund_id_id", "refund_id", "id", postgresql_where=text("refund_id IS NOT NULL")),
    Index("ix_events_payout_id_id", "payout_id", "id", postgresql_where=text("payout_id IS NOT NULL")),
)


@dataclass(slots=True, frozen=True)
class Event:
    id: str
    merchant_id: str
    livemode: bool
    type: str
    payment_id: str | None
    refund_id: str | None
    previous_status: str | None
    status: str | None
    source: str
    data: dict[str, Any]
    created_at: datetime
    payout_id: str | None = None


EVENTS = RowSpec(events, Event)
