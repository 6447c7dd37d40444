from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, SmallInteger, String, Text, UniqueConstraint, func, text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db.base import Base


class InboundWebhook(Base):
    """The inbox: every verified provider notification, stored before it is acknowledged."""

    __tablename__ = "inbound_webhooks"
    __table_args__ = (
        UniqueConstraint("provider", "provider_event_id"),
        Index(
            "ix_inbound_webhooks_unprocessed", "received_at", postgresql_where=text("processed_at IS NULL")
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    provider: Mapped[str] = mapped_column(String(32))
    provider_event_id: Mapped[str] = mapped_column(String(255))
    event_type: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]]
    received_at: Mapped[datetime] = mapped_column(server_default=func.now())
    processed_at: Mapped[datetime | None]
    # processed | ignored | unmatched | failed
    outcome: Mapped[str | None] = mapped_column(String(32))
    attempts: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
