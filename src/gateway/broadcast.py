"""Invalidations every process hears within a second: one Redis pub/sub channel, topics by name.

A process that changes something other processes cache (a revoked key, a replaced provider account)
publishes `<topic>:<value>` after its commit; every process's listener hands `value` to the topic's
callbacks. Messages sent while a listener was disconnected are lost, so on every (re)connect the
callbacks are told `None`: forget everything. Caches therefore never outlive a missed message.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Callable

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

log = structlog.get_logger("gateway.broadcast")

CHANNEL = "gateway:invalidate"
Callback = Callable[[str | None], None]


class Broadcast:
    def __init__(self, redis: Redis, *, retry_seconds: float = 0.5):
        self._redis = redis
        self._retry = retry_seconds
        self._callbacks: dict[str, list[Callback]] = defaultdict(list)
        self._task: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()

    def on(self, topic: str, callback: Callback) -> None:
        """Calls `callback(value)` for each `topic` message, and `callback(None)` on (re)connects."""
        self._callbacks[topic].append(callback)

    async def publish(self, topic: str, value: str) -> None:
        """Tells every process (this one first, so it never serves what it just changed)."""
        self._dispatch(topic, value)
        await self._redis.publish(CHANNEL, f"{topic}:{value}")

    def _dispatch(self, topic: str, value: str | None) -> None:
        for callback in self._callbacks.get(topic, ()):
            callback(value)

    def _forget_all(self) -> None:
        for topic in list(self._callbacks):
            self._dispatch(topic, None)

    async def start(self, wait_seconds: float = 2.0) -> None:
        """Starts listening; waits a little for the subscription so a fresh process hears at once."""
        self._task = asyncio.create_task(self._listen(), name="broadcast")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._listening.wait(), wait_seconds)

    async def _listen(self) -> None:
        while True:
            try:
                async with self._redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(CHANNEL)
                    self._forget_all()
                    self._listening.set()
                    async for message in pubsub.listen():
                        data = message.get("data")
                        if isinstance(data, bytes):
                            topic, _, value = data.decode().partition(":")
                            self._dispatch(topic, value)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as e:
                if self._listening.is_set():
                    log.warning("broadcast_disconnected", error=type(e).__name__)
                self._listening.clear()
                self._forget_all()
                await asyncio.sleep(self._retry)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
