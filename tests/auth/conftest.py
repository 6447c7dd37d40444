"""A second gateway as its own process (`gateway serve`) on the suite's PostgreSQL and Redis, caching
keys for 30 s as production does: what the session gateway changes must reach it through Redis."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from faults.processes import GatewayProcess
from gateway.embedded import EmbeddedServers, free_port
from support import JWT_KEYS


@pytest.fixture(scope="module")
async def replica(
    servers: EmbeddedServers, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[GatewayProcess]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env |= {
        "GATEWAY_DATABASE_URL": servers.postgres.url,
        "GATEWAY_REDIS_URL": servers.redis.url,
        "GATEWAY_ENVIRONMENT": "test",
        "GATEWAY_LOG_LEVEL": "WARNING",
        "GATEWAY_API_KEY_CACHE_SECONDS": "30",
        "GATEWAY_JWT_KEYS": JWT_KEYS,
        "GATEWAY_SANDBOX__SEND_WEBHOOKS": "false",
        "GATEWAY_DELIVERY__RUN_IN_PROCESS": "false",
        "GATEWAY_RECONCILER__RUN_IN_PROCESS": "false",
    }
    process = GatewayProcess("serve", env, tmp_path_factory.mktemp("replica") / "api.log", port=free_port())
    await process.start()
    try:
        yield process
    finally:
        await process.stop()
