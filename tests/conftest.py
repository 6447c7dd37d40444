"""Real PostgreSQL and Redis (the project's own launcher) and a real uvicorn server on 127.0.0.1.

Each test makes its own merchants, so tests never see each other's rows and need no truncation.
With `--pgbouncer` (make test's second pass over the transaction paths) the gateway, its
migrations and the worker processes tests start reach PostgreSQL through a real PgBouncer in
transaction mode, with GATEWAY_DATABASE__PGBOUNCER=true.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import respx
import uvicorn
from pydantic import SecretStr

from drivers import provider_settings
from gateway.cli import run_migrations
from gateway.embedded import EmbeddedRedis, EmbeddedServers, free_port
from gateway.main import create_app
from gateway.merchants.service import create_merchant
from gateway.settings import (
    DatabaseSettings,
    DeliverySettings,
    RateLimitSettings,
    ReconcilerSettings,
    Settings,
    WebhookSettings,
)
from support import ADMIN_TOKEN, JWT_KEYS, RETRY_SCHEDULE, SECRETS_KEYS, Gateway, Merchant

UNREACHED_LIMITS = RateLimitSettings(
    live="100000/second",
    test="100000/second",
    failed_auth="1000000/minute",
    admin="100000/second",
    confirm_per_payment="100000/minute",
    confirm_per_ip="100000/minute",
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--pgbouncer",
        action="store_true",
        help="the gateway's database through a real PgBouncer in transaction mode (make pgbouncer)",
    )


@pytest.fixture(scope="session")
def servers(request: pytest.FixtureRequest) -> Iterator[EmbeddedServers]:
    through = bool(request.config.getoption("--pgbouncer"))
    with (
        tempfile.TemporaryDirectory(prefix="gateway-test-", ignore_cleanup_errors=True) as scratch,
        EmbeddedServers(Path(scratch) / "servers", ephemeral=True, with_pgbouncer=through) as s,
    ):
        run_migrations(s.database_url, DatabaseSettings(pgbouncer=through))
        yield s


@pytest.fixture(scope="session")
async def gateway(servers: EmbeddedServers) -> AsyncIterator[Gateway]:
    port = free_port()
    settings = Settings(
        environment="test",
        database_url=servers.database_url,
        database=DatabaseSettings(pgbouncer=servers.pgbouncer is not None),
        redis_url=servers.redis.url,
        host="127.0.0.1",
        port=port,
        log_level="WARNING",
        reconciler=ReconcilerSettings(run_in_process=False),
        webhooks=WebhookSettings(sweep_after_seconds=1.0, sweep_interval_seconds=0.25),
        api_key_cache_seconds=0,
        admin_token=SecretStr(ADMIN_TOKEN),
        jwt_keys=SecretStr(JWT_KEYS),
        # The limiter on every test's path, at limits no test reaches (tests/ratelimits/ build their
        # own gateways with small ones).
        rate_limits=UNREACHED_LIMITS,
        # Short retries so the schedule runs in a test; receivers live on 127.0.0.1.
        delivery=DeliverySettings(
            retry_schedule=RETRY_SCHEDULE,
            poll_interval_seconds=0.05,
            allow_private_targets=True,
            timeout_seconds=2,
            run_in_process=False,  # the fixture runs it, so a test can pause it
        ),
        # Each provider as its driver configures it (tests/drivers/).
        **provider_settings(),
        provider_timeout_seconds=2,
        secrets_keys=SecretStr(SECRETS_KEYS),
    )
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on"))
    # The test process owns the signals; the server runs as a task in the session's event loop.
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    gw = Gateway(f"http://127.0.0.1:{port}", app)
    gw.start_worker()
    yield gw
    await gw.stop_worker()
    server.should_exit = True
    await task


@pytest.fixture
def own_redis() -> Iterator[EmbeddedRedis]:
    """A Redis of the test's own, to stop and start again (outages), in a scratch directory."""
    with tempfile.TemporaryDirectory(prefix="gateway-own-redis-", ignore_cleanup_errors=True) as d:
        redis = EmbeddedRedis(Path(d), persist=False)
        redis.start()
        yield redis
        redis.stop()


@pytest.fixture
def provider_http() -> Iterator[respx.Router]:
    """Provider HTTP answered by respx; our own traffic on 127.0.0.1 passes through to the real server."""
    with respx.mock(assert_all_called=False) as router:
        router.route(host="127.0.0.1").pass_through()
        yield router


@pytest.fixture
async def client(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=100)
    async with httpx.AsyncClient(base_url=gateway.base_url, timeout=30, limits=limits) as c:
        yield c


async def _new_merchant(gateway: Gateway, name: str) -> Merchant:
    m = await create_merchant(gateway.ctx.db, name)
    return Merchant(m.merchant_id, m.secret_key)


@pytest.fixture
async def merchant(gateway: Gateway) -> Merchant:
    return await _new_merchant(gateway, "Merchant A")


@pytest.fixture
async def other_merchant(gateway: Gateway) -> Merchant:
    return await _new_merchant(gateway, "Merchant B")
