"""Helpers every repository shares: cursor pagination over time-sortable ids."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import Select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from gateway.kit.pagination import Page

T = TypeVar("T")


async def paginate(
    session: AsyncSession, stmt: Select[T], id_col: InstrumentedAttribute[Any], page: Page
) -> tuple[Sequence[T], bool]:
    """Newest first. `starting_after` walks to older rows, `ending_before` to newer ones (Stripe's rules)."""
    if page.ending_before is not None:
        stmt = stmt.where(id_col > page.ending_before).order_by(id_col.asc()).limit(page.limit + 1)
        rows = list((await session.scalars(stmt)).all())
        has_more = len(rows) > page.limit
        return list(reversed(rows[: page.limit])), has_more
    if page.starting_after is not None:
        stmt = stmt.where(id_col < page.starting_after)
    rows = list((await session.scalars(stmt.order_by(id_col.desc()).limit(page.limit + 1))).all())
    return rows[: page.limit], len(rows) > page.limit


async def claim_due_for_reconcile(
    session: AsyncSession,
    table: str,
    statuses: tuple[str, ...],
    *,
    limit: int,
    backoff: float,
    max_backoff: float,
) -> Sequence[str]:
    """Takes due unsettled rows of `table` and moves their next question into the future in one
    statement: with SKIP LOCKED, reconcilers running at once never ask about the same row in a round."""
    assert table in ("payments", "refunds")  # an identifier, never input
    stmt = text(f"""
        UPDATE {table} SET
            reconcile_attempts = reconcile_attempts + 1,
            next_reconcile_at = now() + make_interval(
                secs => LEAST(:backoff * power(2, LEAST(reconcile_attempts, 30)), :max_backoff))
        WHERE id IN (
            SELECT id FROM {table}
            WHERE status = ANY(:statuses) AND next_reconcile_at <= now()
              AND (provider_lease_until IS NULL OR provider_lease_until < now())
            ORDER BY next_reconcile_at
            LIMIT :limit
            FOR UPDATE SKIP LOCKED
        )
        RETURNING id
    """)  # noqa: S608 - table is one of two literals
    params = {"limit": limit, "backoff": backoff, "max_backoff": max_backoff, "statuses": list(statuses)}
    return (await session.execute(stmt, params)).scalars().all()
