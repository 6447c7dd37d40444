"""checkout: payments without a provider yet, client secrets, checkout ids, attempts, payment links

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 22:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_RANDOM_HEX = "replace(gen_random_uuid()::text, '-', '')"


def upgrade() -> None:
    op.create_table(
        "payment_links",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("merchant_id", sa.String(40), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.Column("slug", sa.String(64), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("description", sa.String(1000), nullable=True),
        sa.Column("reusable", sa.Boolean(), nullable=False),
        sa.Column("min_amount", sa.BigInteger(), nullable=True),
        sa.Column("max_amount", sa.BigInteger(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "metadata",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_payment_links_merchant_id_merchants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_links")),
        sa.UniqueConstraint("slug", name=op.f("uq_payment_links_slug")),
        sa.CheckConstraint("currency ~ '^[A-Z]{3}$'", name=op.f("ck_payment_links_currency_iso")),
    )
    op.create_index(
        "ix_payment_links_merchant_id", "payment_links", ["merchant_id", sa.text("id DESC")], unique=False
    )
    op.alter_column("payments", "provider", existing_type=sa.String(32), nullable=True)
    op.add_column("payments", sa.Column("client_secret", sa.String(100), nullable=True))
    op.add_column("payments", sa.Column("checkout_id", sa.String(40), nullable=True))
    op.execute(
        f"UPDATE payments SET client_secret = id || '_secret_' || {_RANDOM_HEX},"  # noqa: S608
        f" checkout_id = 'cs_' || {_RANDOM_HEX}"
    )
    op.alter_column("payments", "client_secret", existing_type=sa.String(100), nullable=False)
    op.alter_column("payments", "checkout_id", existing_type=sa.String(40), nullable=False)
    op.create_unique_constraint(op.f("uq_payments_checkout_id"), "payments", ["checkout_id"])
    op.add_column("payments", sa.Column("locale", sa.String(5), nullable=True))
    op.add_column(
        "payments", sa.Column("allow_retries", sa.Boolean(), server_default=sa.true(), nullable=False)
    )
    op.add_column("payments", sa.Column("payment_link_id", sa.String(40), nullable=True))
    op.add_column("payments", sa.Column("attempt", sa.SmallInteger(), server_default="0", nullable=False))
    op.add_column("payments", sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=True))
    op.create_foreign_key(
        op.f("fk_payments_payment_link_id_payment_links"),
        "payments",
        "payment_links",
        ["payment_link_id"],
        ["id"],
    )
    op.create_index(
        "ix_payments_merchant_payment_link_id",
        "payments",
        ["merchant_id", "payment_link_id", sa.text("id DESC")],
        unique=False,
        postgresql_where=sa.text("payment_link_id IS NOT NULL"),
    )
    op.create_table(
        "payment_attempts",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("payment_id", sa.String(40), nullable=False),
        sa.Column("number", sa.SmallInteger(), nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("payment_method", sa.String(100), nullable=True),
        sa.Column("provider_account_id", sa.String(40), nullable=True),
        sa.Column("provider_reference", sa.String(255), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("failure_code", sa.String(64), nullable=True),
        sa.Column("failure_message", sa.String(1000), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["payments.id"], name=op.f("fk_payment_attempts_payment_id_payments")
        ),
        sa.ForeignKeyConstraint(
            ["provider_account_id"],
            ["provider_accounts.id"],
            name=op.f("fk_payment_attempts_provider_account_id_provider_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_attempts")),
        sa.UniqueConstraint("payment_id", "number", name=op.f("uq_payment_attempts_payment_id_number")),
    )
    op.create_index(
        "ix_payment_attempts_provider_reference",
        "payment_attempts",
        ["provider", "provider_reference"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_payment_attempts_provider_reference", table_name="payment_attempts")
    op.drop_table("payment_attempts")
    op.drop_index("ix_payments_merchant_payment_link_id", table_name="payments")
    op.drop_constraint(op.f("fk_payments_payment_link_id_payment_links"), "payments", type_="foreignkey")
    op.drop_column("payments", "attempted_at")
    op.drop_column("payments", "attempt")
    op.drop_column("payments", "payment_link_id")
    op.drop_column("payments", "allow_retries")
    op.drop_column("payments", "locale")
    op.drop_constraint(op.f("uq_payments_checkout_id"), "payments", type_="unique")
    op.drop_column("payments", "checkout_id")
    op.drop_column("payments", "client_secret")
    op.execute("UPDATE payments SET provider = 'sandbox' WHERE provider IS NULL")
    op.alter_column("payments", "provider", existing_type=sa.String(32), nullable=False)
    op.drop_index("ix_payment_links_merchant_id", table_name="payment_links")
    op.drop_table("payment_links")
