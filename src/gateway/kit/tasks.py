"""Fire-and-forget work that is still owned: kept referenced, its failure logged, cancelled on close.

A bare `asyncio.create_task` whose result nobody awaits loses its exception to "Task exception was
never retrieved" at garbage collection, long after and without context.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import structlog

log = structlog.get_logger("gateway.tasks")


class TaskGroup:
    def __init__(self, owner: str):
        self._owner = owner
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        if self._closed:  # shutting down: what it would use is closing too
            coro.close()
            return
        task = asyncio.create_task(coro, name=f"{self._owner}:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("background_task_failed", task=task.get_name(), error=type(exc).__name__, exc_info=exc)

    async def aclose(self) -> None:
        self._closed = True
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
