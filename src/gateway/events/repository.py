from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ARRAY, ColumnElement, DateTime, String, bindparam, or_, select, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db.pg import Tx, positional
from gateway.db.repository import paginate
from gateway.events.models import Event
from gateway.events.schemas import EventFilters
from gateway.kit.ids import new_id
from gateway.kit.pagination import Page

# Session.info key: events appended in the current transaction, published once it commits.
PENDING_PUBLISH = "gateway.events.pending_publish"
# At most this many webhook endpoints per merchant and mode (Stripe's limit too).
MAX_ENDPOINTS = 16

# The event and its outbound deliveries (the transactional outbox) in one round trip: one delivery
# per enabled endpoint of the merchant whose enabled_events match the type. A delivery's id is its
# event's timestamp (the id's first 10 characters) followed by 16 hex digits of md5(event, endpoint):
# valid, sorted by time like every id, unique per pair, and made in SQL without ids we may not need.
_APPEND = text("""
WITH ev AS (
    INSERT INTO events (id, merchant_id, livemode, type, source, data, payment_id, refund_id,
                        previous_status, status, created_at)
    VALUES (:id, :merchant_id, :livemode, :type, :source, :data, :payment_id, :refund_id,
            :previous_status, :status, :created_at)
    RETURNING id
)
INSERT INTO webhook_deliveries (id, endpoint_id, event_id, merchant_id, event_type, status, attempts,
                                next_attempt_at, created_at, updated_at)
SELECT 'whd_' || substr(ev.id, 5, 10) || substr(md5(ev.id || e.id), 1, 16),
       e.id, ev.id, :merchant_id,
       :type, 'pending', 0, :created_at, :created_at, :created_at
FROM webhook_endpoints e CROSS JOIN ev
WHERE e.merchant_id = :merchant_id AND e.livemode = :livemode AND e.enabled AND e.deleted_at IS NULL
  AND e.enabled_events && CAST(:patterns AS varchar[])
""").bindparams(
    bindparam("data", type_=JSONB),
    bindparam("patterns", type_=ARRAY(String)),
    bindparam("created_at", type_=DateTime(timezone=True)),
)


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


_APPEND_PG, _APPEND_PG_NAMES = positional(_APPEND.text)


def event_values(
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
) -> dict[str, Any]:
    return {
        "id": new_id("evt"),
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


def _patterns(type: str) -> list[str]:
    return ["*", type, type.split(".", 1)[0] + ".*"]


async def append_event(tx: AsyncSession | Tx, **kw: Any) -> str:
    """Appends an event and its outbox rows in the caller's transaction, ORM session or asyncpg."""
    if isinstance(tx, AsyncSession):
        return await EventRepository(tx).append(**kw)
    values = event_values(**kw)
    params = values | {"patterns": _patterns(values["type"])}
    await tx.conn.execute(_APPEND_PG, *(params[n] for n in _APPEND_PG_NAMES))
    tx.events.append(values)
    event_id: str = values["id"]
    return event_id


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
        values = event_values(
            merchant_id=merchant_id,
            livemode=livemode,
            type=type,
            source=source,
            data=data,
            payment_id=payment_id,
            previous_status=previous_status,
            status=status,
            refund_id=refund_id,
        )
        await self.session.execute(_APPEND, values | {"patterns": _patterns(type)})
        self.session.info.setdefault(PENDING_PUBLISH, []).append(values)
        event_id: str = values["id"]
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
