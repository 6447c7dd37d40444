"""The schema's metadata: table definitions (each domain's models.py) register here for alembic.

SQLAlchemy describes the schema and nothing else: migrations are generated from it, and the
gateway reads and writes through asyncpg (db/database.py). The naming convention keeps constraint
names stable across migrations.
"""

from __future__ import annotations

from sqlalchemy import DateTime, MetaData, func
from sqlalchemy.sql.schema import Column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


def timestamp(name: str, *, nullable: bool = True, now: bool = False) -> Column[object]:
    """A timestamptz column; `now`: defaults to the insert's time (and is then never null)."""
    if now:
        return Column(name, DateTime(timezone=True), server_default=func.now(), nullable=False)
    return Column(name, DateTime(timezone=True), nullable=nullable)
