"""What every adapter shares: the HTTP call's error mapping (providers/http.py) and the token cache
(providers/tokens.py), on a real Redis; provider HTTP is respx."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import respx
from redis.asyncio import Redis

from gateway.embedded import EmbeddedServers, free_port
from gateway.providers.accounts import Accounts
from gateway.providers.base import ProviderMisconfigured, ProviderTimedOut, ProviderUnavailable
from gateway.providers.http import HttpProvider, ProviderClient
from gateway.providers.tokens import TokenCache

API = "https://provider.test"


@pytest.fixture
async def redis(servers: EmbeddedServers) -> AsyncIterator[Redis]:
    r = Redis.from_url(servers.redis.url)
    yield r
    await r.aclose()


@pytest.fixture
async def client() -> AsyncIterator[ProviderClient]:
    c = ProviderClient("acme", 2.0, base_url=API)
    yield c
    await c.aclose()


# --- the HTTP call -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (httpx.ConnectTimeout("connect timed out"), ProviderTimedOut),
        (httpx.ReadTimeout("read timed out"), ProviderTimedOut),
        (httpx.ConnectError("refused"), ProviderUnavailable),
        (httpx.RemoteProtocolError("peer closed"), ProviderUnavailable),
    ],
)
async def test_transport_failures_become_provider_errors(
    client: ProviderClient, failure: Exception, expected: type[Exception]
) -> None:
    with respx.mock:
        respx.post(f"{API}/charges").mock(side_effect=failure)
        with pytest.raises(expected, match="acme: POST /charges"):
            await client.call("POST", "/charges", mode="test", body={"amount": 1})


async def test_a_deadline_bounds_the_whole_request(client: ProviderClient) -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(1)
        return httpx.Response(200, json={})

    with respx.mock:
        respx.get(f"{API}/slow").mock(side_effect=slow)
        with pytest.raises(ProviderTimedOut):
            await client.call("GET", "/slow", deadline_seconds=0.05)


@pytest.mark.parametrize("status", [401, 403])
async def test_rejected_credentials_are_a_misconfiguration(client: ProviderClient, status: int) -> None:
    with respx.mock:
        respx.get(f"{API}/me").respond(status, json={"message": "Invalid key"})
        with pytest.raises(
            ProviderMisconfigured, match=f"acme rejected the live-mode credentials \\({status}\\)"
        ):
            await client.call("GET", "/me", mode="live")
        # A provider that renews a token on 401 reads the answer itself.
        answer = await client.call("GET", "/me", mode="live", credentials_checked=False)
    assert (answer.status, answer.reason()) == (status, "Invalid key")


@pytest.mark.parametrize("status", [429, 500, 502, 503])
async def test_outages_are_unavailable(client: ProviderClient, status: int) -> None:
    with respx.mock:
        respx.get(f"{API}/x").respond(status, json={"errorCode": "500.001.1001"})
        with pytest.raises(ProviderUnavailable, match=f"answered {status}"):
            await client.call("GET", "/x")
        # A provider whose 5xx bodies carry a verdict (Daraja) reads them itself.
        answer = await client.call("GET", "/x", outages_checked=False)
    assert answer.object() == {"errorCode": "500.001.1001"}


async def test_other_answers_come_back_with_their_body(client: ProviderClient) -> None:
    with respx.mock:
        route = respx.post(f"{API}/charges").respond(400, json={"message": "Invalid currency"})
        answer = await client.call("POST", "/charges", body={"amount": 1}, params={"expand": "x"})
        respx.get(f"{API}/empty").respond(404, content=b"")
        empty = await client.call("GET", "/empty")
    sent = route.calls[0].request
    assert (sent.content, sent.headers["content-type"], sent.url.params["expand"]) == (
        b'{"amount":1}',
        "application/json",
        "x",
    )
    assert sent.headers["user-agent"] == "gateway-acme/1"
    assert (answer.ok, answer.status, answer.json()) == (False, 400, {"message": "Invalid currency"})
    assert (empty.status, empty.json(), empty.object()) == (404, None, None)


@dataclass(frozen=True)
class Key:
    secret: str | None


class Acme(HttpProvider[Key]):
    name = "acme"

    def bearer_token(self, account: Key) -> str | None:
        return account.secret


async def test_an_adapter_calls_with_its_modes_bearer_token() -> None:
    acme = Acme(Accounts(test=Key("sk_test_1"), live=Key(None)), ProviderClient("acme", 2.0, base_url=API))
    try:
        assert (acme.is_configured(False), acme.is_configured(True)) == (True, False)
        with respx.mock:
            route = respx.get(f"{API}/me").respond(200, json={"ok": True})
            answer = await acme._request("GET", "/me", False, headers={"Idempotency-Key": "pay_1"})
            with pytest.raises(ProviderMisconfigured, match="acme: no live-mode secret key is configured"):
                await acme._request("GET", "/me", True)
        assert answer.object() == {"ok": True}
        assert route.call_count == 1
        assert route.calls[0].request.headers["authorization"] == "Bearer sk_test_1"
        assert route.calls[0].request.headers["idempotency-key"] == "pay_1"
    finally:
        await acme.aclose()


# --- the token cache -------------------------------------------------------------------------------------


class Issuer:
    """A provider's token endpoint: counts its calls, takes a while, and issues a new token each time."""

    def __init__(self, seconds: float = 0.2, lifetime: int = 3_600):
        self.calls = 0
        self._seconds = seconds
        self._lifetime = lifetime

    async def fetch(self) -> tuple[str, int]:
        self.calls += 1
        await asyncio.sleep(self._seconds)
        return f"token-{self.calls}", self._lifetime


async def test_concurrent_requests_in_two_processes_fetch_one_token(redis: Redis) -> None:
    key = f"test:token:{uuid.uuid4().hex}"
    issuer = Issuer()
    # Two caches on one Redis: two worker processes.
    caches = [TokenCache(redis, lock_seconds=5), TokenCache(redis, lock_seconds=5)]
    tokens = await asyncio.gather(*(caches[i % 2].get(key, issuer.fetch) for i in range(10)))
    assert issuer.calls == 1
    assert set(tokens) == {"token-1"}
    # Kept a margin short of its life, and no lock left behind.
    assert 3_290 <= await redis.ttl(key) <= 3_300
    assert not await redis.exists(key + ":lock")


async def test_a_refused_token_is_dropped_only_if_it_is_still_the_cached_one(redis: Redis) -> None:
    key = f"test:token:{uuid.uuid4().hex}"
    issuer = Issuer(seconds=0)
    cache = TokenCache(redis, lock_seconds=5)
    assert await cache.get(key, issuer.fetch) == "token-1"
    await cache.invalidate(key, "some-older-token")
    assert await cache.get(key, issuer.fetch) == "token-1"
    await cache.invalidate(key, "token-1")
    assert await cache.get(key, issuer.fetch) == "token-2"
    assert issuer.calls == 2


async def test_a_lock_whose_holder_died_lapses(redis: Redis) -> None:
    key = f"test:token:{uuid.uuid4().hex}"
    await redis.set(key + ":lock", "a-process-that-died", px=300)
    issuer = Issuer(seconds=0)
    assert await TokenCache(redis, lock_seconds=0.5).get(key, issuer.fetch) == "token-1"
    assert issuer.calls == 1


async def test_a_redis_outage_still_gets_a_token() -> None:
    # Nothing listens on this port: every Redis command fails.
    down = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5)
    try:
        issuer = Issuer(seconds=0.05)
        cache = TokenCache(down, lock_seconds=5)
        tokens = await asyncio.gather(*(cache.get("test:token:down", issuer.fetch) for _ in range(5)))
        assert set(tokens) == {"token-1"}
        assert issuer.calls == 1  # kept in the process while Redis is away
        await cache.invalidate("test:token:down", "token-1")
        assert await cache.get("test:token:down", issuer.fetch) == "token-2"
    finally:
        await down.aclose()
