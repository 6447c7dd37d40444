"""payments.provider_private: what a rail keeps about the current attempt and never shows

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 04:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Orange Money's pay_token (its status query needs it) and the digest of its notif_token (its
    # notifications carry it): per attempt, never in a response, an event or a log.
    op.add_column("payments", sa.Column("provider_private", postgresql.JSONB(), nullable=True))


def downgrade() -> None:
    op.drop_column("payments", "provider_private")
