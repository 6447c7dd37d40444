"""unconfirmed payments expire: an index on the age of payments still requires_payment_method

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 01:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The reconciler's expiry sweep reads the oldest unconfirmed payments; the partial index stays as
    # small as the number of checkouts open at once.
    op.create_index(
        "ix_payments_unconfirmed",
        "payments",
        ["created_at"],
        postgresql_where=sa.text("status = 'requires_payment_method'"),
    )


def downgrade() -> None:
    op.drop_index("ix_payments_unconfirmed", table_name="payments")
