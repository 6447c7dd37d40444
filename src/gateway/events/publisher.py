"""Live fan-out: events a transaction appended are published to Redis once it commits.

Channel `gateway:events:{merchant_id}:{test|live}`, message: the event as the API shows it. Any
replica's subscribers see events written by any other. A crash between commit and publish loses
only the live push: streams resume from the events table (Last-Event-ID).
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import event
from sqlalchemy.orm import Session

from gateway.events.repository import PENDING_PUBLISH
from gateway.events.schemas import EventData, EventOut

log = structlog.get_logger("gateway.events.publisher")


def channel(merchant_id: str, livemode: bool) -> str:
    return f"gateway:events:{merchant_id}:{'live' if livemode else 'test'}"


def _message(values: dict[str, Any]) -> bytes:
    out = EventOut(
        id=values["id"],
        type=values["type"],
        livemode=values["livemode"],
        source=values["source"],
        created_at=values["created_at"],
        data=EventData(object=values["data"], previous_status=values["previous_status"]),
    )
    return out.model_dump_json().encode()


class EventPublisher:
    def __init__(self, redis: Redis):
        self._redis = redis
        self._tasks: set[asyncio.Task[None]] = set()
        self._buffer: list[dict[str, Any]] = []
        self._flushing = False

    def install(self, session_class: type[Session]) -> None:
        event.listen(session_class, "after_commit", self._after_commit)
        event.listen(session_class, "after_soft_rollback", self._after_rollback)

    def uninstall(self, session_class: type[Session]) -> None:
        event.remove(session_class, "after_commit", self._after_commit)
        event.remove(session_class, "after_soft_rollback", self._after_rollback)

    def _after_commit(self, session: Session) -> None:
        pending = session.info.pop(PENDING_PUBLISH, None)
        if pending:
            self.publish_soon(pending)

    def publish_soon(self, pending: list[dict[str, Any]]) -> None:
        """Publishes committed events in a task of their own: the request does not wait for Redis.
        Events committed while that task waits for its turn go in the same pipeline (one round trip
        for many requests under load), in commit order."""
        self._buffer.extend(pending)
        if self._flushing:
            return
        self._flushing = True
        task = asyncio.get_running_loop().create_task(self._flush())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _flush(self) -> None:
        try:
            while self._buffer:
                batch, self._buffer = self._buffer, []
                await self._publish(batch)
        finally:
            self._flushing = False

    def _after_rollback(self, session: Session, previous_transaction: object) -> None:
        session.info.pop(PENDING_PUBLISH, None)

    async def _publish(self, pending: list[dict[str, Any]]) -> None:
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for values in pending:
                    pipe.publish(channel(values["merchant_id"], values["livemode"]), _message(values))
                await pipe.execute()
        except RedisError as e:
            log.warning("event_publish_failed", error=type(e).__name__, count=len(pending))

    async def drain(self) -> None:
        await asyncio.gather(*self._tasks, return_exceptions=True)
