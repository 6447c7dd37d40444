"""What GATEWAY_DATABASE__PGBOUNCER costs, measured: the gateway's commonest statements on one
connection, one process, the same embedded PostgreSQL (fsync on), three ways: straight to PostgreSQL
with asyncpg's statement cache (the default), straight with the setting on (no cache), and through
PgBouncer in transaction mode with the setting on (what operators behind PgBouncer run).

`python -m bench.pgbouncer_cost` prints, per statement, the gateway process's CPU and the wall time
per call (one call at a time: the round trips, not throughput). docs/scale-out.md records the figures.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench.datapath import _payment
from gateway.cli import run_migrations
from gateway.db.database import Database
from gateway.embedded import EmbeddedPostgres
from gateway.embedded_pgbouncer import start_pgbouncer
from gateway.merchants.service import create_merchant
from gateway.payments import repository
from gateway.settings import DatabaseSettings

N = 2_000


async def _per_call(call: Callable[[], Awaitable[Any]]) -> tuple[float, float]:
    for _ in range(200):  # warm: caches, the pool's connection
        await call()
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(N):
        await call()
    return (time.process_time() - cpu) / N * 1e6, (time.perf_counter() - wall) / N * 1e6


async def measure(url: str, pgbouncer: bool) -> dict[str, tuple[float, float]]:
    db = await Database.connect(url, DatabaseSettings(pool_size=1, pgbouncer=pgbouncer))
    try:
        merchant = await create_merchant(db, "PgBouncer cost merchant")
        row = _payment(merchant.merchant_id)
        await repository.insert(db, row)

        async def read() -> Any:
            return await repository.get(db, row.merchant_id, False, row.id)

        async def insert_in_tx() -> Any:
            async with db.transaction() as tx:
                await repository.insert(tx, _payment(merchant.merchant_id))

        return {"read by id": await _per_call(read), "insert, own transaction": await _per_call(insert_in_tx)}
    finally:
        await db.close()


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="gateway-pgbouncer-cost-"))
    pg = EmbeddedPostgres(root / "postgres")
    direct = pg.start()
    bouncer = start_pgbouncer(pg)
    try:
        run_migrations(direct, DatabaseSettings())
        ways = [
            ("direct, statement cache", direct, False),
            ("direct, GATEWAY_DATABASE__PGBOUNCER=true", direct, True),
            ("PgBouncer (transaction), GATEWAY_DATABASE__PGBOUNCER=true", bouncer.url, True),
        ]
        print(f"{'way':<60} {'statement':<26} {'CPU µs/call':>12} {'wall µs/call':>13}")
        for name, url, flag in ways:
            for statement, (cpu, wall) in asyncio.run(measure(url, flag)).items():
                print(f"{name:<60} {statement:<26} {cpu:>12.0f} {wall:>13.0f}")
    finally:
        bouncer.stop()
        pg.stop()


if __name__ == "__main__":
    main()
