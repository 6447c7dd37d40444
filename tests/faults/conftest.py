"""Fixtures of the fault suite: its own servers (never the session's, which other tests share), a
merchant on them, the Paystack stand-in, and the API as a `gateway serve` process."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from faults.counting import merchant_client_of
from faults.peers import FakePaystack, fake_paystack
from faults.processes import FaultServers, GatewayProcess, api_process, new_merchant
from gateway.cli import run_migrations
from gateway.embedded import EmbeddedServers, free_port
from support import PAYSTACK_SECRET_KEY, Merchant


@pytest.fixture(scope="session")
def fault_servers_root() -> Iterator[EmbeddedServers]:
    with (
        tempfile.TemporaryDirectory(prefix="gateway-faults-", ignore_cleanup_errors=True) as scratch,
        EmbeddedServers(Path(scratch) / "servers", ephemeral=True) as s,
    ):
        run_migrations(s.postgres.url)
        yield s


@pytest.fixture
async def fault_servers(fault_servers_root: EmbeddedServers) -> AsyncIterator[FaultServers]:
    servers = FaultServers(fault_servers_root)
    await servers.ensure_up()  # whatever an earlier test left stopped
    yield servers
    await servers.ensure_up()


@pytest.fixture
async def fault_merchant(fault_servers: FaultServers) -> Merchant:
    return await new_merchant(fault_servers)


@pytest.fixture
async def paystack() -> AsyncIterator[FakePaystack]:
    async with fake_paystack(free_port(), PAYSTACK_SECRET_KEY) as p:
        yield p


@pytest.fixture
async def api(
    fault_servers: FaultServers, paystack: FakePaystack, tmp_path: Path
) -> AsyncIterator[GatewayProcess]:
    async with api_process(fault_servers, tmp_path, paystack.base_url) as process:
        yield process


@pytest.fixture
async def merchant_client(api: GatewayProcess, fault_merchant: Merchant) -> AsyncIterator[httpx.AsyncClient]:
    async with merchant_client_of(api, fault_merchant) as c:
        yield c
