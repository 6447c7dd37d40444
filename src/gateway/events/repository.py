from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, NotRequired, TypedDict, Unpack

import orjson
from sqlalchemy import ARRAY, Boolean, ColumnElement, DateTime, String, bindparam, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db.pg import Tx
from gateway.db.repository import paginate
from gateway.events.models import Event
from gateway.events.schemas import EventFilters
from gateway.kit.ids import new_id
from gateway.kit.pagination import Page

# Session.info key: events appended in the current transaction, published once it commits.
PENDING_PUBLISH = "gateway.events.pending_publish"
# At most this many webhook endpoints per merchant and mode (Stripe's limit too).
MAX_ENDPOINTS = 16

# Events and their outbound deliveries (the transactional outbox) in one round trip, for any number
# of events: one delivery per enabled endpoint of the event's merchant and mode whose enabled_events
# match its type ("*", the type, or its family "payment.*"). A delivery's id is its event's timestamp
# (the id's first 10 characters) followed by 16 hex digits of md5(event, endpoint): valid, sorted by
# time like every id, unique per pair, and made in SQL without ids we may not need.
_EVENTS_BODY = """
    INSERT INTO events (id, merchant_id, livemode, type, source, data, payment_id, refund_id,
                        previous_status, status, created_at)
    SELECT id, merchant_id, livemode, type, source, data::jsonb, payment_id, refund_id,
           previous_status, status, created_at
    FROM unnest(CAST(:id AS varchar[]), CAST(:merchant_id AS varchar[]), CAST(:livemode AS boolean[]),
                CAST(:type AS varchar[]), CAST(:source AS varchar[]), CAST(:data AS text[]),
                CAST(:payment_id AS varchar[]), CAST(:refund_id AS varchar[]),
                CAST(:previous_status AS varchar[]), CAST(:status AS varchar[]),
                CAST(:created_at AS timestamptz[]))
         AS t(id, merchant_id, livemode, type, source, data, payment_id, refund_id, previous_status,
              status, created_at)
    RETURNING id, merchant_id, livemode, type, created_at
"""
_DELIVERIES_BODY = """
INSERT INTO webhook_deliveries (id, endpoint_id, event_id, merchant_id, event_type, status, attempts,
                                next_attempt_at, created_at, updated_at)
SELECT 'whd_' || substr(ev.id, 5, 10) || substr(md5(ev.id || e.id), 1, 16),
       e.id, ev.id, ev.merchant_id, ev.type, 'pending', 0, ev.created_at, ev.created_at, ev.created_at
FROM ev JOIN webhook_endpoints e ON e.merchant_id = ev.merchant_id AND e.livemode = ev.livemode
WHERE e.enabled AND e.deleted_at IS NULL
  AND e.enabled_events && ARRAY['*', ev.type, split_part(ev.type, '.', 1) || '.*']::varchar[]
"""
_APPEND_SQL = f"WITH ev AS ({_EVENTS_BODY}){_DELIVERIES_BODY}"
_COLUMNS = (
    "id",
    "merchant_id",
    "livemode",
    "type",
    "source",
    "data",
    "payment_id",
    "refund_id",
    "previous_status",
    "status",
    "created_at",
)
_APPEND = text(_APPEND_SQL).bindparams(
    *(bindparam(c, type_=ARRAY(String)) for c in _COLUMNS if c not in ("livemode", "created_at")),
    bindparam("livemode", type_=ARRAY(Boolean)),
    bindparam("created_at", type_=ARRAY(DateTime(timezone=True))),
)


def _columns(events: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Column-wise arrays of `events` for the statement above (the data as JSON text)."""
    out: dict[str, list[Any]] = {c: [e[c] for e in events] for c in _COLUMNS}
    out["data"] = [orjson.dumps(d, option=orjson.OPT_UTC_Z).decode() for d in out["data"]]
    return out


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


class EventFields(TypedDict):
    merchant_id: str
    livemode: bool
    type: str
    source: str
    data: dict[str, Any]
    payment_id: NotRequired[str | None]
    previous_status: NotRequired[str | None]
    status: NotRequired[str | None]
    refund_id: NotRequired[str | None]


def event_values(**fields: Unpack[EventFields]) -> dict[str, Any]:
    """An event row's values: a new id, the fields, the time."""
    return {
        "id": new_id("evt"),
        "payment_id": None,
        "refund_id": None,
        "previous_status": None,
        "status": None,
        **fields,
        "created_at": datetime.now(UTC),
    }


async def append_event(tx: AsyncSession | Tx, **fields: Unpack[EventFields]) -> str:
    """Appends an event and its outbox rows in the caller's transaction, ORM session or asyncpg.
    On asyncpg they are written with the transaction's other deferred writes, at the commit."""
    if isinstance(tx, AsyncSession):
        return await EventRepository(tx).append(**fields)
    values = event_values(**fields)
    if not tx.events:
        tx.before_commit.append(_defer_events)
    tx.events.append(values)
    event_id: str = values["id"]
    return event_id


async def _defer_events(tx: Tx) -> None:
    tx.defer("ev", _EVENTS_BODY, _columns(tx.events))
    tx.defer("wd", _DELIVERIES_BODY, {})


class EventRepository:
    def __init__(self, session: AsyncSession):
        self.session = session

    async def append(self, **fields: Unpack[EventFields]) -> str:
        values = event_values(**fields)
        await self.session.execute(_APPEND, _columns([values]))
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
