"""What other processes hear: the broadcast channel and the revoked-keys set, read as a peer would."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from gateway.broadcast import CHANNEL
from support import Gateway


class Heard:
    def __init__(self, pubsub: PubSub):
        self._pubsub = pubsub
        self.messages: list[str] = []

    async def until(self, expected: str, times: int = 1, timeout: float = 2.0) -> list[str]:
        """Every message heard until `expected` has come `times` times (AssertionError if not)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self.messages.count(expected) < times:
            left = deadline - asyncio.get_running_loop().time()
            assert left > 0, f"{expected!r} not heard; heard {self.messages}"
            message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=left)
            if message is not None:
                self.messages.append(message["data"].decode())
        return self.messages

    async def quiet(self, seconds: float = 0.3) -> list[str]:
        """What arrives in the next `seconds` (to show nothing was announced)."""
        deadline = asyncio.get_running_loop().time() + seconds
        while (left := deadline - asyncio.get_running_loop().time()) > 0:
            message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=left)
            if message is not None:
                self.messages.append(message["data"].decode())
        return self.messages


@contextlib.asynccontextmanager
async def listening(gateway: Gateway) -> AsyncIterator[Heard]:
    """Subscribed to the invalidation channel before the block runs."""
    redis = Redis.from_url(gateway.ctx.settings.redis_url)
    pubsub = redis.pubsub()
    try:
        await pubsub.subscribe(CHANNEL)
        while (await pubsub.get_message(timeout=1.0)) is None:  # the subscription's confirmation
            pass
        yield Heard(pubsub)
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
        await redis.aclose()


async def revoked_at(gateway: Gateway, key_id: str) -> float | None:
    """The key's score in gateway:revoked-keys (unix seconds), None if it is not there."""
    score: float | None = await gateway.ctx.redis.zscore("gateway:revoked-keys", key_id)
    return score
