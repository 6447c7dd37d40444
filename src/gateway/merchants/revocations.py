"""The revoked keys an access token is checked against, held in process.

Access tokens are checked without the database, so revocation reaches them through Redis: whoever
revokes a key runs `ZADD gateway:revoked-keys <unix seconds> <key_id>` and then broadcasts topic
"key". Every process holds the set's last hour (a token lives 15 minutes: an older revocation has
outlived every token made before it) and reloads it on every "key" message and on every broadcast
(re)connect, when messages may have been missed. A score in the future (a rolled key's expiry,
should the roll record it) takes effect at that time.

A check waits for a reload that is under way, so a token is never judged on a set older than the
last message this process heard.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

log = structlog.get_logger("gateway.auth")

REVOKED_KEYS = "gateway:revoked-keys"
WINDOW_SECONDS = 3600


async def record(redis: Redis, key_id: str, at: float) -> None:
    """Schedules `key_id`'s refusal at `at` (unix seconds) for every token, and drops the entries
    older than the window, which no process reads any more (so the set stays as small as the last
    hour's revocations plus the rolls still to come)."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zadd(REVOKED_KEYS, {key_id: int(at)})
        pipe.zremrangebyscore(REVOKED_KEYS, "-inf", f"({int(time.time()) - WINDOW_SECONDS}")
        await pipe.execute()


class RevokedKeys:
    def __init__(self, redis: Redis):
        self._redis = redis
        self._revoked: dict[str, float] = {}
        self._loaded = False
        self._reload: asyncio.Task[None] | None = None
        self._again = False

    def invalidate(self, _value: str | None = None) -> None:
        """The broadcast's callback: reload (once more, if a reload is already under way)."""
        if self._reload is not None and not self._reload.done():
            self._again = True
            return
        self._reload = asyncio.get_running_loop().create_task(self._reload_until_quiet())

    async def _reload_until_quiet(self) -> None:
        while True:
            self._again = False
            try:
                await self.load()
            except (RedisError, OSError) as e:
                # The broadcast tells us None again when Redis is back, and we reload then.
                log.warning("revoked_keys_reload_failed", error=type(e).__name__)
                return
            if not self._again:
                return

    async def load(self) -> None:
        rows: list[Any] = await self._redis.zrangebyscore(
            REVOKED_KEYS, time.time() - WINDOW_SECONDS, "+inf", withscores=True
        )
        revoked: dict[str, float] = {}
        for member, score in rows:  # (member, score) pairs: withscores
            revoked[member.decode() if isinstance(member, bytes) else str(member)] = float(score)
        self._revoked = revoked
        self._loaded = True

    async def is_revoked(self, key_id: str) -> bool:
        reload = self._reload
        if reload is not None and not reload.done():
            await asyncio.shield(reload)
        if not self._loaded:  # never loaded (Redis was away at start): now, or an outage (503)
            await self.load()
        at = self._revoked.get(key_id)
        return at is not None and at <= time.time()

    async def aclose(self) -> None:
        if self._reload is not None and not self._reload.done():
            self._reload.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reload
