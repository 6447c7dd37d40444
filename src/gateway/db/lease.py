"""Connections kept by the process between statements, in front of asyncpg's pool.

asyncpg's pool costs every checkout a task (its release runs under `asyncio.shield`), a timeout
context and its connection reset. Measured in process (one connection, `SELECT 1`): 58 to 66 µs of the
client's CPU a statement through `pool.fetchrow`, 30 to 32 µs on a connection held (bench/README.md,
#15). So a connection given back clean (its work ended without an exception, no transaction open,
not closed) is kept here and taken again by the next caller, LIFO; anything else goes back through
the pool, which cleans it up (rolls back, waits out a cancellation, replaces a broken one) as before.

The pool still makes the connections and bounds their number. A caller that finds none kept waits in
the pool, and while one does, connections given back go to the pool (to the waiter), not here: no
caller waits on a connection kept idle. Kept connections stay open while the process lives, as
`pool_size` allows (asyncpg closed a pooled one idle for 5 minutes)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg  # type: ignore[import-untyped]


class Lease:
    __slots__ = ("_idle", "_waiting", "pool")

    def __init__(self, pool: Any) -> None:
        self.pool = pool
        self._idle: list[Any] = []
        self._waiting = 0  # callers inside pool.acquire()

    async def take(self) -> Any:
        while self._idle:
            conn = self._idle.pop()
            if _usable(conn):
                return conn
            await self.pool.release(conn)  # lost while kept (a server restart): the pool cleans up
        self._waiting += 1
        try:
            return await self.pool.acquire()
        finally:
            self._waiting -= 1

    async def give_back(self, conn: Any, *, clean: bool) -> None:
        """`clean`: the caller's work with it ended without an exception."""
        if clean and not self._waiting and _usable(conn) and not conn.is_in_transaction():
            self._idle.append(conn)
        else:
            await self.pool.release(conn)

    @asynccontextmanager
    async def held(self) -> AsyncIterator[Any]:
        conn = await self.take()
        try:
            yield conn
        except BaseException:
            await self.give_back(conn, clean=False)
            raise
        await self.give_back(conn, clean=True)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            await self.pool.release(conn)
        await self.pool.close()


def _usable(conn: Any) -> bool:
    """Open, and still ours: when its connection is lost (the server went away) the pool takes the
    connection back on its own, and the handle we kept then refuses every call."""
    try:
        return not conn.is_closed()
    except asyncpg.InterfaceError:
        return False
