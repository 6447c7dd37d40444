"""The event log: appended in the caller's transaction (deferred to its commit), read by the API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NotRequired, TypedDict, Unpack

import orjson

from gateway.db.database import Queries, Tx
from gateway.db.query import Where, paginate
from gateway.events.models import EVENTS, Event
from gateway.events.schemas import EventFilters
from gateway.kit.ids import new_id
from gateway.kit.pagination import Page

# Any number of events in one statement, sent as one JSON array (asyncpg checks every element of
# an array parameter against the collection ABCs: twelve column arrays cost more than the JSON). It is
# named `ev` in the commit's statement, and returns what the writes that follow it
# (Database.event_followers) need.
_EVENTS_BODY = """
    INSERT INTO events (id, merchant_id, livemode, type, source, data, payment_id, refund_id,
                        previous_status, status, created_at, payout_id)
    SELECT id, merchant_id, livemode, type, source, data, payment_id, refund_id, previous_status,
           status, created_at, payout_id
    FROM jsonb_to_recordset(CAST(CAST(:events AS text) AS jsonb))
         AS t(id varchar, merchant_id varchar, livemode boolean, type varchar, source varchar,
              data jsonb, payment_id varchar, refund_id varchar, previous_status varchar,
              status varchar, created_at timestamptz, payout_id varchar)
    RETURNING id, merchant_id, livemode, type, created_at
"""


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
    payout_id: NotRequired[str | None]


def append_event(tx: Tx, **fields: Unpack[EventFields]) -> str:
    """Appends an event (and, through the followers, its outbox rows) at the transaction's commit,
    in the statement that carries its other deferred writes; published once it has committed."""
    values: dict[str, Any] = {
        "id": new_id("evt"),
        "payment_id": None,
        "refund_id": None,
        "payout_id": None,
        "previous_status": None,
        "status": None,
        **fields,
        "created_at": datetime.now(UTC),
    }
    if not tx.events:
        tx.before_commit.append(_defer_events)
    tx.events.append(values)
    event_id: str = values["id"]
    return event_id


async def _defer_events(tx: Tx) -> None:
    # Timestamps as the API renders them ("Z"), inside the data as at the top level.
    tx.defer("ev", _EVENTS_BODY, {"events": orjson.dumps(tx.events, option=orjson.OPT_UTC_Z).decode()})
    for name, body in tx.event_followers:
        tx.defer(name, body, {})


def _types(where: Where, types: tuple[str, ...]) -> None:
    """Exact types, or a family with a wildcard: "payment.*"; none or "*" is everything."""
    if not types or "*" in types:
        return
    exact = [t for t in types if not t.endswith(".*")]
    prefixes = [t[:-1].replace("%", r"\%").replace("_", r"\_") + "%" for t in types if t.endswith(".*")]
    where.add("(type = ANY({}) OR type LIKE ANY({}))", exact, prefixes)


async def get(q: Queries, merchant_id: str, livemode: bool, event_id: str) -> Event | None:
    sql = f"SELECT {EVENTS.columns} FROM events WHERE id = $1 AND merchant_id = $2 AND livemode = $3"  # noqa: S608
    return EVENTS.one(await q.fetchrow(sql, event_id, merchant_id, livemode))


def _scope(merchant_id: str, livemode: bool, filters: EventFilters) -> Where:
    where = Where().add("merchant_id = {}", merchant_id).add("livemode = {}", livemode).owned()
    _types(where, filters.types)
    where.maybe("payment_id = {}", filters.payment)
    return where.created(filters.created_gte, filters.created_lt)


async def list_events(
    q: Queries, merchant_id: str, livemode: bool, filters: EventFilters, cursor: Page
) -> tuple[list[Event], bool]:
    return await paginate(q, EVENTS, _scope(merchant_id, livemode, filters), cursor)


async def after(
    q: Queries, merchant_id: str, livemode: bool, event_id: str, filters: EventFilters, limit: int = 500
) -> list[Event]:
    """Events newer than `event_id`, oldest first: what a stream resumed with Last-Event-ID missed."""
    where = _scope(merchant_id, livemode, filters).add("id > {}", event_id)
    sql = f"SELECT {EVENTS.columns} FROM events WHERE {where.sql} ORDER BY id LIMIT {int(limit)}"  # noqa: S608
    return EVENTS.many(await q.fetch(sql, *where.args))


async def list_for_payment(
    q: Queries, merchant_id: str, payment_id: str, cursor: Page
) -> tuple[list[Event], bool]:
    where = Where().add("merchant_id = {}", merchant_id).owned().add("payment_id = {}", payment_id)
    return await paginate(q, EVENTS, where, cursor)
