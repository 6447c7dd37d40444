"""merchants' status and limits, key types, scopes and expiry, provider accounts

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 19:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("merchants", sa.Column("status", sa.String(16), server_default="active", nullable=False))
    op.add_column("merchants", sa.Column("rate_limit", sa.Integer(), nullable=True))
    op.add_column(
        "merchants",
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.add_column("api_keys", sa.Column("type", sa.String(16), server_default="secret", nullable=False))
    op.add_column("api_keys", sa.Column("scopes", postgresql.ARRAY(sa.String(40)), nullable=True))
    op.add_column("api_keys", sa.Column("last4", sa.String(4), server_default="", nullable=False))
    op.add_column("api_keys", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("api_keys", sa.Column("rolled_to", sa.String(40), nullable=True))
    op.create_table(
        "provider_accounts",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("merchant_id", sa.String(40), nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(16), server_default=sa.text("'active'"), nullable=False),
        sa.Column("secrets", sa.Text(), nullable=False),
        sa.Column("secrets_key_id", sa.String(32), nullable=False),
        sa.Column(
            "hints",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "settings",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_provider_accounts_merchant_id_merchants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provider_accounts")),
        sa.UniqueConstraint(
            "merchant_id",
            "provider",
            "livemode",
            name=op.f("uq_provider_accounts_merchant_id_provider_livemode"),
        ),
    )
    op.add_column("payments", sa.Column("provider_account_id", sa.String(40), nullable=True))
    op.create_foreign_key(
        op.f("fk_payments_provider_account_id_provider_accounts"),
        "payments",
        "provider_accounts",
        ["provider_account_id"],
        ["id"],
    )
    op.add_column(
        "inbound_webhooks",
        sa.Column("account_id", sa.String(40), server_default=sa.text("''"), nullable=False),
    )
    op.drop_constraint("uq_inbound_webhooks_provider_provider_event_id", "inbound_webhooks", type_="unique")
    op.create_unique_constraint(
        op.f("uq_inbound_webhooks_provider_account_id_provider_event_id"),
        "inbound_webhooks",
        ["provider", "account_id", "provider_event_id"],
    )


def downgrade() -> None:
    op.drop_constraint(
        op.f("uq_inbound_webhooks_provider_account_id_provider_event_id"), "inbound_webhooks", type_="unique"
    )
    op.create_unique_constraint(
        "uq_inbound_webhooks_provider_provider_event_id",
        "inbound_webhooks",
        ["provider", "provider_event_id"],
    )
    op.drop_column("inbound_webhooks", "account_id")
    op.drop_constraint(
        op.f("fk_payments_provider_account_id_provider_accounts"), "payments", type_="foreignkey"
    )
    op.drop_column("payments", "provider_account_id")
    op.drop_table("provider_accounts")
    for column in ("rolled_to", "expires_at", "last4", "scopes", "type"):
        op.drop_column("api_keys", column)
    for column in ("updated_at", "rate_limit", "status"):
        op.drop_column("merchants", column)
