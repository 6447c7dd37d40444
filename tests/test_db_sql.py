"""positional(): `:name` parameters to asyncpg's `$n`, for the statements deferred to a commit; the
migrated schema against the declared one, and the newest migrations undone and done again."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.cli import alembic_config, run_migrations
from gateway.db.database import dsn, positional
from gateway.db.rows import RowSpec
from gateway.embedded import EmbeddedServers
from gateway.payments.models import payments
from gateway.schema import metadata


def test_names_become_numbers_in_order_of_first_use() -> None:
    sql, names = positional("UPDATE t SET a = :u0_a, b = :b WHERE id = :u0_id AND a <> :u0_a")
    assert sql == "UPDATE t SET a = $1, b = $2 WHERE id = $3 AND a <> $1"
    assert names == ("u0_a", "b", "u0_id")


def test_casts_are_not_parameters() -> None:
    sql, names = positional("SELECT CAST(:data AS text[]), :x::jsonb, 'a::b'")
    assert sql == "SELECT CAST($1 AS text[]), $2::jsonb, 'a::b'"
    assert names == ("data", "x")


def test_names_inside_quoted_literals_are_text() -> None:
    sql, names = positional("SELECT 1 WHERE a = 'x:y' AND b = :b AND c = 'it''s :c'")
    assert sql == "SELECT 1 WHERE a = 'x:y' AND b = $1 AND c = 'it''s :c'"
    assert names == ("b",)


def _compare(conn: Connection) -> list[Any]:
    diff: list[Any] = compare_metadata(
        MigrationContext.configure(conn, opts={"compare_type": True}), metadata
    )
    return diff


async def test_the_migrated_database_is_the_schema_the_code_declares(servers: EmbeddedServers) -> None:
    """alembic's autogenerate finds nothing to do: the tables in gateway/schema.py are the migrated ones."""
    engine = create_async_engine(servers.postgres.url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda c: compare_metadata(
                    MigrationContext.configure(c, opts={"compare_type": True}), metadata
                )
            )
    finally:
        await engine.dispose()
    assert diff == []


def test_a_row_type_that_is_not_its_table_is_refused() -> None:
    @dataclasses.dataclass
    class Short:
        id: str

    with pytest.raises(TypeError, match="Short does not match the columns of payments"):
        RowSpec(payments, Short)


async def _keys_and_guard(url: str) -> tuple[list[str], int]:
    """The foreign keys of events and webhook_deliveries (validated), and whether gateway_changed() is."""
    conn = await asyncpg.connect(dsn(url))
    try:
        keys = await conn.fetch(
            "SELECT conname FROM pg_constraint WHERE conrelid IN ('events'::regclass,"
            " 'webhook_deliveries'::regclass) AND contype = 'f' AND convalidated ORDER BY conname"
        )
        guard = await conn.fetchval("SELECT count(*) FROM pg_proc WHERE proname = 'gateway_changed'")
    finally:
        await conn.close()
    return [k[0] for k in keys], guard


async def test_the_newest_migrations_undo_and_redo(servers: EmbeddedServers) -> None:
    """0015 and 0014 (webhook_deliveries and events without foreign keys) and 0013 (gateway_changed())
    undone on a database of their own: the seven keys come back, validated, and the function goes;
    done again, as before."""
    name = f"roundtrip_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(dsn(servers.postgres.url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = servers.postgres.url.rsplit("/", 1)[0] + "/" + name
        # alembic runs its own event loop (alembic/env.py): in a thread of its own here.
        await asyncio.to_thread(run_migrations, url)
        assert await _keys_and_guard(url) == ([], 1)
        await asyncio.to_thread(command.downgrade, alembic_config(url), "0012")
        keys = ["fk_events_merchant_id_merchants", "fk_events_payment_id_payments"]
        keys += ["fk_events_payout_id_payouts", "fk_events_refund_id_refunds"]
        keys += [
            "fk_webhook_deliveries_endpoint_id_webhook_endpoints",
            "fk_webhook_deliveries_event_id_events",
        ]
        keys += ["fk_webhook_deliveries_merchant_id_merchants"]
        assert await _keys_and_guard(url) == (keys, 0)
        await asyncio.to_thread(run_migrations, url)
        assert await _keys_and_guard(url) == ([], 1)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
