"""Outbound webhooks' tables (schema for alembic) and their row types: endpoints, deliveries, attempts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY

from gateway.db.base import metadata, timestamp
from gateway.db.rows import RowSpec

webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("merchant_id", String(40), ForeignKey("merchants.id"), nullable=False),
    Column("livemode", Boolean, nullable=False),
    Column("url", String(2048), nullable=False),
    Column("description", String(500)),
    Column("enabled_events", ARRAY(String(100)), nullable=False),
    Column("enabled", Boolean, server_default=text("true"), nullable=False),
    # Why the gateway disabled it (e.g. the receiver answered 410 Gone); null when a person did.
    Column("disabled_reason", String(100)),
    # The signing secret must be used, not just checked, so it is kept; it is shown only on create/rotate.
    Column("secret", String(100), nullable=False),
    Column("previous_secret", String(100)),
    timestamp("previous_secret_expires_at"),
    timestamp("created_at", now=True),
    timestamp("updated_at", now=True),
    timestamp("deleted_at"),
    Index("ix_webhook_endpoints_merchant", "merchant_id", "livemode", text("id DESC")),
)

# One event to one endpoint: written with the event (the outbox), claimed by workers, retried.
# No foreign keys (alembic 0015), as `events` (0014): each row is written in its event's statement,
# from the endpoint row the outbox joins, and nothing deletes events, endpoints (soft-deleted) or
# merchants. Their checks locked the merchant's one row and the endpoint's for every delivery:
# measured with an endpoint, PostgreSQL's CPU per create 0.55 -> 0.39 ms (bench/README.md, #15).
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("endpoint_id", String(40), nullable=False),
    Column("event_id", String(40), nullable=False),
    Column("merchant_id", String(40), nullable=False),
    Column("event_type", String(64), nullable=False),
    # pending | succeeded | failed
    Column("status", String(16), server_default="pending", nullable=False),
    Column("attempts", SmallInteger, server_default="0", nullable=False),
    Column("next_attempt_at", DateTime(timezone=True), server_default=func.now()),
    # A worker's lease: while in the future, no other worker sends this delivery.
    timestamp("claimed_until"),
    Column("last_status_code", Integer),
    timestamp("created_at", now=True),
    timestamp("updated_at", now=True),
    UniqueConstraint("endpoint_id", "event_id"),
    Index("ix_webhook_deliveries_due", "next_attempt_at", postgresql_where=text("status = 'pending'")),
    Index("ix_webhook_deliveries_endpoint", "endpoint_id", text("id DESC")),
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("delivery_id", String(40), ForeignKey("webhook_deliveries.id"), nullable=False),
    timestamp("attempted_at", now=True),
    Column("status_code", Integer),
    Column("duration_ms", Integer, nullable=False),
    Column("response_body", Text),
    Column("error", String(500)),
    # Which worker sent it (host:pid), to show that no two sent one delivery at once.
    Column("worker", String(100), nullable=False),
    Index("ix_webhook_attempts_delivery", "delivery_id", "id"),
)


@dataclass(slots=True)
class WebhookEndpoint:
    id: str
    merchant_id: str
    livemode: bool
    url: str
    description: str | None
    enabled_events: list[str]
    enabled: bool
    disabled_reason: str | None
    secret: str
    previous_secret: str | None
    previous_secret_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None


@dataclass(slots=True, frozen=True)
class WebhookDelivery:
    id: str
    endpoint_id: str
    event_id: str
    merchant_id: str
    event_type: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    claimed_until: datetime | None
    last_status_code: int | None
    created_at: datetime
    updated_at: datetime


@dataclass(slots=True, frozen=True)
class WebhookAttempt:
    id: str
    delivery_id: str
    attempted_at: datetime
    status_code: int | None
    duration_ms: int
    response_body: str | None
    error: str | None
    worker: str


ENDPOINTS = RowSpec(webhook_endpoints, WebhookEndpoint)
DELIVERIES = RowSpec(webhook_deliveries, WebhookDelivery)
ATTEMPTS = RowSpec(webhook_attempts, WebhookAttempt)
