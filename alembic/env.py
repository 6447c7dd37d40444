"""Async alembic environment: the URL comes from the gateway's settings or the caller's config."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from gateway.db.database import sqlalchemy_connect_args
from gateway.schema import metadata
from gateway.settings import DatabaseSettings, get_settings

config = context.config
target_metadata = metadata


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url") or get_settings().database_url
    if not url:
        raise SystemExit("No database URL: set GATEWAY_DATABASE_URL (or run `gateway dev`).")
    return url


def _database() -> DatabaseSettings:
    # `gateway.cli.run_migrations` hands its caller's settings over; the alembic command reads ours.
    given = config.attributes.get("database")
    return given if isinstance(given, DatabaseSettings) else get_settings().database


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    # One connection, closed at the end (NullPool): behind PgBouncer nothing outlives the run.
    engine = create_async_engine(
        _url(), poolclass=NullPool, connect_args=sqlalchemy_connect_args(_database())
    )
    async with engine.connect() as conn:
        await conn.run_sync(_run)
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_async())
