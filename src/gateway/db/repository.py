"""Helpers every repository shares: cursor pagination over time-sortable ids."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import Select
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
