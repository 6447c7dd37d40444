"""routing rules per merchant and mode, and each routed payment's route and attempts

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 04:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "routing_rules",
        sa.Column("merchant_id", sa.String(40), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("currency", sa.String(3), nullable=True),
        sa.Column("phone_country", sa.String(2), nullable=True),
        sa.Column("payment_method_type", sa.String(32), nullable=True),
        sa.Column("amount_min", sa.BigInteger(), nullable=True),
        sa.Column("amount_max", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_routing_rules_merchant_id_merchants")
        ),
        sa.PrimaryKeyConstraint("merchant_id", "livemode", "position", name=op.f("pk_routing_rules")),
    )
    # NULL for a payment that named its provider (or was confirmed onto one); else its route and the
    # attempts made along it (payments/routed.py).
    op.add_column("payments", sa.Column("routing", postgresql.JSONB(astext_type=sa.Text()), nullable=True))


def downgrade() -> None:
    op.drop_column("payments", "routing")
    op.drop_table("routing_rules")
