from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.kit.ids import new_id
from gateway.webhooks.inbound.models import InboundWebhook


class InboxRepository:
    def __init__(self, session: AsyncSession):
        self.session = session

    async def store(
        self, provider: str, event_id: str, event_type: str, payload: dict[str, Any]
    ) -> str | None:
        """Stores a notification once; None if (provider, event id) was already stored."""
        stmt = (
            insert(InboundWebhook)
            .values(
                id=new_id("iwh"),
                provider=provider,
                provider_event_id=event_id,
                event_type=event_type,
                payload=payload,
            )
            .on_conflict_do_nothing(
                index_elements=[InboundWebhook.provider, InboundWebhook.provider_event_id]
            )
            .returning(InboundWebhook.id)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def claim(self, inbox_id: str) -> InboundWebhook | None:
        """Locks an unprocessed row; None if it is done or another worker holds it right now."""
        stmt = (
            select(InboundWebhook)
            .where(InboundWebhook.id == inbox_id, InboundWebhook.processed_at.is_(None))
            .with_for_update(skip_locked=True)
        )
        return (await self.session.scalars(stmt)).first()

    async def finish(self, inbox_id: str, outcome: str, error: str | None = None) -> None:
        await self.session.execute(
            update(InboundWebhook)
            .where(InboundWebhook.id == inbox_id)
            .values(
                processed_at=func.now(),
                outcome=outcome,
                last_error=error,
                attempts=InboundWebhook.attempts + 1,
            )
        )

    async def record_failure(self, inbox_id: str, error: str) -> None:
        await self.session.execute(
            update(InboundWebhook)
            .where(InboundWebhook.id == inbox_id)
            .values(attempts=InboundWebhook.attempts + 1, last_error=error[:2000])
        )

    async def due(self, older_than_seconds: float, max_attempts: int, limit: int = 100) -> Sequence[str]:
        stmt = (
            select(InboundWebhook.id)
            .where(
                InboundWebhook.processed_at.is_(None),
                InboundWebhook.attempts < max_attempts,
                InboundWebhook.received_at
                < func.now() - func.make_interval(0, 0, 0, 0, 0, 0, older_than_seconds),
            )
            .order_by(InboundWebhook.received_at)
            .limit(limit)
        )
        return (await self.session.scalars(stmt)).all()
