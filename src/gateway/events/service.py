from __future__ import annotations

from collections.abc import Sequence

from gateway.db.database import Database
from gateway.errors import NotFound
from gateway.events import repository
from gateway.events.models import Event
from gateway.events.schemas import EventFilters
from gateway.kit.pagination import Page
from gateway.merchants.service import Principal


class EventService:
    def __init__(self, db: Database):
        self.db = db

    async def get(self, principal: Principal, event_id: str) -> Event:
        event = await repository.get(self.db, principal.merchant_id, principal.livemode, event_id)
        if event is None:
            raise NotFound(f"No such event: {event_id!r}", param="id")
        return event

    async def list(
        self, principal: Principal, filters: EventFilters, page: Page
    ) -> tuple[Sequence[Event], bool]:
        return await repository.list_events(self.db, principal.merchant_id, principal.livemode, filters, page)

    async def after(
        self, principal: Principal, event_id: str, filters: EventFilters, limit: int = 500
    ) -> Sequence[Event]:
        """Events newer than `event_id`, oldest first: what a stream resumed with Last-Event-ID missed."""
        return await repository.after(
            self.db, principal.merchant_id, principal.livemode, event_id, filters, limit
        )

    async def trail(self, principal: Principal, payment_id: str, limit: int = 1_000) -> Sequence[Event]:
        """A payment's events (its refunds' too), oldest first."""
        # Every id sorts after "": all of the payment's events.
        return await self.after(principal, "", EventFilters(payment=payment_id), limit)

    async def for_payment(
        self, principal: Principal, payment_id: str, page: Page
    ) -> tuple[Sequence[Event], bool]:
        return await repository.list_for_payment(self.db, principal.merchant_id, payment_id, page)
