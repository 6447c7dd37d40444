"""The hot paths' database access: plain asyncpg on a pool of its own, beside SQLAlchemy's.

Creating, reading and listing payments are most of a gateway's traffic, and the benchmark showed
the ORM's unit of work costing more than everything else a request does (bench/README.md). These
paths send hand-written SQL through asyncpg: one prepared statement per query text (asyncpg caches
them per connection), rows as `asyncpg.Record`, a transaction per `Pg.transaction()`. Events
appended in such a transaction are published to Redis after it commits, as the ORM session's are.
"""

from __future__ import annotations

import functools
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import orjson

from gateway.settings import DatabaseSettings

# asyncpg ships no type information: its objects are Any here and typed where they are read. A
# Connection is a connection or the pool itself (whose fetch/fetchrow take one for one statement).
Connection = Any
Record = Any

_NAMED = re.compile(r"(?<!:):([a-z_][a-z0-9_]*)")


@functools.lru_cache(maxsize=512)
def positional(sql: str) -> tuple[str, tuple[str, ...]]:
    """`:name` parameters (SQLAlchemy's text() style) to asyncpg's `$n`, so one SQL text serves both."""
    names: list[str] = []

    def number(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    return _NAMED.sub(number, sql), tuple(names)


def _jsonb_encode(value: Any) -> str:
    return orjson.dumps(value).decode()


async def _init(conn: Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=_jsonb_encode, decoder=orjson.loads, schema="pg_catalog")
    await conn.set_type_codec("json", encoder=_jsonb_encode, decoder=orjson.loads, schema="pg_catalog")


async def _reset(conn: Connection) -> None:
    # asyncpg's default reset (UNLISTEN, RESET ALL, advisory unlocks: a round trip on every release)
    # undoes what these paths never do; an open transaction is the one state that can be left over.
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


def dsn(sqlalchemy_url: str) -> str:
    return sqlalchemy_url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def create_pool(sqlalchemy_url: str, settings: DatabaseSettings) -> Any:
    return await asyncpg.create_pool(
        dsn(sqlalchemy_url),
        min_size=1,
        max_size=settings.fast_pool_size,
        init=_init,
        reset=_reset,
        server_settings={"application_name": "gateway"},
    )


class Tx:
    """One open transaction: its connection, the events to write and publish, and the writes left
    for the commit. Repositories may defer a write (`defer`); just before the commit, every deferred
    write goes to PostgreSQL as one statement (data-modifying CTEs), one round trip for all."""

    __slots__ = ("before_commit", "conn", "deferred", "events", "state")

    def __init__(self, conn: Connection):
        self.conn = conn
        self.events: list[dict[str, Any]] = []
        # Run just before the commit, in order; they may defer writes.
        self.before_commit: list[Callable[[Tx], Awaitable[None]]] = []
        self.deferred: list[tuple[str, str, dict[str, Any]]] = []
        # Repositories' own bookkeeping for this transaction, under keys of their own.
        self.state: dict[str, Any] = {}

    def defer(self, name: str, body: str, params: dict[str, Any]) -> None:
        """A write for the commit's statement: `name AS (body)`. `body` takes `:name` parameters,
        unique across the transaction, and may refer to CTEs deferred before it."""
        self.deferred.append((name, body, params))

    async def write_deferred(self) -> None:
        if not self.deferred:
            return
        sql = "WITH " + ",\n".join(f"{name} AS ({body})" for name, body, _ in self.deferred) + "\nSELECT 1"
        params: dict[str, Any] = {}
        for _, _, p in self.deferred:
            params |= p
        self.deferred = []
        text, names = positional(sql)
        await self.conn.execute(text, *(params[n] for n in names))


class Pg:
    def __init__(self, pool: Any, on_commit: Callable[[list[dict[str, Any]]], None] | None = None):
        self.pool = pool
        self._on_commit = on_commit

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """Commits when the block ends, rolls back if it raises."""
        async with self.pool.acquire() as conn:
            tx = Tx(conn)
            async with conn.transaction():
                yield tx
                for prepare in tx.before_commit:
                    await prepare(tx)
                await tx.write_deferred()
        if tx.events and self._on_commit is not None:
            self._on_commit(tx.events)

    async def close(self) -> None:
        await self.pool.close()
