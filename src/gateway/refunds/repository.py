"""The refunds table: every query of it, and the one order in which a refund and its payment lock."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gateway.db import query
from gateway.db.database import Queries, Tx
from gateway.db.query import Where, claim_due_for_reconcile, paginate
from gateway.kit.pagination import Page
from gateway.payments import repository as payments
from gateway.payments.models import Payment
from gateway.refunds.models import REFUNDS, Refund
from gateway.refunds.schemas import RefundFilters

_C = REFUNDS.columns
_INSERT = REFUNDS.insert_sql(f"ON CONFLICT (merchant_id, idempotency_key) DO NOTHING RETURNING {_C}")
_GET = f"SELECT {_C} FROM refunds WHERE id = $1 AND merchant_id = $2 AND livemode = $3"  # noqa: S608
_LOCK = f"SELECT {_C} FROM refunds WHERE id = $1 FOR UPDATE"  # noqa: S608
_BY_KEY = f"SELECT {_C} FROM refunds WHERE merchant_id = $1 AND idempotency_key = $2"  # noqa: S608
_PAYMENT_OF = "SELECT payment_id FROM refunds WHERE id = $1"
_BY_PROVIDER_REFERENCE = "SELECT id FROM refunds WHERE provider_reference = $1 LIMIT 1"
_RESERVED = """
SELECT coalesce(sum(amount), 0) FROM refunds WHERE payment_id = $1 AND status IN ('pending', 'succeeded')
"""
_CLAIM_LEASE = """
UPDATE refunds SET provider_lease_until = $2
WHERE id = $1 AND status = 'pending' AND provider_reference IS NULL
  AND (provider_lease_until IS NULL OR provider_lease_until < now())
RETURNING id
"""
_RELEASE_LEASE = "UPDATE refunds SET provider_lease_until = NULL WHERE id = $1"


async def lock_refund(tx: Tx, refund_id: str) -> tuple[Payment, Refund] | None:
    """A refund and its payment, both row-locked until the transaction ends: the payment first, then
    the refund, always. Every caller that locks both (the API, webhooks, the reconciler) comes here,
    so two of them never wait for each other in a cycle (a deadlock)."""
    payment_id: str | None = await tx.fetchval(_PAYMENT_OF, refund_id)
    if payment_id is None:
        return None
    payment = await payments.lock(tx, payment_id)
    refund = REFUNDS.one(await tx.fetchrow(_LOCK, refund_id))
    if payment is None or refund is None:
        return None
    return payment, refund


async def insert(q: Queries, row: Refund) -> Refund | None:
    """Inserts unless (merchant, idempotency key) exists; None means another request got there first."""
    return REFUNDS.one(await q.fetchrow(_INSERT, *REFUNDS.values(row)))


async def get(q: Queries, merchant_id: str, livemode: bool, refund_id: str) -> Refund | None:
    return REFUNDS.one(await q.fetchrow(_GET, refund_id, merchant_id, livemode))


async def find_by_key(q: Queries, merchant_id: str, key: str) -> Refund | None:
    return REFUNDS.one(await q.fetchrow(_BY_KEY, merchant_id, key))


async def find_id(q: Queries, refund_id: str | None, provider_reference: str | None) -> str | None:
    """Our refund named by a provider's notification: by our id if it carries one, else by theirs."""
    if refund_id is not None and await q.fetchval(_PAYMENT_OF, refund_id) is not None:
        return refund_id
    if provider_reference is None:
        return None
    found: str | None = await q.fetchval(_BY_PROVIDER_REFERENCE, provider_reference)
    return found


async def reserved_amount(q: Queries, payment_id: str) -> int:
    """What pending and succeeded refunds hold of a payment (call with the payment row locked)."""
    return int(await q.fetchval(_RESERVED, payment_id))


async def claim_provider_lease(q: Queries, refund_id: str, until: datetime) -> bool:
    return await q.fetchval(_CLAIM_LEASE, refund_id, until) is not None


async def release_provider_lease(q: Queries, refund_id: str) -> None:
    await q.execute(_RELEASE_LEASE, refund_id)


def save(tx: Tx, refund: Refund, changes: dict[str, Any]) -> None:
    tx.update(REFUNDS, refund.id, changes)


async def list_refunds(
    q: Queries, merchant_id: str, livemode: bool, filters: RefundFilters, cursor: Page
) -> tuple[list[Refund], bool]:
    where = Where().add("merchant_id = {}", merchant_id).add("livemode = {}", livemode).owned()
    where.maybe("status = {}", filters.status)
    where.maybe("payment_id = {}", filters.payment)
    where.created(filters.created_gte, filters.created_lt)
    return await paginate(q, REFUNDS, where, cursor)


async def claim_for_reconcile(q: Queries, limit: int, backoff: float, max_backoff: float) -> list[str]:
    return await claim_due_for_reconcile(
        q, "refunds", ("pending",), limit=limit, backoff=backoff, max_backoff=max_backoff
    )


async def count_due_for_reconcile(q: Queries, cap: int) -> int:
    return await query.count_due_for_reconcile(q, "refunds", ("pending",), cap=cap)
