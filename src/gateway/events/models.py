from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, func, text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db.base import Base


class Event(Base):
    """The append-only log: one row per status change (and per rejected change), never updated."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_merchant_id_id", "merchant_id", text("id DESC")),
        Index("ix_events_payment_id_id", "payment_id", "id"),
        Index("ix_events_refund_id_id", "refund_id", "id", postgresql_where=text("refund_id IS NOT NULL")),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    livemode: Mapped[bool]
    type: Mapped[str] = mapped_column(String(64))
    payment_id: Mapped[str | None] = mapped_column(ForeignKey("payments.id"))
    # Set on refund events (which carry their payment's id too, so a payment's trail shows them).
    refund_id: Mapped[str | None] = mapped_column(ForeignKey("refunds.id"))
    previous_status: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str | None] = mapped_column(String(32))
    # Who caused it: api, webhook, sync, sweeper, reconciler.
    source: Mapped[str] = mapped_column(String(32))
    # The object as the API showed it at that moment.
    data: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
