"""The payments table (schema for alembic) and its one row type."""

from __future__ import annotations

from dataclasses import dataclass, field
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

payments = Table(
    "payments",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("merchant_id", String(40), ForeignKey("merchants.id"), nullable=False),
    Column("livemode", Boolean, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("amount_refunded", BigInteger, server_default="0", nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(32), nullable=False),
    # NULL until the customer (or the merchant) chooses the rail: status requires_payment_method.
    Column("provider", String(32)),
    Column("payment_method", String(100)),
    Column("customer_name", String(200)),
    Column("customer_email", String(320)),
    Column("customer_phone", String(20)),
    Column("customer_location", String(200)),
    Column("description", String(1000)),
    Column("reference", String(255)),
    Column("metadata", JSONB, server_default=text("'{}'::jsonb"), nullable=False),
    Column("return_url", String(2048)),
    Column("provider_reference", String(255)),
    Column("next_action", JSONB),
    Column("failure_code", String(64)),
    Column("failure_message", String(1000)),
    Column("idempotency_key", String(255), nullable=False),
    # SHA-256 of method, path and canonical body: tells a retry from a reuse even with Redis flushed.
    Column("request_fingerprint", String(64), nullable=False),
    # A lease on the provider call: set while one request talks to the provider for this payment.
    timestamp("provider_lease_until"),
    # When the reconciler next asks the provider about this payment (while it is unsettled).
    timestamp("next_reconcile_at"),
    Column("reconcile_attempts", SmallInteger, server_default="0", nullable=False),
    timestamp("created_at", now=True),
    timestamp("updated_at", now=True),
    timestamp("completed_at"),
    # How the customer paid, as the provider said it (card brand and last 4, operator and receipt...):
    # the API's `payment_method_details`, written by the state machine with the status it came with.
    Column("payment_method_details", JSONB),
    # The provider's receipt for the money (M-Pesa's MpesaReceiptNumber): what a reversal must name,
    # so it lives here, durable, rather than only inside the details.
    Column("provider_receipt", String(64)),
    # The merchant's own provider account the payment went through; NULL: the deployment-wide one.
    Column("provider_account_id", String(40), ForeignKey("provider_accounts.id")),
    # Shown to the secret key and to the holder of the secret only: a browser's right to read the
    # payment's public subset and confirm it (`pay_…_secret_…`).
    Column("client_secret", String(100), nullable=False),
    # The hosted checkout's URL names this unguessable id, never the payment's id or its secret.
    Column("checkout_id", String(40), nullable=False, unique=True),
    Column("locale", String(5)),
    # Whether a customer may confirm again after a failed attempt (an M-Pesa prompt that timed out).
    Column("allow_retries", Boolean, server_default=text("true"), nullable=False),
    Column("payment_link_id", String(40), ForeignKey("payment_links.id")),
    # The number of the current attempt (payment_attempts.number; 0 until a confirm starts one): the
    # provider hears of attempt n > 1 under its own key (`attempt_key`), so a retry is a new provider
    # payment and a late answer about an earlier attempt is told apart.
    Column("attempt", SmallInteger, server_default="0", nullable=False),
    # When the current attempt started (NULL: at created_at): the rail's clock (its TTLs) runs from it.
    timestamp("attempted_at"),
    # What the rail keeps about the current attempt and never shows (Orange Money's pay_token, which its
    # status query needs, and the digest of its notif_token): read by the adapter only (PaymentRef.private),
    # never in a response, an event or a log; cleared when another attempt starts.
    Column("provider_private", JSONB),
    # A payment made with `"provider": "auto"`: its route (the providers its merchant's rules chose, in
    # order) and each attempt along it (payments/routed.py); NULL for any other payment.
    Column("routing", JSONB),
    # The drawer session a cash payment was taken into (cash_drawers/): its close counts the payment.
    Column("cash_session", String(40), ForeignKey("cash_sessions.id")),
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
        "ix_payments_merchant_payment_link_id",
        "merchant_id",
        "payment_link_id",
        text("id DESC"),
        postgresql_where=text("payment_link_id IS NOT NULL"),
    ),
    Index(
        "ix_payments_cash_session",
        "cash_session",
        postgresql_where=text("cash_session IS NOT NULL"),
    ),
    Index(
        "ix_payments_reconcile_due",
        "next_reconcile_at",
        postgresql_where=text("status IN ('pending', 'requires_action', 'processing')"),
    ),
    Index(
        "ix_payments_unconfirmed",
        "created_at",
        postgresql_where=text("status = 'requires_payment_method'"),
    ),
)


@dataclass(slots=True)
class Payment:
    """A payments row. The state machine sets its attributes and writes the ones it changed."""

    id: str
    merchant_id: str
    livemode: bool
    amount: int
    amount_refunded: int
    currency: str
    status: str
    provider: str | None
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
    payment_method_details: dict[str, Any] | None
    provider_receipt: str | None
    provider_account_id: str | None
    client_secret: str
    checkout_id: str
    locale: str | None = None
    allow_retries: bool = True
    payment_link_id: str | None = None
    attempt: int = 0
    attempted_at: datetime | None = None
    provider_private: dict[str, Any] | None = field(default=None, repr=False)
    routing: dict[str, Any] | None = None
    cash_session: str | None = None


PAYMENTS = RowSpec(payments, Payment)

# One row per confirmation of a payment (its rail, its provider reference, how it ended): a retry
# after a failed attempt makes another, and a late answer about an earlier attempt still finds it.
payment_attempts = Table(
    "payment_attempts",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("payment_id", String(40), ForeignKey("payments.id"), nullable=False),
    Column("number", SmallInteger, nullable=False),
    Column("provider", String(32), nullable=False),
    Column("payment_method", String(100)),
    Column("provider_account_id", String(40), ForeignKey("provider_accounts.id")),
    Column("provider_reference", String(255)),
    Column("status", String(32), nullable=False),
    Column("failure_code", String(64)),
    Column("failure_message", String(1000)),
    timestamp("created_at", now=True),
    timestamp("updated_at", now=True),
    UniqueConstraint("payment_id", "number"),
    Index("ix_payment_attempts_provider_reference", "provider", "provider_reference"),
)


@dataclass(slots=True)
class PaymentAttempt:
    id: str
    payment_id: str
    number: int
    provider: str
    payment_method: str | None
    provider_account_id: str | None
    provider_reference: str | None
    status: str
    failure_code: str | None
    failure_message: str | None
    created_at: datetime
    updated_at: datetime


PAYMENT_ATTEMPTS = RowSpec(payment_attempts, PaymentAttempt)
