"""events: no foreign keys (an append-only log written with the row it records)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 10:40:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KEYS = (
    ("fk_events_merchant_id_merchants", "merchant_id", "merchants"),
    ("fk_events_payment_id_payments", "payment_id", "payments"),
    ("fk_events_refund_id_refunds", "refund_id", "refunds"),
    ("fk_events_payout_id_payouts", "payout_id", "payouts"),
)


def upgrade() -> None:
    for name, _, _ in _KEYS:
        op.drop_constraint(name, "events", type_="foreignkey")


def downgrade() -> None:
    # NOT VALID, then VALIDATE: the scan of every event runs without blocking the writes of payments.
    for name, column, table in _KEYS:
        op.create_foreign_key(name, "events", table, [column], ["id"], postgresql_not_valid=True)
        op.execute(f"ALTER TABLE events VALIDATE CONSTRAINT {name}")
