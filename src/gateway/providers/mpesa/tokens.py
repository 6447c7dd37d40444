"""Daraja OAuth tokens, one per app and mode, shared through Redis by every worker and replica.

Daraja invalidates the previous token when a new one is generated (providers.md §2.2), so tokens are
fetched one at a time: the fetcher holds a Redis lock (SET NX with a TTL), the others wait and re-read.
A token is refreshed before it expires, and dropped (once, only if it is still the cached one) when
Daraja answers 404.001.03 "Invalid Access Token".
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog
from redis.asyncio import Redis

from gateway.providers.base import ProviderTimedOut

log = structlog.get_logger("gateway.providers.mpesa")

# Compare-and-delete: only the holder releases a lock; only the token that failed is dropped.
_DELETE_IF_EQUAL = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class App:
    """One Daraja app (consumer key and secret) at one base URL."""

    base_url: str
    consumer_key: str
    consumer_secret: str

    @property
    def basic_auth(self) -> str:
        return "Basic " + base64.b64encode(f"{self.consumer_key}:{self.consumer_secret}".encode()).decode()

    @property
    def cache_id(self) -> str:
        # Changing the key (or the host) changes the cache entry; the key itself never reaches Redis.
        return hashlib.sha256(f"{self.base_url}\n{self.consumer_key}".encode()).hexdigest()[:24]


# Fetches a token: (access_token, expires_in seconds); raises ProviderFailure.
Fetch = Callable[[App], Awaitable[tuple[str, int]]]


class TokenCache:
    def __init__(
        self,
        redis: Redis,
        fetch: Fetch,
        *,
        refresh_margin_seconds: int = 300,
        lock_seconds: float = 30.0,
        poll_seconds: float = 0.05,
    ):
        self._redis = redis
        self._fetch = fetch
        self._margin = refresh_margin_seconds
        self._lock_ms = int(lock_seconds * 1000)
        self._wait = 2 * lock_seconds  # the holder may die: its lock lapses, and a waiter takes over
        self._poll = poll_seconds
        # Within one process, one coroutine per app goes to Redis on a miss; the rest queue here.
        self._local: dict[str, asyncio.Lock] = {}

    @staticmethod
    def _key(app: App) -> str:
        return f"mpesa:oauth:{app.cache_id}"

    async def _read(self, key: str) -> str | None:
        value = await self._redis.get(key)
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)

    async def get(self, app: App) -> str:
        key = self._key(app)
        token = await self._read(key)
        if token is not None:
            return token
        lock = self._local.setdefault(key, asyncio.Lock())
        async with lock:
            token = await self._read(key)
            if token is not None:
                return token
            return await self._fetch_once(app, key)

    async def _fetch_once(self, app: App, key: str) -> str:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait
        lock_key = key + ":lock"
        owner = uuid.uuid4().hex
        while True:
            if await self._redis.set(lock_key, owner, nx=True, px=self._lock_ms):
                try:
                    # Another worker may have stored one between our read and our lock.
                    token = await self._read(key)
                    if token is not None:
                        return token
                    token, expires_in = await self._fetch(app)
                    # Refreshed before Daraja expires it (3599 s): the cache entry lapses first.
                    ttl = max(expires_in - self._margin, min(expires_in, 60))
                    await self._redis.set(key, token, ex=ttl)
                    log.info("mpesa_token_fetched", app=app.cache_id, expires_in=expires_in, cached_for=ttl)
                    return token
                finally:
                    await self._redis.eval(_DELETE_IF_EQUAL, 1, lock_key, owner)
            # Someone else is fetching: wait, then re-read what it stored.
            await asyncio.sleep(self._poll)
            token = await self._read(key)
            if token is not None:
                return token
            if loop.time() > deadline:
                raise ProviderTimedOut("mpesa: waited too long for another worker's OAuth token")

    async def invalidate(self, app: App, token: str) -> None:
        """Drops `token` if it is still the cached one (a fresher token stays)."""
        await self._redis.eval(_DELETE_IF_EQUAL, 1, self._key(app), token)
