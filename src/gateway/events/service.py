from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.errors import NotFound
from gateway.events.models import Event
from gateway.events.repository import EventRepository
from gateway.events.schemas import EventFilters
from gateway.kit.pagination import Page
from gateway.merchants.service import Principal


class EventService:
    def __init__(self, session: AsyncSession):
        self.repo = EventRepository(session)

    async def get(self, principal: Principal, event_id: str) -> Event:
        event = await self.repo.get(principal.merchant_id, principal.livemode, event_id)
        if event is None:
            raise NotFound(f"No such event: {event_id!r}", param="id")
        return event

    async def list(
        self, principal: Principal, filters: EventFilters, page: Page
    ) -> tuple[Sequence[Event], bool]:
        return await self.repo.list(principal.merchant_id, principal.livemode, filters, page)

    async def after(
        self, principal: Principal, event_id: str, filters: EventFilters, limit: int = 500
    ) -> Sequence[Event]:
        """Events newer than `event_id`, oldest first: what a stream resumed with Last-Event-ID missed."""
        return await self.repo.after(principal.merchant_id, principal.livemode, event_id, filters, limit)

    async def trail(self, principal: Principal, payment_id: str, limit: int = 1_000) -> Sequence[Event]:
        """A payment's events (its refunds' too), oldest first."""
        # Every id sorts after "": all of the payment's events.
        return await self.repo.after(
            principal.merchant_id, principal.livemode, "", EventFilters(payment=payment_id), limit
        )
