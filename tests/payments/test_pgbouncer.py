"""Under `--pgbouncer` (make test's second pass) the gateway's traffic really goes through PgBouncer in
transaction mode: its admin console counts the gateway's transactions and lists its connections.
Without the option there is no PgBouncer, and this test is skipped."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from gateway.embedded import EmbeddedServers
from gateway.embedded_pgbouncer import EmbeddedPgBouncer
from support import Gateway, Merchant, wait_for

BODY = {"amount": 2500, "currency": "KES", "provider": "sandbox", "payment_method": "pm_success"}
PAYMENTS = 5


async def _gateway_stats(bouncer: EmbeddedPgBouncer) -> dict[str, int]:
    rows = await asyncio.to_thread(bouncer.show, "STATS")
    row = next(r for r in rows if r["database"] == "gateway")
    return {k: int(row[k]) for k in ("total_xact_count", "total_query_count")}


async def test_the_gateway_reaches_postgres_through_pgbouncer_in_transaction_mode(
    request: pytest.FixtureRequest,
    servers: EmbeddedServers,
    gateway: Gateway,
    client: httpx.AsyncClient,
    merchant: Merchant,
) -> None:
    if not request.config.getoption("--pgbouncer"):
        pytest.skip("runs under --pgbouncer (make test's second pass)")
    bouncer = servers.pgbouncer
    assert bouncer is not None
    settings = gateway.ctx.settings
    assert (settings.database_url, settings.database.pgbouncer) == (bouncer.url, True)
    pools = {r["database"]: r for r in await asyncio.to_thread(bouncer.show, "POOLS")}
    assert pools["gateway"]["pool_mode"] == "transaction"

    before = await _gateway_stats(bouncer)
    for _ in range(PAYMENTS):
        headers = {**merchant.auth, "Idempotency-Key": str(uuid.uuid4())}
        created = await client.post("/v1/payments", json=BODY, headers=headers)
        assert (created.status_code, created.json()["status"]) == (201, "succeeded")
        got = await client.get(f"/v1/payments/{created.json()['id']}", headers=merchant.auth)
        assert (got.status_code, got.json()["status"]) == (200, "succeeded")

    # Each create is at least one transaction and each read one statement, all through PgBouncer
    # (its totals are refreshed every second: stats_period in the launcher's config).
    async def counted() -> bool:
        now = await _gateway_stats(bouncer)
        return now["total_xact_count"] - before["total_xact_count"] >= 2 * PAYMENTS

    await wait_for(counted, timeout=10)

    clients = await asyncio.to_thread(bouncer.show, "CLIENTS")
    mine = [c for c in clients if c["database"] == "gateway" and c["application_name"] == "gateway"]
    assert mine, clients
