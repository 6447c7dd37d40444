"""The cash_sessions table: every query of it, and the totals a close adds up."""

from __future__ import annotations

from typing import Any

import asyncpg  # type: ignore[import-untyped]

from gateway.cash_drawers.models import CASH_SESSIONS, CashSession
from gateway.cash_drawers.schemas import CashSessionFilters
from gateway.db.database import Queries, Tx
from gateway.db.query import Where, paginate
from gateway.kit.pagination import Page

_C = CASH_SESSIONS.columns
_INSERT = CASH_SESSIONS.insert_sql(f"ON CONFLICT (merchant_id, idempotency_key) DO NOTHING RETURNING {_C}")
_GET = f"""
SELECT {_C} FROM cash_sessions WHERE id = $1 AND merchant_id = $2 AND livemode = $3 AND drawer = $4
"""  # noqa: S608
_OPEN_OF_DRAWER = f"""
SELECT {_C} FROM cash_sessions
WHERE merchant_id = $1 AND livemode = $2 AND drawer = $3 AND status = 'open'
"""  # noqa: S608
_BY_KEY = f"SELECT {_C} FROM cash_sessions WHERE merchant_id = $1 AND idempotency_key = $2"  # noqa: S608
_LOCK = f"SELECT {_C} FROM cash_sessions WHERE id = $1 FOR UPDATE"  # noqa: S608
# What a session took in and paid out, read under its FOR UPDATE lock: every payment or refund that
# named it holds it FOR SHARE until its commit (payments.repository.hold_cash_session), so all of
# them have committed by now and each of this statement's subqueries sees them. The payments and
# refunds tables by name: cash drawers build on payments and refunds, which never import them.
# A cash payment succeeds in the transaction that records it; a refunded one still came in (its
# refunds go out). A cash refund is out of the drawer from the moment it is recorded: pending only
# until the same request marks it succeeded, so it counts as soon as it exists (never once failed).
_TOTALS = """
SELECT
  (SELECT coalesce(sum(amount), 0) FROM payments
   WHERE cash_session = $1 AND status IN ('succeeded', 'partially_refunded', 'refunded')),
  (SELECT coalesce(sum(amount), 0) FROM refunds
   WHERE cash_session = $1 AND status IN ('pending', 'succeeded'))
"""
ONE_OPEN_INDEX = "ix_cash_sessions_one_open"


class DrawerAlreadyOpen(Exception):
    """The insert met the drawer's open session (the partial unique index): the transaction is over."""


async def insert(tx: Tx, row: CashSession) -> CashSession | None:
    """Inserts unless (merchant, idempotency key) exists (None); DrawerAlreadyOpen if the drawer
    has an open session, committed or committing (a racing open waits for it, then meets it)."""
    try:
        return CASH_SESSIONS.one(await tx.fetchrow(_INSERT, *CASH_SESSIONS.values(row)))
    except asyncpg.UniqueViolationError as e:
        if e.constraint_name == ONE_OPEN_INDEX:
            raise DrawerAlreadyOpen from e
        raise


async def get(
    q: Queries, merchant_id: str, livemode: bool, drawer: str, session_id: str
) -> CashSession | None:
    """The session if it is this merchant's, in this mode, of this drawer: any other is absent."""
    return CASH_SESSIONS.one(await q.fetchrow(_GET, session_id, merchant_id, livemode, drawer))


async def open_of_drawer(q: Queries, merchant_id: str, livemode: bool, drawer: str) -> CashSession | None:
    return CASH_SESSIONS.one(await q.fetchrow(_OPEN_OF_DRAWER, merchant_id, livemode, drawer))


async def find_by_key(q: Queries, merchant_id: str, key: str) -> CashSession | None:
    return CASH_SESSIONS.one(await q.fetchrow(_BY_KEY, merchant_id, key))


async def lock(tx: Tx, session_id: str) -> CashSession | None:
    """The session, row-locked for update: waits for every payment and refund holding it."""
    return CASH_SESSIONS.one(await tx.fetchrow(_LOCK, session_id))


async def totals(tx: Tx, session_id: str) -> tuple[int, int]:
    """(cash payments taken in, cash refunds paid out) of the session; call it holding `lock`."""
    row = await tx.fetchrow(_TOTALS, session_id)
    assert row is not None
    return int(row[0]), int(row[1])


def save(tx: Tx, session: CashSession, changes: dict[str, Any]) -> None:
    tx.update(CASH_SESSIONS, session.id, changes)


async def list_sessions(
    q: Queries, merchant_id: str, livemode: bool, filters: CashSessionFilters, cursor: Page
) -> tuple[list[CashSession], bool]:
    where = (
        Where()
        .add("merchant_id = {}", merchant_id)
        .add("livemode = {}", livemode)
        .add("drawer = {}", filters.drawer)
        .owned()
    )
    where.maybe("status = {}", filters.status)
    where.created(filters.created_gte, filters.created_lt)
    return await paginate(q, CASH_SESSIONS, where, cursor)
