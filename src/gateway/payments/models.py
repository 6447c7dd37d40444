from __future__ import annotations

from dataclasses import dataclass
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


class Payment(Base):
    __tablename__ = "payments"
    __table_args__ = (
        # The database backstop of idempotency: one payment per (merchant, key), whatever Redis knows.
        UniqueConstraint("merchant_id", "idempotency_key"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("amount_refunded >= 0 AND amount_refunded <= amount", name="refund_within_amount"),
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency_iso"),
        Index("ix_payments_merchant_id_id", "merchant_id", text("id DESC")),
        Index("ix_payments_merchant_status_id", "merchant_id", "status", text("id DESC")),
        Index("ix_payments_merchant_reference", "merchant_id", "reference"),
        Index("ix_payments_merchant_customer_email", "merchant_id", "customer_email"),
        Index("ix_payments_provider_reference", "provider", "provider_reference"),
        Index(
            "ix_payments_reconcile_due",
            "next_reconcile_at",
            postgresql_where=text("status IN ('pending', 'requires_action', 'processing')"),
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    livemode: Mapped[bool]
    amount: Mapped[int] = mapped_column(BigInteger)
    amount_refunded: Mapped[int] = mapped_column(BigInteger, server_default="0")
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(32))
    provider: Mapped[str] = mapped_column(String(32))
    payment_method: Mapped[str | None] = mapped_column(String(100))
    customer_name: Mapped[str | None] = mapped_column(String(200))
    customer_email: Mapped[str | None] = mapped_column(String(320))
    customer_phone: Mapped[str | None] = mapped_column(String(20))
    customer_location: Mapped[str | None] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(String(1000))
    reference: Mapped[str | None] = mapped_column(String(255))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", server_default=text("'{}'::jsonb"))
    return_url: Mapped[str | None] = mapped_column(String(2048))
    provider_reference: Mapped[str | None] = mapped_column(String(255))
    next_action: Mapped[dict[str, Any] | None]
    failure_code: Mapped[str | None] = mapped_column(String(64))
    failure_message: Mapped[str | None] = mapped_column(String(1000))
    idempotency_key: Mapped[str] = mapped_column(String(255))
    # SHA-256 of method, path and canonical body: tells a retry from a reuse even with Redis flushed.
    request_fingerprint: Mapped[str] = mapped_column(String(64))
    # A lease on the provider call: set while one request talks to the provider for this payment.
    provider_lease_until: Mapped[datetime | None]
    # When the reconciler next asks the provider about this payment (while it is unsettled).
    next_reconcile_at: Mapped[datetime | None]
    reconcile_attempts: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())
    completed_at: Mapped[datetime | None]


@dataclass(slots=True)
class PaymentRow:
    """A payments row as the hot paths read it through asyncpg (same attribute names as `Payment`).

    The state machine and the API's view take either: they read and set attributes only."""

    id: str
    merchant_id: str
    livemode: bool
    amount: int
    amount_refunded: int
    currency: str
    status: str
    provider: str
    payment_method: str | None
    customer_name: str | None
    customer_email: str | None
    customer_phone: str | None
    customer_location: str | None
    description: str | None
    reference: str | None
    metadata_: dict[str, Any]
    return_url: str | None
    provider_reference: str | None
    next_action: dict[str, Any] | None
    failure_code: str | None
    failure_message: str | None
    idempotency_key: str
    request_fingerprint: str
    provider_lease_until: datetime | None
    next_reconcile_at: datetime | None
    reconcile_attempts: int
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None


# Either form of a payment: the ORM's (sessions) or a plain row (the asyncpg hot paths).
AnyPayment = Payment | PaymentRow
# (column, attribute) of every column, in table order: the hot paths' SELECT lists are built from it.
PAYMENT_COLUMNS: tuple[tuple[str, str], ...] = tuple(
    (prop.columns[0].name, prop.key) for prop in Payment.__mapper__.column_attrs
)
