"""The inbox table (schema for alembic) and its one row type."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Index, SmallInteger, String, Table, Text, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import JSONB

from gateway.db.base import metadata, timestamp
from gateway.db.rows import RowSpec

# Every verified provider notification, stored before it is acknowledged.
inbound_webhooks = Table(
    "inbound_webhooks",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("provider", String(32), nullable=False),
    Column("provider_event_id", String(255), nullable=False),
    Column("event_type", String(100), nullable=False),
    Column("payload", JSONB, nullable=False),
    timestamp("received_at", now=True),
    timestamp("processed_at"),
    # processed | no_change | ignored | unmatched | stale (an earlier attempt's) | failed
    Column("outcome", String(32)),
    Column("attempts", SmallInteger, server_default="0", nullable=False),
    Column("last_error", Text),
    # The provider account whose URL received it ('' for the deployment-wide account): event ids are
    # unique per account, not across merchants' accounts.
    Column("account_id", String(40), server_default=text("''"), nullable=False),
    UniqueConstraint("provider", "account_id", "provider_event_id"),
    Index("ix_inbound_webhooks_unprocessed", "received_at", postgresql_where=text("processed_at IS NULL")),
)


@dataclass(slots=True, frozen=True)
class InboundWebhook:
    id: str
    provider: str
    provider_event_id: str
    event_type: str
    payload: dict[str, Any]
    received_at: datetime
    processed_at: datetime | None
    outcome: str | None
    attempts: int
    last_error: str | None
    account_id: str


INBOX = RowSpec(inbound_webhooks, InboundWebhook)
