"""payment method details and the provider's receipt on payments

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 16:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "payments",
        sa.Column("payment_method_details", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )
    # M-Pesa receipts were kept in Redis (mpesa:receipt:<CheckoutRequestID>) until now; payments
    # confirmed before this revision have none here, and their reversals answer receipt_unknown.
    op.add_column("payments", sa.Column("provider_receipt", sa.String(length=64), nullable=True))


def downgrade() -> None:
    op.drop_column("payments", "provider_receipt")
    op.drop_column("payments", "payment_method_details")
