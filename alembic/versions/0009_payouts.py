"""payouts: the payouts table, merchants' payout limits and daily totals, events.payout_id

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 04:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "payouts",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("provider_account_id", sa.String(length=40), nullable=True),
        sa.Column("destination", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("reference", sa.String(length=255), nullable=True),
        sa.Column(
            "metadata",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("failure_code", sa.String(length=64), nullable=True),
        sa.Column("failure_message", sa.String(length=1000), nullable=True),
        sa.Column("provider_reference", sa.String(length=255), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("request_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("next_reconcile_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reconcile_attempts", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("amount > 0", name=op.f("ck_payouts_amount_positive")),
        sa.CheckConstraint("currency ~ '^[A-Z]{3}$'", name=op.f("ck_payouts_currency_iso")),
        sa.CheckConstraint(
            "status IN ('pending', 'succeeded', 'failed', 'canceled')", name=op.f("ck_payouts_status_known")
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_payouts_merchant_id_merchants")
        ),
        sa.ForeignKeyConstraint(
            ["provider_account_id"],
            ["provider_accounts.id"],
            name=op.f("fk_payouts_provider_account_id_provider_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payouts")),
        sa.UniqueConstraint(
            "merchant_id", "idempotency_key", name=op.f("uq_payouts_merchant_id_idempotency_key")
        ),
    )
    op.create_index(
        "ix_payouts_merchant_id_id", "payouts", ["merchant_id", sa.literal_column("id DESC")], unique=False
    )
    op.create_index(
        "ix_payouts_provider_reference", "payouts", ["provider", "provider_reference"], unique=False
    )
    op.create_index(
        "ix_payouts_reconcile_due",
        "payouts",
        ["next_reconcile_at"],
        unique=False,
        postgresql_where=sa.text("status = 'pending' AND submitted_at IS NOT NULL"),
    )
    op.create_index(
        "ix_payouts_unsubmitted",
        "payouts",
        ["created_at"],
        unique=False,
        postgresql_where=sa.text("status = 'pending' AND submitted_at IS NULL"),
    )
    op.create_table(
        "payout_limits",
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("max_per_payout", sa.BigInteger(), nullable=True),
        sa.Column("max_per_day", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "max_per_payout IS NULL OR max_per_payout >= 0",
            name=op.f("ck_payout_limits_per_payout_not_negative"),
        ),
        sa.CheckConstraint(
            "max_per_day IS NULL OR max_per_day >= 0", name=op.f("ck_payout_limits_per_day_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_payout_limits_merchant_id_merchants")
        ),
        sa.PrimaryKeyConstraint("merchant_id", "livemode", "currency", name=op.f("pk_payout_limits")),
    )
    op.create_table(
        "payout_daily_totals",
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("total >= 0", name=op.f("ck_payout_daily_totals_total_not_negative")),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_payout_daily_totals_merchant_id_merchants")
        ),
        sa.PrimaryKeyConstraint(
            "merchant_id", "livemode", "currency", "day", name=op.f("pk_payout_daily_totals")
        ),
    )
    op.add_column("events", sa.Column("payout_id", sa.String(length=40), nullable=True))
    op.create_index(
        "ix_events_payout_id_id",
        "events",
        ["payout_id", "id"],
        unique=False,
        postgresql_where=sa.text("payout_id IS NOT NULL"),
    )
    op.create_foreign_key(op.f("fk_events_payout_id_payouts"), "events", "payouts", ["payout_id"], ["id"])


def downgrade() -> None:
    op.drop_constraint(op.f("fk_events_payout_id_payouts"), "events", type_="foreignkey")
    op.drop_index(
        "ix_events_payout_id_id", table_name="events", postgresql_where=sa.text("payout_id IS NOT NULL")
    )
    op.drop_column("events", "payout_id")
    op.drop_table("payout_daily_totals")
    op.drop_table("payout_limits")
    op.drop_index("ix_payouts_unsubmitted", table_name="payouts")
    op.drop_index("ix_payouts_reconcile_due", table_name="payouts")
    op.drop_index("ix_payouts_provider_reference", table_name="payouts")
    op.drop_index("ix_payouts_merchant_id_id", table_name="payouts")
    op.drop_table("payouts")
