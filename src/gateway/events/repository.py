from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db.repository import paginate
from gateway.events.models import Event
from gateway.events.schemas import EventFilters
from gateway.kit.ids import new_id
from gateway.kit.pagination import Page

# Session.info key: events appended in the current transaction, published once it commits.
PENDING_PUBLISH = "gateway.events.pending_publish"


def _type_filter(types: tuple[str, ...]) -> ColumnElement[bool] | None:
    if not types or "*" in types:
        return None
    clauses = [
        Event.type.like(t[:-1].replace("%", r"\%").replace("_", r"\_") + "%")
        if t.endswith(".*")
        else Event.type == t
        for t in types
    ]
    return or_(*clauses)


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
        values = {
            "id": event_id,
            "merchant_id": merchant_id,
            "livemode": livemode,
            "type": type,
            "source": source,
            "data": data,
            "payment_id": payment_id,
            "refund_id": refund_id,
            "previous_status": previous_status,
            "status": status,
            "created_at": datetime.now(UTC),
        }
        await self.session.execute(insert(Event).values(**values))
        self.session.info.setdefault(PENDING_PUBLISH, []).append(values)
        return event_id

    async def get(self, merchant_id: str, livemode: bool, event_id: str) -> Event | None:
        stmt = select(Event).where(
            Event.id == event_id, Event.merchant_id == merchant_id, Event.livemode == livemode
        )
        return (await self.session.scalars(stmt)).first()

    async def list(
        self, merchant_id: str, livemode: bool, filters: EventFilters, page: Page
    ) -> tuple[Sequence[Event], bool]:
        stmt = select(Event).where(Event.merchant_id == merchant_id, Event.livemode == livemode)
        if (clause := _type_filter(filters.types)) is not None:
            stmt = stmt.where(clause)
        if filters.payment is not None:
            stmt = stmt.where(Event.payment_id == filters.payment)
        if filters.created_gte is not None:
            stmt = stmt.where(Event.created_at >= filters.created_gte)
        if filters.created_lt is not None:
            stmt = stmt.where(Event.created_at < filters.created_lt)
        return await paginate(self.session, stmt, Event.id, page)

    async def after(
        self, merchant_id: str, livemode: bool, event_id: str, filters: EventFilters, limit: int = 500
    ) -> Sequence[Event]:
        """Events newer than `event_id`, oldest first: what a stream resumed with Last-Event-ID missed."""
        stmt = select(Event).where(
            Event.merchant_id == merchant_id, Event.livemode == livemode, Event.id > event_id
        )
        if (clause := _type_filter(filters.types)) is not None:
            stmt = stmt.where(clause)
        if filters.payment is not None:
            stmt = stmt.where(Event.payment_id == filters.payment)
        return (await self.session.scalars(stmt.order_by(Event.id).limit(limit))).all()

    async def list_for_payment(
        self, merchant_id: str, payment_id: str, page: Page
    ) -> tuple[Sequence[Event], bool]:
        stmt = select(Event).where(Event.merchant_id == merchant_id, Event.payment_id == payment_id)
        return await paginate(self.session, stmt, Event.id, page)
