"""gateway_changed(): fails a commit whose rows read without a lock changed since (db/database.py)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 10:30:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Called by a commit's statement (Tx.guard) when a guarded row is no longer the version its
    # transaction read: the error fails the statement whole, and its SQLSTATE says why.
    op.execute(
        """
        CREATE FUNCTION gateway_changed() RETURNS integer LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'a row changed since it was read' USING ERRCODE = 'GW409';
        END
        $$
        """
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION gateway_changed()")
