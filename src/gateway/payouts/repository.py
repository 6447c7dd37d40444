"""The payouts tables: every query of payouts, payout_limits and payout_daily_totals."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from gateway.db.database import Queries, Tx
from gateway.db.query import Where, paginate
from gateway.kit.pagination import Page
from gateway.payouts.models import PAYOUT_LIMITS, PAYOUTS, Payout, PayoutLimit
from gateway.payouts.schemas import PayoutFilters

_C = PAYOUTS.columns
_INSERT = PAYOUTS.insert_sql(f"ON CONFLICT (merchant_id, idempotency_key) DO NOTHING RETURNING {_C}")
_GET = f"SELECT {_C} FROM payouts WHERE id = $1 AND merchant_id = $2 AND livemode = $3"  # noqa: S608
_LOCK = f"SELECT {_C} FROM payouts WHERE id = $1 FOR UPDATE"  # noqa: S608
_BY_KEY = f"SELECT {_C} FROM payouts WHERE merchant_id = $1 AND idempotency_key = $2"  # noqa: S608
_BY_REFERENCE = f"""
SELECT {_C} FROM payouts
WHERE provider = $1 AND coalesce(provider_account_id, '') = $2 AND provider_reference = $3
LIMIT 1
"""  # noqa: S608
_OWNED = f"""
SELECT {_C} FROM payouts WHERE id = $1 AND provider = $2 AND coalesce(provider_account_id, '') = $3
"""  # noqa: S608
# The one way a payout reaches its provider: whoever sets submitted_at sends it, once, ever.
_CLAIM_SUBMISSION = f"""
UPDATE payouts SET submitted_at = now(), next_reconcile_at = $2, updated_at = now()
WHERE id = $1 AND status = 'pending' AND submitted_at IS NULL
RETURNING {_C}
"""  # noqa: S608
_CLAIM_DUE = """
UPDATE payouts SET
    reconcile_attempts = reconcile_attempts + 1,
    next_reconcile_at = now() + make_interval(
        secs => LEAST($2 * power(2, LEAST(reconcile_attempts, 30)), $3))
WHERE id IN (
    SELECT id FROM payouts
    WHERE status = 'pending' AND submitted_at IS NOT NULL AND next_reconcile_at <= now()
    ORDER BY next_reconcile_at
    LIMIT $1
    FOR UPDATE SKIP LOCKED
)
RETURNING id
"""
_LOCK_UNSUBMITTED = f"""
SELECT {_C} FROM payouts
WHERE status = 'pending' AND submitted_at IS NULL AND created_at < $1
ORDER BY created_at LIMIT $2
FOR UPDATE SKIP LOCKED
"""  # noqa: S608
# The merchant's rows that can hold a payout in this currency: the currency's own and "*" (any other).
_LIMITS = (
    f"SELECT {PAYOUT_LIMITS.columns} FROM payout_limits "  # noqa: S608
    "WHERE merchant_id = $1 AND livemode = $2 AND currency IN ($3, '*')"
)
_OWN_LIMITS = f"SELECT {PAYOUT_LIMITS.columns} FROM payout_limits WHERE merchant_id = $1"  # noqa: S608
# Two replaces of one merchant's limits take turns on its merchants row, so the second deletes what the
# first inserted; NO KEY UPDATE: payouts' foreign-key checks (KEY SHARE) on the row are not held up.
_TAKE_TURNS = "SELECT 1 FROM merchants WHERE id = $1 FOR NO KEY UPDATE"
_DELETE_LIMITS = "DELETE FROM payout_limits WHERE merchant_id = $1 AND livemode = $2"
_INSERT_LIMIT = PAYOUT_LIMITS.insert_sql()
# Adds a payout to its day's total unless that would pass the limit ($6; NULL: no limit). The upsert
# locks the day's row, so racing payouts of one merchant, mode and currency add one after the other
# and each sees the total the one before it left. No row returned: over the limit, nothing added.
_ADD_TO_DAY = """
INSERT INTO payout_daily_totals AS t (merchant_id, livemode, currency, day, total)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (merchant_id, livemode, currency, day) DO UPDATE SET total = t.total + EXCLUDED.total
WHERE $6::bigint IS NULL OR t.total + EXCLUDED.total <= $6::bigint
RETURNING total
"""
_DAY_TOTAL = """
SELECT total FROM payout_daily_totals WHERE merchant_id = $1 AND livemode = $2 AND currency = $3 AND day = $4
"""
_RELEASE = """
UPDATE payout_daily_totals SET total = greatest(total - :{n}_amount, 0)
WHERE merchant_id = :{n}_merchant AND livemode = :{n}_livemode AND currency = :{n}_currency
  AND day = :{n}_day
"""


async def insert(q: Queries, row: Payout) -> Payout | None:
    """Inserts unless (merchant, idempotency key) exists; None means another request got there first."""
    return PAYOUTS.one(await q.fetchrow(_INSERT, *PAYOUTS.values(row)))


async def get(q: Queries, merchant_id: str, livemode: bool, payout_id: str) -> Payout | None:
    return PAYOUTS.one(await q.fetchrow(_GET, payout_id, merchant_id, livemode))


async def find_by_key(q: Queries, merchant_id: str, key: str) -> Payout | None:
    return PAYOUTS.one(await q.fetchrow(_BY_KEY, merchant_id, key))


async def lock(tx: Tx, payout_id: str) -> Payout | None:
    return PAYOUTS.one(await tx.fetchrow(_LOCK, payout_id))


async def for_provider(
    tx: Tx,
    provider: str,
    account_id: str,
    payout_id: str | None,
    provider_reference: str | None,
    *,
    lock: bool = True,
) -> Payout | None:
    """The payout a provider's notification names (by its reference first, else by our id), locked
    unless `lock` is False; only one of that provider's and account's: one account's callback never
    moves another's money."""
    suffix = " FOR UPDATE" if lock else ""
    if provider_reference is not None:
        sql = _BY_REFERENCE + suffix
        found = PAYOUTS.one(await tx.fetchrow(sql, provider, account_id, provider_reference))
        if found is not None:
            return found
    if payout_id is None:
        return None
    return PAYOUTS.one(await tx.fetchrow(_OWNED + suffix, payout_id, provider, account_id))


async def claim_submission(q: Queries, payout_id: str, reconcile_at: datetime) -> Payout | None:
    """Marks the payout submitted (committed by the caller before the provider call); None: it was
    submitted or canceled already, and must not be sent."""
    return PAYOUTS.one(await q.fetchrow(_CLAIM_SUBMISSION, payout_id, reconcile_at))


def save(tx: Tx, payout: Payout, changes: dict[str, Any]) -> None:
    tx.update(PAYOUTS, payout.id, changes)


async def list_payouts(
    q: Queries, merchant_id: str, livemode: bool, filters: PayoutFilters, cursor: Page
) -> tuple[list[Payout], bool]:
    where = Where().add("merchant_id = {}", merchant_id).add("livemode = {}", livemode).owned()
    where.maybe("status = {}", filters.status)
    where.maybe("provider = {}", filters.provider)
    where.created(filters.created_gte, filters.created_lt)
    return await paginate(q, PAYOUTS, where, cursor)


async def claim_for_reconcile(q: Queries, limit: int, backoff: float, max_backoff: float) -> list[str]:
    """Submitted payouts still pending whose next question is due, moved into the future in one
    statement (SKIP LOCKED: reconcilers running at once never ask about the same payout in a round)."""
    return [r[0] for r in await q.fetch(_CLAIM_DUE, limit, backoff, max_backoff)]


async def lock_unsubmitted_before(tx: Tx, cutoff: datetime, limit: int) -> list[Payout]:
    return PAYOUTS.many(await tx.fetch(_LOCK_UNSUBMITTED, cutoff, limit))


async def limits(q: Queries, merchant_id: str, livemode: bool, currency: str) -> list[PayoutLimit]:
    """The merchant's rows for `currency` and for "*" in this mode (none, one or both)."""
    return PAYOUT_LIMITS.many(await q.fetch(_LIMITS, merchant_id, livemode, currency))


async def own_limits(q: Queries, merchant_id: str) -> list[PayoutLimit]:
    """Every row of the merchant's, both modes, in no particular order."""
    return PAYOUT_LIMITS.many(await q.fetch(_OWN_LIMITS, merchant_id))


async def replace_limits(tx: Tx, merchant_id: str, livemode: bool, rows: list[PayoutLimit]) -> bool:
    """The merchant's rows in this mode become `rows`, at the transaction's commit; False (nothing
    done) if there is no such merchant."""
    if await tx.fetchval(_TAKE_TURNS, merchant_id) is None:
        return False
    await tx.execute(_DELETE_LIMITS, merchant_id, livemode)
    for row in rows:
        await tx.execute(_INSERT_LIMIT, *PAYOUT_LIMITS.values(row))
    return True


async def add_to_day(
    tx: Tx, merchant_id: str, livemode: bool, currency: str, day: date, amount: int, max_per_day: int | None
) -> int | None:
    """The day's new total with `amount` added; None (nothing added) if it would pass `max_per_day`."""
    total: int | None = await tx.fetchval(
        _ADD_TO_DAY, merchant_id, livemode, currency, day, amount, max_per_day
    )
    return total


async def day_total(tx: Tx, merchant_id: str, livemode: bool, currency: str, day: date) -> int:
    return int(await tx.fetchval(_DAY_TOTAL, merchant_id, livemode, currency, day) or 0)


def release_from_day(tx: Tx, payout: Payout) -> None:
    """Gives a failed or canceled payout's amount back to the day it was counted in, at the commit."""
    name = tx.name_for("payout_day", payout.id)
    tx.defer(
        name,
        _RELEASE.format(n=name),
        {
            f"{name}_amount": payout.amount,
            f"{name}_merchant": payout.merchant_id,
            f"{name}_livemode": payout.livemode,
            f"{name}_currency": payout.currency,
            f"{name}_day": utc_day(payout.created_at),
        },
    )


def utc_day(at: datetime) -> date:
    """The UTC day a payout counts in (the limits' day)."""
    return at.astimezone(UTC).date()
