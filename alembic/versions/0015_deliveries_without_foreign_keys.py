"""webhook_deliveries: no foreign keys (written with its event, from the endpoint the outbox joins)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 11:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KEYS = (
    ("fk_webhook_deliveries_endpoint_id_webhook_endpoints", "endpoint_id", "webhook_endpoints"),
    ("fk_webhook_deliveries_event_id_events", "event_id", "events"),
    ("fk_webhook_deliveries_merchant_id_merchants", "merchant_id", "merchants"),
)


def upgrade() -> None:
    for name, _, _ in _KEYS:
        op.drop_constraint(name, "webhook_deliveries", type_="foreignkey")


def downgrade() -> None:
    # NOT VALID, then VALIDATE: the scan of every delivery runs without blocking the outbox's writes.
    for name, column, table in _KEYS:
        op.create_foreign_key(name, "webhook_deliveries", table, [column], ["id"], postgresql_not_valid=True)
        op.execute(f"ALTER TABLE webhook_deliveries VALIDATE CONSTRAINT {name}")
