"""The one way to the database: asyncpg, a pool per process (its connections kept between statements
by db/lease.py), and `Tx`, the unit of work.

Every domain reads and writes through here, hot paths and background work alike: hand-written SQL
(one prepared statement per text, cached by asyncpg per connection), rows as the tables' dataclasses
(db/rows.py). SQLAlchemy only describes the schema, for alembic; docs/architecture.md says why
(measured: SQLAlchemy Core cost a read more than everything else it does).

A transaction is `async with db.transaction() as tx`: it commits when the block ends and rolls
back if it raises. Row updates and events may be deferred: just before the commit they go to
PostgreSQL as one statement (data-modifying CTEs), one round trip for all. Events a transaction
appended are published (Redis) once it has committed.
"""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Protocol

import asyncpg  # type: ignore[import-untyped]
import orjson

from gateway.db.lease import Lease
from gateway.db.rows import RowSpec
from gateway.settings import DatabaseSettings

# asyncpg ships no type information: its records are Any here and typed by the RowSpec that reads them.
Record = Any

# A quoted literal (left as it is) or a `:name` that is not a `::cast`.
_NAMED = re.compile(r"'(?:[^']|'')*'|(?<!:):([a-z_][a-z0-9_]*)")


@functools.lru_cache(maxsize=512)
def positional(sql: str) -> tuple[str, tuple[str, ...]]:
    """`:name` parameters to asyncpg's `$n`, so deferred statements can be composed by name."""
    names: list[str] = []

    def number(m: re.Match[str]) -> str:
        name = m.group(1)
        if name is None:
            return m.group(0)
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    return _NAMED.sub(number, sql), tuple(names)


class Queries(Protocol):
    """What a repository needs: the database (one statement on a pooled connection) or a `Tx`."""

    async def fetch(self, sql: str, *args: Any) -> list[Record]: ...
    async def fetchrow(self, sql: str, *args: Any) -> Record | None: ...
    async def fetchval(self, sql: str, *args: Any) -> Any: ...
    async def execute(self, sql: str, *args: Any) -> str: ...


def _jsonb_encode(value: Any) -> str:
    return orjson.dumps(value).decode()


async def _init(conn: Any) -> None:
    await conn.set_type_codec("jsonb", encoder=_jsonb_encode, decoder=orjson.loads, schema="pg_catalog")
    await conn.set_type_codec("json", encoder=_jsonb_encode, decoder=orjson.loads, schema="pg_catalog")


async def _reset(conn: Any) -> None:
    # asyncpg's default reset (UNLISTEN, RESET ALL, advisory unlocks: a round trip on every release)
    # undoes what the gateway never does; an open transaction is the one state that can be left over.
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


def dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def connect_options(settings: DatabaseSettings) -> dict[str, Any]:
    """asyncpg's connection keywords for every pool of the gateway.

    Behind PgBouncer in transaction mode each transaction (and each statement outside one) may run
    on a different server connection, so a statement prepared on one is unknown on the next, or is
    another client's statement of the same name. Without a cache asyncpg prepares each statement
    unnamed and parses it again in the message flow that runs it (two parses per statement: the cost
    docs/scale-out.md measures). The gateway keeps no other session state: no SET, advisory lock,
    LISTEN, cursor or temporary table, and `_reset` only rolls back."""
    return {"statement_cache_size": 0} if settings.pgbouncer else {}


def _unique_statement_name() -> str:
    return f"__asyncpg_{uuid.uuid4().hex}__"


def sqlalchemy_connect_args(settings: DatabaseSettings) -> dict[str, Any]:
    """SQLAlchemy's asyncpg dialect (alembic's engine) prepares every statement by name, whatever
    asyncpg's cache: behind PgBouncer the names must be unique across clients, and its own cache off."""
    if not settings.pgbouncer:
        return {}
    return connect_options(settings) | {
        "prepared_statement_cache_size": 0,
        "prepared_statement_name_func": _unique_statement_name,
    }


class Conflict(Exception):
    """A row inserted at the commit (`Tx.insert`) met a unique key already taken: the commit's
    statement failed whole, so nothing of the transaction was written."""

    def __init__(self, constraint: str | None):
        super().__init__(constraint)
        self.constraint = constraint


class Changed(Exception):
    """A row read without a lock (`Tx.read`) was changed by another transaction before the commit
    (`Tx.guard`), or the guarded commit deadlocked with another writer of it and was undone: the
    commit's statement failed whole, so nothing of the transaction was written."""


# Raised by the commit's statement when a guarded row is no longer the version read (alembic 0013).
CHANGED_SQLSTATE = "GW409"


class Tx:
    """One transaction: its connection, the events to write and publish, and the writes left for
    the commit.

    BEGIN is sent with the first statement run through the transaction, not before: a transaction
    whose every write is deferred (an in-process create: the payment, its events, its outbox rows)
    is one statement at the commit, and one statement is a transaction of its own (one round trip
    where BEGIN, the statement and COMMIT were three)."""

    __slots__ = (
        "before_commit",
        "committed",
        "conn",
        "deferred",
        "event_followers",
        "events",
        "guards",
        "inserts",
        "names",
        "transaction",
        "updates",
    )

    def __init__(self, conn: Any, event_followers: tuple[tuple[str, str], ...] = ()):
        self.conn = conn
        self.transaction: Any = None  # asyncpg's, once a statement has begun it
        # Writes that follow the events' insert in the commit's statement (see Database).
        self.event_followers = event_followers
        self.events: list[dict[str, Any]] = []
        # Run just before the commit, in order; they may defer writes.
        self.before_commit: list[Callable[[Tx], Awaitable[None]]] = []
        # Run once it has committed (never if it rolls back or fails): what they say is then true.
        self.committed: list[Callable[[], object]] = []
        self.deferred: list[tuple[str, str, dict[str, Any]]] = []
        # (table, id) -> (spec, row): rows inserted at the commit, ahead of every other write.
        self.inserts: dict[tuple[str, str], tuple[RowSpec[Any], Any]] = {}
        # (table, id) -> (spec, field -> value): merged per row, as a statement updates a row once.
        self.updates: dict[tuple[str, str], tuple[RowSpec[Any], dict[str, Any]]] = {}
        self.names: dict[str, dict[str, str]] = {}
        # (table, id) -> the row version (xmin) the transaction's decisions were made on.
        self.guards: dict[tuple[str, str], int] = {}

    async def _begin(self) -> None:
        if self.transaction is None:
            self.transaction = self.conn.transaction()
            await self.transaction.start()

    async def fetch(self, sql: str, *args: Any) -> list[Record]:
        await self._begin()
        return await self.conn.fetch(sql, *args)  # type: ignore[no-any-return]

    async def fetchrow(self, sql: str, *args: Any) -> Record | None:
        await self._begin()
        return await self.conn.fetchrow(sql, *args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        await self._begin()
        return await self.conn.fetchval(sql, *args)

    async def execute(self, sql: str, *args: Any) -> str:
        await self._begin()
        return await self.conn.execute(sql, *args)  # type: ignore[no-any-return]

    async def read(self, sql: str, *args: Any) -> Record | None:
        """One row read outside the transaction: no BEGIN, no lock (a transaction already begun reads
        it within). Another transaction may change the row before the commit: `guard` what was read."""
        return await self.conn.fetchrow(sql, *args)

    def guard(self, spec: RowSpec[Any], row_id: str, version: int) -> None:
        """The commit writes only if the row is still the version `version` (its `xmin`, which every
        update of it changes), else it fails whole with `Changed`: a read and a commit in two
        statements, where a lock needed BEGIN, the locking read, the commit's statement and COMMIT.
        Optimistic: the caller goes the locking way when it is raised."""
        self.guards[(spec.table, row_id)] = version

    def after_commit(self, action: Callable[[], object]) -> None:
        """Runs `action` once the transaction has committed, never if it does not: a log line that
        says a row moved (a guarded commit may fail with Changed, an insert with Conflict)."""
        self.committed.append(action)

    def say(self, emit: Callable[..., object], event: str, **fields: Any) -> None:
        """A log line about what the transaction does (`emit`: a logger's method), said once it has
        committed (`after_commit`)."""
        self.after_commit(functools.partial(emit, event, **fields))

    def insert(self, spec: RowSpec[Any], row_id: str, row: Any) -> None:
        """Inserts `row` at the commit, first of the deferred writes, with the values it has then:
        an `update` of it in this transaction is already on the row. A unique key it meets raises
        `Conflict` from the commit."""
        self.inserts[(spec.table, row_id)] = (spec, row)

    def update(self, spec: RowSpec[Any], row_id: str, changes: dict[str, Any]) -> None:
        """Writes `changes` (field -> value) to a row at the commit, with the other deferred writes."""
        if not changes:
            return
        key = (spec.table, row_id)
        if key in self.inserts:  # not written yet: the insert carries the row as it is at the commit
            row = self.inserts[key][1]
            for field, value in changes.items():
                setattr(row, field, value)
        elif key in self.updates:
            self.updates[key][1].update(changes)
        else:
            self.updates[key] = (spec, dict(changes))

    def name_for(self, kind: str, key: str) -> str:
        """The name of a deferred write about `key` (a row's id): `kind0`, `kind1`… in the order of
        first use in this transaction, never the id itself, so that the commit's statement has the
        same text from one transaction to the next and asyncpg prepares it once per connection (a
        name made of the id made every commit a new statement: prepared, planned, cached, evicted)."""
        names = self.names.setdefault(kind, {})
        return names.setdefault(key, f"{kind}{len(names)}")

    def defer(self, name: str, body: str, params: dict[str, Any]) -> None:
        """A write for the commit's statement: `name AS (body)`. `body` takes `:name` parameters,
        unique across the transaction, and may refer to CTEs deferred before it."""
        self.deferred.append((name, body, params))

    async def _flush(self) -> None:
        for prepare in self.before_commit:
            await prepare(self)
        inserts = []
        for n, (spec, row) in enumerate(self.inserts.values()):
            marks = ", ".join(f":i{n}_{f}" for f in spec.fields)
            params = {f"i{n}_{f}": getattr(row, f) for f in spec.fields}
            inserts.append((f"i{n}", f"INSERT INTO {spec.table} ({spec.columns}) VALUES ({marks})", params))  # noqa: S608
        self.inserts = {}
        checks = []  # CTEs that each yield one row if their guarded row is still the version read
        for n, ((table, row_id), (spec, changes)) in enumerate(self.updates.items()):
            sets = ", ".join(f"{spec.column_of[f]} = :u{n}_{f}" for f in changes)
            params = {f"u{n}_{f}": v for f, v in changes.items()} | {f"u{n}_id": row_id}
            body = f"UPDATE {table} SET {sets} WHERE id = :u{n}_id"  # noqa: S608
            version = self.guards.pop((table, row_id), None)
            if version is not None:
                body += f" AND xmin = :u{n}_v RETURNING 1"
                params[f"u{n}_v"] = version
                checks.append(f"u{n}")
            self.defer(f"u{n}", body, params)
        self.updates = {}
        for n, ((table, row_id), version) in enumerate(self.guards.items()):
            # FOR SHARE: waits for a transaction changing the row, then checks the version it left
            # (a plain read would see the old version and let the commit pass under that change).
            body = f"SELECT 1 FROM {table} WHERE id = :g{n}_id AND xmin = :g{n}_v FOR SHARE"  # noqa: S608
            self.defer(f"g{n}", body, {f"g{n}_id": row_id, f"g{n}_v": version})
            checks.append(f"g{n}")
        self.guards = {}
        self.deferred[:0] = inserts
        if not self.deferred:
            return
        last = "SELECT 1"
        if checks:
            # A guarded row changed: gateway_changed() raises, and the statement fails whole.
            found = " + ".join(f"(SELECT count(*) FROM {c})" for c in checks)  # noqa: S608
            last = f"SELECT CASE WHEN {found} = {len(checks)} THEN 1 ELSE gateway_changed() END"
        sql = "WITH " + ",\n".join(f"{name} AS ({body})" for name, body, _ in self.deferred) + "\n" + last
        values: dict[str, Any] = {}
        for _, _, p in self.deferred:
            values |= p
        self.deferred = []
        text, names = positional(sql)
        try:
            await self.conn.execute(text, *(values[n] for n in names))
        except asyncpg.UniqueViolationError as e:
            if not inserts:
                raise
            raise Conflict(e.constraint_name) from e
        except asyncpg.DeadlockDetectedError as e:
            if not checks:
                raise
            raise Changed from e  # it raced another writer of a guarded row, and was the one undone
        except asyncpg.PostgresError as e:
            if checks and e.sqlstate == CHANGED_SQLSTATE:
                raise Changed from e
            raise


class Database:
    """The connections (`Lease`, in front of asyncpg's pool). `on_commit` receives the events each
    transaction committed (the live publisher); `event_followers` are (name, SQL) writes deferred
    after the events' insert, which they read as the CTE `ev` (the outbound webhooks' outbox), so the
    events domain need not know its readers."""

    def __init__(
        self,
        pool: Any,
        on_commit: Callable[[list[dict[str, Any]]], None] | None = None,
        event_followers: tuple[tuple[str, str], ...] = (),
    ):
        self.pool = pool
        self.lease = Lease(pool)
        self.on_commit = on_commit
        self.event_followers = event_followers

    @classmethod
    async def connect(cls, url: str, settings: DatabaseSettings) -> Database:
        pool = await asyncpg.create_pool(
            dsn(url),
            min_size=1,
            max_size=settings.pool_size,
            init=_init,
            reset=_reset,
            server_settings={"application_name": "gateway"},
            **connect_options(settings),
        )
        return cls(pool)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """Commits when the block ends, rolls back if it raises."""
        async with self.lease.held() as conn:
            tx = Tx(conn, self.event_followers)
            try:
                yield tx
                await tx._flush()
            except BaseException:
                if tx.transaction is not None:
                    await tx.transaction.rollback()
                raise
            if tx.transaction is not None:
                await tx.transaction.commit()
        if tx.events and self.on_commit is not None:
            self.on_commit(tx.events)
        for action in tx.committed:
            action()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        """A connection of the process's for a block (given back when it ends); never `pool.acquire`,
        which cannot see the connections the lease keeps idle."""
        async with self.lease.held() as conn:
            yield conn

    # One statement on a connection of the lease's, outside any transaction (the hot reads' path).
    async def fetch(self, sql: str, *args: Any) -> list[Record]:
        return await self._one("fetch", sql, args)  # type: ignore[no-any-return]

    async def fetchrow(self, sql: str, *args: Any) -> Record | None:
        return await self._one("fetchrow", sql, args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return await self._one("fetchval", sql, args)

    async def execute(self, sql: str, *args: Any) -> str:
        return await self._one("execute", sql, args)  # type: ignore[no-any-return]

    async def _one(self, method: str, sql: str, args: tuple[Any, ...]) -> Any:
        # Written out, not through `connection()`: a context manager's frames cost a GET ~2%.
        conn = await self.lease.take()
        try:
            result = await getattr(conn, method)(sql, *args)
        except BaseException:
            await self.lease.give_back(conn, clean=False)
            raise
        await self.lease.give_back(conn, clean=True)
        return result

    async def close(self) -> None:
        await self.lease.close()
