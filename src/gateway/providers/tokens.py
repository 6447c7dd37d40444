"""OAuth access tokens shared through Redis by every worker and replica (M-Pesa, MoMo).

Some providers invalidate the previous token when a new one is issued (Daraja, docs/providers/mpesa.md), and
all of them limit how often one is asked for; so a token is fetched by one process at a time: the
fetcher holds a Redis lock (redis-py's Lock: SET NX with a TTL, released only by its holder), the
others wait and read what it stored. Within a process one coroutine per key goes to Redis; the rest
queue behind it. A token is cached a little shorter than it lives, so no call carries one about to
lapse. Redis trouble never stops payments: the token is then fetched and kept in this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

import structlog
from redis.asyncio import Redis
from redis.exceptions import LockError, RedisError

from gateway.providers.base import ProviderTimedOut

log = structlog.get_logger("gateway.providers.tokens")

# Fetches a token from the provider: (access_token, lifetime in seconds); raises ProviderFailure.
Fetch = Callable[[], Awaitable[tuple[str, int]]]

# Compare-and-delete: only the token that failed is dropped, never a fresher one.
_DELETE_IF_EQUAL = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


def cached_for(lifetime: int, margin: int) -> int:
    """How long a token is kept: `margin` seconds short of its life, yet at least a minute (or its
    whole life, if shorter)."""
    return max(lifetime - margin, min(lifetime, 60))


class TokenCache:
    def __init__(
        self,
        redis: Redis,
        *,
        lock_seconds: float,
        refresh_margin_seconds: int = 300,
        poll_seconds: float = 0.05,
    ):
        self._redis = redis
        self._lock_seconds = lock_seconds
        self._margin = refresh_margin_seconds
        self._poll = poll_seconds
        self._local: dict[str, asyncio.Lock] = {}
        # Used only while Redis is unreachable: key -> (token, monotonic expiry).
        self._fallback: dict[str, tuple[str, float]] = {}

    async def _read(self, key: str) -> str | None:
        value = await self._redis.get(key)
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)

    async def get(self, key: str, fetch: Fetch) -> str:
        """The token cached under `key`, else the one `fetch` brings (one fetch at a time)."""
        try:
            token = await self._read(key)
        except RedisError as e:
            return await self._without_redis(key, fetch, e)
        if token is not None:
            return token
        async with self._local.setdefault(key, asyncio.Lock()):
            try:
                return await self._fetch_shared(key, fetch)
            except RedisError as e:
                return await self._without_redis(key, fetch, e)

    async def _fetch_shared(self, key: str, fetch: Fetch) -> str:
        token = await self._read(key)  # another coroutine of this process may have just stored it
        if token is not None:
            return token
        # The holder may die: its lock lapses after lock_seconds, and a waiter takes over.
        lock = self._redis.lock(
            key + ":lock",
            timeout=self._lock_seconds,
            sleep=self._poll,
            blocking_timeout=2 * self._lock_seconds,
            thread_local=False,
        )
        try:
            acquired = await lock.acquire()
        except LockError:
            acquired = False
        if not acquired:
            token = await self._read(key)
            if token is not None:
                return token
            raise ProviderTimedOut(f"waited too long for another process's access token ({key})")
        try:
            # Another process may have stored one between our read and our lock.
            token = await self._read(key)
            if token is not None:
                return token
            token, lifetime = await fetch()
            ttl = cached_for(lifetime, self._margin)
            await self._redis.set(key, token, ex=ttl)
            log.info("provider_token_fetched", key=key, expires_in=lifetime, cached_for=ttl)
            return token
        finally:
            # It may have lapsed while we fetched; whoever holds it now releases it.
            with contextlib.suppress(LockError):
                await lock.release()

    async def _without_redis(self, key: str, fetch: Fetch, error: RedisError) -> str:
        log.warning("provider_token_cache_unavailable", key=key, error=type(error).__name__)
        async with self._local.setdefault(key, asyncio.Lock()):
            kept = self._fallback.get(key)
            if kept is not None and kept[1] > time.monotonic():
                return kept[0]
            token, lifetime = await fetch()
            self._fallback[key] = (token, time.monotonic() + cached_for(lifetime, self._margin))
            return token

    async def invalidate(self, key: str, token: str) -> None:
        """Drops `token` (the provider refused it) if it is still the cached one."""
        kept = self._fallback.get(key)
        if kept is not None and kept[0] == token:
            del self._fallback[key]
        try:
            await self._redis.eval(_DELETE_IF_EQUAL, 1, key, token)
        except RedisError as e:
            log.warning("provider_token_cache_unavailable", key=key, error=type(e).__name__)
