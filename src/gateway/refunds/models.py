from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db.base import Base


class Refund(Base):
    __tablename__ = "refunds"
    __table_args__ = (
        UniqueConstraint("merchant_id", "idempotency_key"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("status IN ('pending', 'succeeded', 'failed')", name="status_known"),
        Index("ix_refunds_merchant_id_id", "merchant_id", text("id DESC")),
        Index("ix_refunds_payment_id_status", "payment_id", "status"),
        Index("ix_refunds_provider_reference", "provider_reference"),
        Index("ix_refunds_reconcile_due", "next_reconcile_at", postgresql_where=text("status = 'pending'")),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    payment_id: Mapped[str] = mapped_column(ForeignKey("payments.id"))
    livemode: Mapped[bool]
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(32))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", server_default=text("'{}'::jsonb"))
    provider_reference: Mapped[str | None] = mapped_column(String(255))
    failure_code: Mapped[str | None] = mapped_column(String(64))
    failure_message: Mapped[str | None] = mapped_column(String(1000))
    idempotency_key: Mapped[str] = mapped_column(String(255))
    request_fingerprint: Mapped[str] = mapped_column(String(64))
    # Set while one request talks to the provider about this refund (see payments.provider_lease_until).
    provider_lease_until: Mapped[datetime | None]
    next_reconcile_at: Mapped[datetime | None]
    reconcile_attempts: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())
