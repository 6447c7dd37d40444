"""The payment_links table: every query of it."""

from __future__ import annotations

from typing import Any

from gateway.db.database import Queries, Tx
from gateway.db.query import Where, paginate
from gateway.kit.pagination import Page
from gateway.payment_links.models import PAYMENT_LINKS, PaymentLink

_C = PAYMENT_LINKS.columns
_INSERT = PAYMENT_LINKS.insert_sql(f"RETURNING {_C}")
_GET = f"SELECT {_C} FROM payment_links WHERE id = $1 AND merchant_id = $2 AND livemode = $3"  # noqa: S608
_BY_SLUG = f"SELECT {_C} FROM payment_links WHERE slug = $1"  # noqa: S608


async def insert(q: Queries, row: PaymentLink) -> PaymentLink:
    link = PAYMENT_LINKS.one(await q.fetchrow(_INSERT, *PAYMENT_LINKS.values(row)))
    assert link is not None
    return link


async def get(q: Queries, merchant_id: str, livemode: bool, link_id: str) -> PaymentLink | None:
    """The link if it is this merchant's in this mode: another's is as good as absent."""
    return PAYMENT_LINKS.one(await q.fetchrow(_GET, link_id, merchant_id, livemode))


async def by_slug(q: Queries, slug: str) -> PaymentLink | None:
    """The link its public URL names (any merchant: the slug is the only credential)."""
    return PAYMENT_LINKS.one(await q.fetchrow(_BY_SLUG, slug))


def save(tx: Tx, link: PaymentLink, changes: dict[str, Any]) -> None:
    tx.update(PAYMENT_LINKS, link.id, changes)


async def list_links(
    q: Queries, merchant_id: str, livemode: bool, cursor: Page
) -> tuple[list[PaymentLink], bool]:
    """Newest first, as every list."""
    where = Where().add("merchant_id = {}", merchant_id).add("livemode = {}", livemode).owned()
    return await paginate(q, PAYMENT_LINKS, where, cursor)
