from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db.repository import paginate
from gateway.events.models import Event
from gateway.kit.ids import new_id
from gateway.kit.pagination import Page


class EventRepository:
    def __init__(self, session: AsyncSession):
        self.session = session

    async def append(
        self,
        *,
        merchant_id: str,
        livemode: bool,
        type: str,
        source: str,
        data: dict[str, Any],
        payment_id: str | None = None,
        previous_status: str | None = None,
        status: str | None = None,
        refund_id: str | None = None,
    ) -> str:
        event_id = new_id("evt")
        await self.session.execute(
            insert(Event).values(
                id=event_id,
                merchant_id=merchant_id,
                livemode=livemode,
                type=type,
                source=source,
                data=data,
                payment_id=payment_id,
                refund_id=refund_id,
                previous_status=previous_status,
                status=status,
            )
        )
        return event_id

    async def list_for_payment(
        self, merchant_id: str, payment_id: str, page: Page
    ) -> tuple[Sequence[Event], bool]:
        stmt = select(Event).where(Event.merchant_id == merchant_id, Event.payment_id == payment_id)
        return await paginate(self.session, stmt, Event.id, page)
