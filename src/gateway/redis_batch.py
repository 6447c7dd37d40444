"""Auto-pipelining for the hot paths' Redis commands.

Each request sends Redis an idempotency claim, a stored result and its events' PUBLISHes. Sent one
by one, each pays redis-py's per-command costs (pool checkout, retry wrapper, health check) and a
round trip. Here commands issued while a pipeline is in flight queue up and go together in the
next one: under load, one round trip serves many requests; alone, a command waits only for the
event loop's next turn.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis

ErrorHandler = Callable[[BaseException], None]


class RedisBatcher:
    def __init__(self, redis: Redis):
        self._redis = redis
        self._queue: list[tuple[tuple[Any, ...], asyncio.Future[Any] | ErrorHandler]] = []
        self._task: asyncio.Task[None] | None = None

    async def call(self, *args: Any) -> Any:
        """Sends one command and waits for its answer; a Redis error is raised here."""
        return await self.submit(*args)

    def submit(self, *args: Any) -> asyncio.Future[Any]:
        """Queues one command now (it joins the next pipeline) and returns its answer to come: a
        caller can start it, do more in the same turn (another command), and await it later."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._enqueue(args, future)
        return future

    def fire(self, on_error: ErrorHandler, *args: Any) -> None:
        """Sends one command without waiting; `on_error` hears of a failure."""
        self._enqueue(args, on_error)

    def _enqueue(self, args: tuple[Any, ...], waiter: asyncio.Future[Any] | ErrorHandler) -> None:
        self._queue.append((args, waiter))
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                try:
                    async with self._redis.pipeline(transaction=False) as pipe:
                        for args, _ in batch:
                            pipe.execute_command(*args)
                        results = await pipe.execute(raise_on_error=False)
                except BaseException as e:
                    for _, waiter in batch:
                        _fail(waiter, e)
                    if isinstance(e, asyncio.CancelledError):
                        raise
                    continue
                for (_, waiter), result in zip(batch, results, strict=True):
                    if isinstance(result, BaseException):
                        _fail(waiter, result)
                    elif isinstance(waiter, asyncio.Future) and not waiter.done():
                        waiter.set_result(result)
        finally:
            self._task = None
            for _, waiter in self._queue:  # cancelled with commands still queued
                _fail(waiter, asyncio.CancelledError())
            self._queue = []

    async def drain(self) -> None:
        """Waits until every queued command has been sent and answered."""
        while self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._task)


def _fail(waiter: asyncio.Future[Any] | ErrorHandler, error: BaseException) -> None:
    if isinstance(waiter, asyncio.Future):
        if not waiter.done():
            waiter.set_exception(error)
    else:
        waiter(error)
