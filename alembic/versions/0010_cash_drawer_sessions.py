"""cash drawer sessions: cash_sessions (one open per drawer), and the session a cash payment or
refund is counted in

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 04:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cash_sessions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.Column("drawer", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("opening_float", sa.BigInteger(), nullable=False),
        sa.Column("counted", sa.BigInteger(), nullable=True),
        sa.Column("payments_total", sa.BigInteger(), nullable=True),
        sa.Column("refunds_total", sa.BigInteger(), nullable=True),
        sa.Column("expected", sa.BigInteger(), nullable=True),
        sa.Column("difference", sa.BigInteger(), nullable=True),
        sa.Column("opened_by", sa.String(length=40), nullable=False),
        sa.Column("opened_by_name", sa.String(length=100), nullable=True),
        sa.Column("closed_by", sa.String(length=40), nullable=True),
        sa.Column("closed_by_name", sa.String(length=100), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "metadata",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("request_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("close_idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("close_request_fingerprint", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("status IN ('open', 'closed')", name=op.f("ck_cash_sessions_status_known")),
        sa.CheckConstraint("currency ~ '^[A-Z]{3}$'", name=op.f("ck_cash_sessions_currency_iso")),
        sa.CheckConstraint("opening_float >= 0", name=op.f("ck_cash_sessions_float_not_negative")),
        sa.CheckConstraint(
            "status = 'open' OR (closed_at IS NOT NULL AND closed_by IS NOT NULL AND counted >= 0"
            " AND expected = opening_float + payments_total - refunds_total"
            " AND difference = counted - expected)",
            name=op.f("ck_cash_sessions_closed_adds_up"),
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_cash_sessions_merchant_id_merchants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cash_sessions")),
        sa.UniqueConstraint(
            "merchant_id", "idempotency_key", name=op.f("uq_cash_sessions_merchant_id_idempotency_key")
        ),
    )
    op.create_index(
        "ix_cash_sessions_merchant_id_id",
        "cash_sessions",
        ["merchant_id", sa.literal_column("id DESC")],
        unique=False,
    )
    op.create_index(
        "ix_cash_sessions_merchant_drawer_id",
        "cash_sessions",
        ["merchant_id", "drawer", sa.literal_column("id DESC")],
        unique=False,
    )
    # One open session per drawer: two opens racing get one row, the other a unique violation.
    op.create_index(
        "ix_cash_sessions_one_open",
        "cash_sessions",
        ["merchant_id", "livemode", "drawer"],
        unique=True,
        postgresql_where=sa.text("status = 'open'"),
    )
    # Nullable columns without a default: no table rewrite, only a catalog change.
    op.add_column("payments", sa.Column("cash_session", sa.String(length=40), nullable=True))
    op.create_foreign_key(
        op.f("fk_payments_cash_session_cash_sessions"), "payments", "cash_sessions", ["cash_session"], ["id"]
    )
    op.create_index(
        "ix_payments_cash_session",
        "payments",
        ["cash_session"],
        postgresql_where=sa.text("cash_session IS NOT NULL"),
    )
    op.add_column("refunds", sa.Column("cash_session", sa.String(length=40), nullable=True))
    op.create_foreign_key(
        op.f("fk_refunds_cash_session_cash_sessions"), "refunds", "cash_sessions", ["cash_session"], ["id"]
    )
    op.create_index(
        "ix_refunds_cash_session",
        "refunds",
        ["cash_session"],
        postgresql_where=sa.text("cash_session IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_refunds_cash_session", table_name="refunds")
    op.drop_constraint(op.f("fk_refunds_cash_session_cash_sessions"), "refunds", type_="foreignkey")
    op.drop_column("refunds", "cash_session")
    op.drop_index("ix_payments_cash_session", table_name="payments")
    op.drop_constraint(op.f("fk_payments_cash_session_cash_sessions"), "payments", type_="foreignkey")
    op.drop_column("payments", "cash_session")
    op.drop_index("ix_cash_sessions_one_open", table_name="cash_sessions")
    op.drop_index("ix_cash_sessions_merchant_drawer_id", table_name="cash_sessions")
    op.drop_index("ix_cash_sessions_merchant_id_id", table_name="cash_sessions")
    op.drop_table("cash_sessions")
