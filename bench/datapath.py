"""The data path's choice, measured: SQLAlchemy Core against plain asyncpg for the gateway's commonest
statements, on the same embedded PostgreSQL, one connection, one process.

`python -m bench.datapath` prints the gateway process's CPU per statement (what the API's ratios pay;
PostgreSQL's own share is the same statement either way) for: a payment read by id, and a payment
inserted. Both sides read full rows into plain objects: asyncpg through the gateway's RowSpec,
SQLAlchemy Core through its compiled-statement cache and Row objects (no ORM). docs/architecture.md
records the figures.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.cli import run_migrations
from gateway.db.database import Database
from gateway.embedded import EmbeddedPostgres
from gateway.kit.ids import new_id
from gateway.merchants.service import create_merchant
from gateway.payments import repository
from gateway.payments.models import PAYMENTS, Payment, payments
from gateway.settings import DatabaseSettings

N = 4_000


def _payment(merchant_id: str) -> Payment:
    now = datetime.now(UTC)
    return Payment(
        id=new_id("pay"),
        merchant_id=merchant_id,
        livemode=False,
        amount=1500,
        amount_refunded=0,
        currency="KES",
        status="succeeded",
        provider="sandbox",
        payment_method="pm_success",
        customer_name="Amina",
        customer_email="amina@example.com",
        customer_phone="+254712345678",
        customer_location=None,
        description=None,
        reference="order_1",
        metadata_={"order": "1"},
        return_url=None,
        provider_reference="sbx_1",
        next_action=None,
        failure_code=None,
        failure_message=None,
        idempotency_key=new_id("key"),
        request_fingerprint="0" * 64,
        provider_lease_until=None,
        next_reconcile_at=None,
        reconcile_attempts=0,
        created_at=now,
        updated_at=now,
        completed_at=now,
        payment_method_details={
            "type": "card",
            "brand": "visa",
            "last4": "4242",
            "exp_month": 12,
            "exp_year": 2034,
            "funding": "credit",
            "country": "US",
        },
        provider_receipt=None,
        provider_account_id=None,
        client_secret="secret",
        checkout_id=new_id("cs"),
    )


async def _cpu_per_call(call: Callable[[], Awaitable[Any]]) -> float:
    for _ in range(200):  # warm: prepared statements, caches
        await call()
    started = time.process_time()
    for _ in range(N):
        await call()
    return (time.process_time() - started) / N * 1e6


async def measure(url: str) -> dict[str, float]:
    db = await Database.connect(url, DatabaseSettings(pool_size=1))
    engine = create_async_engine(url, pool_size=1)
    out: dict[str, float] = {}
    try:
        merchant = await create_merchant(db, "Datapath merchant")
        row = _payment(merchant.merchant_id)
        await repository.insert(db, row)
        get_core = select(payments).where(
            payments.c.id == row.id, payments.c.merchant_id == row.merchant_id, payments.c.livemode.is_(False)
        )
        insert_core = insert(payments).returning(*payments.c)  # built once: its compiled form is cached
        async with engine.connect() as conn:

            async def core_get() -> Any:
                return Payment(*(await conn.execute(get_core)).one())

            async def core_insert() -> Any:
                values = dict(
                    zip(
                        PAYMENTS.column_of.values(),
                        PAYMENTS.values(_payment(merchant.merchant_id)),
                        strict=True,
                    )
                )
                return Payment(*(await conn.execute(insert_core, values)).one())

            async def pg_get() -> Any:
                return await repository.get(db, row.merchant_id, False, row.id)

            async def pg_insert() -> Any:
                return await repository.insert(db, _payment(merchant.merchant_id))

            out["asyncpg: read by id"] = await _cpu_per_call(pg_get)
            out["SQLAlchemy Core: read by id"] = await _cpu_per_call(core_get)
            out["asyncpg: insert ... returning"] = await _cpu_per_call(pg_insert)
            out["SQLAlchemy Core: insert ... returning"] = await _cpu_per_call(core_insert)
            await conn.rollback()
    finally:
        await engine.dispose()
        await db.close()
    return out


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="gateway-datapath-"))
    pg = EmbeddedPostgres(root / "postgres", fast_unsafe=True)
    url = pg.start()
    try:
        run_migrations(url)
        results = asyncio.run(measure(url))
    finally:
        pg.stop()
    print(f"gateway-process CPU per statement, µs (mean of {N}, after 200 to warm):")
    for name, us in results.items():
        print(f"  {name:40s} {us:7.0f}")


if __name__ == "__main__":
    main()
