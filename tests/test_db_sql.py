"""positional(): `:name` parameters to asyncpg's `$n`, for the statements deferred to a commit."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.db.database import positional
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
