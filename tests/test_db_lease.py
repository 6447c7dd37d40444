"""The lease (db/lease.py): connections given back clean are kept and taken again; anything else goes
back through asyncpg's pool; no caller waits on a connection kept idle; closing lets go of them all."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg  # type: ignore[import-untyped]
import pytest

from gateway.db.database import Database, dsn
from gateway.embedded import EmbeddedServers
from gateway.settings import DatabaseSettings


@pytest.fixture
async def db(servers: EmbeddedServers) -> AsyncIterator[Database]:
    database = await Database.connect(servers.postgres.url, DatabaseSettings(pool_size=2))
    try:
        yield database
    finally:
        await asyncio.wait_for(database.close(), 10)  # a kept connection would make the pool's close hang


async def _backend(db: Database) -> int:
    return int(await db.fetchval("SELECT pg_backend_pid()"))


async def test_a_connection_given_back_clean_is_taken_again(db: Database) -> None:
    first = await _backend(db)
    assert [await _backend(db) for _ in range(5)] == [first] * 5
    async with db.transaction() as tx:
        assert await tx.fetchval("SELECT pg_backend_pid()") == first
    assert len(db.lease._idle) == 1


async def test_a_connection_whose_work_failed_goes_back_through_the_pool(db: Database) -> None:
    await _backend(db)

    async def fail_in_a_transaction() -> None:
        async with db.connection() as conn:
            await conn.execute("BEGIN")  # left open by a failure: the pool rolls it back
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        await fail_in_a_transaction()
    assert db.lease._idle == []
    async with db.connection() as conn:
        assert not conn.is_in_transaction()


async def test_a_connection_left_in_a_transaction_is_not_kept(db: Database) -> None:
    async with db.connection() as conn:
        await conn.execute("BEGIN")
    assert db.lease._idle == []
    async with db.connection() as conn:
        assert not conn.is_in_transaction()


async def test_a_caller_waiting_for_a_connection_gets_the_next_one_given_back(db: Database) -> None:
    """Both connections held, a third caller waits in the pool; the first given back goes to it, not
    to the idle list where it would wait for nothing."""
    holding = asyncio.Event()
    let_go = asyncio.Event()

    async def hold() -> None:
        async with db.connection() as conn:
            await conn.fetchval("SELECT 1")
            holding.set()
            await let_go.wait()

    holders = [asyncio.create_task(hold()) for _ in range(2)]
    await holding.wait()
    await asyncio.sleep(0.1)
    third = asyncio.create_task(db.fetchval("SELECT 3"))
    await asyncio.sleep(0.2)
    assert not third.done()  # both are held
    let_go.set()
    assert await asyncio.wait_for(third, 5) == 3
    await asyncio.gather(*holders)


async def test_a_kept_connection_the_server_closed_is_not_taken_again(
    db: Database, servers: EmbeddedServers
) -> None:
    """Its server process ended while it was kept (a restart, an administrator): the pool has taken it
    back on its own; the next statement runs on another connection."""
    kept = await _backend(db)
    admin = await asyncpg.connect(dsn(servers.postgres.url))
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", kept)
    finally:
        await admin.close()
    await asyncio.sleep(0.2)  # the loop reads the end of the kept connection's socket
    assert await _backend(db) != kept
