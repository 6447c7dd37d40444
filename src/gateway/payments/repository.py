"""The payments table: every query of it, for the API, webhooks and the reconciler alike."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.db import query
from gateway.db.database import Queries, Record, Tx
from gateway.db.query import Where, claim_due_for_reconcile, page_of
from gateway.kit.pagination import Page
from gateway.payments.models import PAYMENT_ATTEMPTS, PAYMENTS, Payment, PaymentAttempt
from gateway.payments.requests import PaymentFilters
from gateway.payments.schemas import SHOWN

_C = PAYMENTS.columns
_INSERT = PAYMENTS.insert_sql(f"ON CONFLICT (merchant_id, idempotency_key) DO NOTHING RETURNING {_C}")
_BY_KEY = f"SELECT {_C} FROM payments WHERE merchant_id = $1 AND idempotency_key = $2"
_GET = f"SELECT {_C} FROM payments WHERE id = $1 AND merchant_id = $2 AND livemode = $3"
# Reads that only answer select what the answer shows: each column costs its decoding (a timestamp
# about 1 µs of the worker's CPU, a JSONB its parse) and PostgreSQL its sending.
_SHOWN = ", ".join(PAYMENTS.column_of[f] for f in SHOWN)
_GET_SHOWN = f"SELECT {_SHOWN} FROM payments WHERE id = $1 AND merchant_id = $2 AND livemode = $3"
_LOCK = f"SELECT {_C} FROM payments WHERE id = $1 FOR UPDATE"
_CLAIM_LEASE = """
UPDATE payments SET provider_lease_until = $2
WHERE id = $1 AND status = 'pending' AND (provider_lease_until IS NULL OR provider_lease_until < now())
RETURNING id
"""
_RELEASE_LEASE = "UPDATE payments SET provider_lease_until = NULL WHERE id = $1"
# A provider account ('' for the deployment's) only ever speaks of the payments made through it
# (and of its attempts, _ATTEMPT_BY_REFERENCE).
_REFERENCE_OF = "provider = $1 AND provider_reference = $2 AND coalesce(provider_account_id, '') = $3"
_BY_PROVIDER_REFERENCE = f"SELECT id FROM payments WHERE {_REFERENCE_OF} LIMIT 1"
_LOCK_BY_PROVIDER_REFERENCE = f"SELECT {_C} FROM payments WHERE {_REFERENCE_OF} LIMIT 1 FOR UPDATE"
# The same, unlocked, with the row's version (xmin) for Tx.guard.
_READ_BY_PROVIDER_REFERENCE = f"SELECT {_C}, xmin FROM payments WHERE {_REFERENCE_OF} LIMIT 1"
_FOR_LINK = f"SELECT {_C} FROM payments WHERE checkout_id = $1 AND payment_link_id = $2"
# The payment_links table by name, so payments need not import payment_links (which builds on them).
_LINK_PAID = (
    "UPDATE payment_links SET paid_at = now(), updated_at = now() WHERE id = :{p} AND paid_at IS NULL"
)
# Locks a single-use link's row (so its payments' confirms take turns) and says whether another of
# its payments is paid or on its way to being paid. NULL for a reusable link: nothing to hold.
_LINK_TAKEN = """
SELECT EXISTS (
    SELECT 1 FROM payments p
    WHERE p.payment_link_id = l.id AND p.id <> $2
      AND p.status NOT IN ('requires_payment_method', 'failed', 'canceled', 'expired')
) OR l.paid_at IS NOT NULL
FROM payment_links l WHERE l.id = $1 AND NOT l.reusable
FOR UPDATE OF l
"""
# The cash_sessions table by name, so payments (and refunds) need not import cash_drawers (which
# builds on them). FOR SHARE: a close (FOR UPDATE) waits for the payment or refund that holds the
# session, then counts it; one after the close reads the session closed (docs/api.md).
_HOLD_CASH_SESSION = """
SELECT id, drawer, currency, status FROM cash_sessions
WHERE id = $1 AND merchant_id = $2 AND livemode = $3
FOR SHARE
"""
# The open session of the drawer another session (a cash payment's) belongs to: where cash handed
# back for that payment leaves from. A close that commits meanwhile takes the row out of the answer.
_HOLD_OPEN_OF_DRAWER = """
SELECT s.id, s.drawer, s.currency, s.status FROM cash_sessions s
WHERE s.merchant_id = $2 AND s.livemode = $3 AND s.status = 'open'
  AND s.drawer = (SELECT drawer FROM cash_sessions WHERE id = $1)
FOR SHARE
"""
_STATUS_AT = (
    "SELECT status FROM payments WHERE id = $1 AND provider = $2 AND coalesce(provider_account_id, '') = $3"
)

_PRIVATE_AT = (
    "SELECT attempt, provider_private FROM payments "
    "WHERE id = $1 AND provider = $2 AND coalesce(provider_account_id, '') = $3"
)


async def insert(q: Queries, row: Payment) -> Payment | None:
    """Inserts unless (merchant, idempotency key) exists; None means another request got there first."""
    return PAYMENTS.one(await q.fetchrow(_INSERT, *PAYMENTS.values(row)))


# What a retry of a create meets when the payment it made is already in: the (merchant, key) unique.
KEY_TAKEN = "uq_payments_merchant_id_idempotency_key"


def insert_at_commit(tx: Tx, row: Payment) -> Payment:
    """`row`, inserted at the commit with the transaction's other writes, as it is then (see
    `Tx.insert`). A key another request got in first fails the commit with `Conflict(KEY_TAKEN)`."""
    tx.insert(PAYMENTS, row.id, row)
    return row


async def find_by_key(q: Queries, merchant_id: str, key: str) -> Payment | None:
    return PAYMENTS.one(await q.fetchrow(_BY_KEY, merchant_id, key))


async def get(q: Queries, merchant_id: str, livemode: bool, payment_id: str) -> Payment | None:
    """The payment if it is this merchant's in this mode: another's is as good as absent."""
    return PAYMENTS.one(await q.fetchrow(_GET, payment_id, merchant_id, livemode))


async def get_shown(q: Queries, merchant_id: str, livemode: bool, payment_id: str) -> Record | None:
    """`get`'s payment as the record of the columns schemas.SHOWN names (payment_view renders it)."""
    return await q.fetchrow(_GET_SHOWN, payment_id, merchant_id, livemode)


async def lock(tx: Tx, payment_id: str) -> Payment | None:
    """The payment, its row lock held until the transaction ends (any caller, any merchant).
    Locks of a payment and its refunds are taken through refunds.repository.lock_refund's order."""
    return PAYMENTS.one(await tx.fetchrow(_LOCK, payment_id))


async def find_for_link(q: Queries, link_id: str, checkout_id: str) -> Payment | None:
    """The payment a payment link made that this checkout id names (a returning browser's)."""
    return PAYMENTS.one(await q.fetchrow(_FOR_LINK, checkout_id, link_id))


def mark_link_paid(tx: Tx, link_id: str) -> None:
    """A payment made from a link succeeded: the link's first success is its `paid_at` (which stops a
    single-use link). Written at the commit with the payment's move, in the same transaction."""
    name = tx.name_for("paid", link_id)  # once per link and transaction
    if all(d[0] != name for d in tx.deferred):
        tx.defer(name, _LINK_PAID.format(p=f"{name}_id"), {f"{name}_id": link_id})


async def single_use_link_taken(tx: Tx, link_id: str, payment_id: str) -> bool:
    """For a confirm of `payment_id`, made from the link: whether the link is single-use and another
    of its payments is paid or being paid. Locks the link's row until the commit, so two customers
    confirming at once take turns and the second sees the first."""
    taken: bool | None = await tx.fetchval(_LINK_TAKEN, link_id, payment_id)
    return bool(taken)


@dataclass(frozen=True, slots=True)
class HeldCashSession:
    id: str
    drawer: str
    currency: str
    status: str


async def hold_cash_session(
    tx: Tx, session_id: str, merchant_id: str, livemode: bool
) -> HeldCashSession | None:
    """The merchant's cash session in this mode, share-locked until the transaction ends."""
    row = await tx.fetchrow(_HOLD_CASH_SESSION, session_id, merchant_id, livemode)
    return None if row is None else HeldCashSession(*row)


async def hold_open_session_of_drawer(
    tx: Tx, session_id: str, merchant_id: str, livemode: bool
) -> HeldCashSession | None:
    """The open session of `session_id`'s drawer (itself if still open), share-locked; None if none."""
    row = await tx.fetchrow(_HOLD_OPEN_OF_DRAWER, session_id, merchant_id, livemode)
    return None if row is None else HeldCashSession(*row)


async def status_at(q: Queries, payment_id: str, provider: str, account_id: str) -> str | None:
    """The payment's status if it is paid through `provider` and that account ('' for the deployment's
    account); None if there is no such payment."""
    status: str | None = await q.fetchval(_STATUS_AT, payment_id, provider, account_id)
    return status


async def private_at(
    q: Queries, payment_id: str, provider: str, account_id: str
) -> tuple[int, dict[str, Any] | None] | None:
    """(current attempt, what its rail keeps private) of a payment paid through `provider` and that
    account; None if there is no such payment. For a notification's check, before anything is stored."""
    row = await q.fetchrow(_PRIVATE_AT, payment_id, provider, account_id)
    return None if row is None else (row[0], row[1])


async def find_id_by_provider_reference(
    q: Queries, provider: str, account_id: str, reference: str
) -> str | None:
    found: str | None = await q.fetchval(_BY_PROVIDER_REFERENCE, provider, reference, account_id)
    return found


async def lock_by_provider_reference(
    tx: Tx, provider: str, account_id: str, reference: str
) -> Payment | None:
    """The payment the provider knows by `reference` through that account, locked as `lock` locks
    (one round trip where finding its id and then locking it took two)."""
    return PAYMENTS.one(await tx.fetchrow(_LOCK_BY_PROVIDER_REFERENCE, provider, reference, account_id))


async def read_by_provider_reference(
    tx: Tx, provider: str, account_id: str, reference: str
) -> tuple[Payment, int] | None:
    """`lock_by_provider_reference` without the lock: the payment and its row version, which the
    caller guards (`Tx.guard`) so that its commit writes only if nobody changed the row meanwhile."""
    record = await tx.read(_READ_BY_PROVIDER_REFERENCE, provider, reference, account_id)
    return None if record is None else (Payment(*record[:-1]), record[-1])


async def claim_provider_lease(q: Queries, payment_id: str, until: datetime) -> bool:
    """Takes the right to call the provider for a still-pending payment whose last attempt has ended."""
    return await q.fetchval(_CLAIM_LEASE, payment_id, until) is not None


async def release_provider_lease(q: Queries, payment_id: str) -> None:
    await q.execute(_RELEASE_LEASE, payment_id)


async def list_payments(
    q: Queries, merchant_id: str, livemode: bool, filters: PaymentFilters, cursor: Page
) -> tuple[list[Record], bool]:
    """Newest first; `starting_after` walks to older rows, `ending_before` to newer ones. Each payment
    as the record of the columns schemas.SHOWN names (payment_view renders it)."""
    where = Where().add("merchant_id = {}", merchant_id).add("livemode = {}", livemode).owned()
    where.maybe("status = {}", filters.status)
    where.maybe("provider = {}", filters.provider)
    where.maybe("reference = {}", filters.reference)
    where.maybe("customer_email = {}", filters.customer_email)
    where.maybe("payment_link_id = {}", filters.payment_link)
    where.created(filters.created_gte, filters.created_lt)
    return await page_of(q, PAYMENTS.table, _SHOWN, where, cursor)


_A = PAYMENT_ATTEMPTS.columns
_INSERT_ATTEMPT = PAYMENT_ATTEMPTS.insert_sql()
_ATTEMPTS = f"SELECT {_A} FROM payment_attempts WHERE payment_id = $1 ORDER BY number"
# Attempt n's row follows the payment while n is the payment's current attempt: written at the commit
# with the payment's own update (one statement), named per payment so a second move replaces it.
_MIRROR_ATTEMPT = """UPDATE payment_attempts SET status = :{n}_status, provider_reference = :{n}_reference,
failure_code = :{n}_code, failure_message = :{n}_message, updated_at = now()
WHERE payment_id = :{n}_payment AND number = :{n}_number"""
_ATTEMPT_BY_REFERENCE = f"SELECT payment_id, number FROM payment_attempts WHERE {_REFERENCE_OF} LIMIT 1"


async def insert_attempt(tx: Tx, attempt: PaymentAttempt) -> None:
    await tx.execute(_INSERT_ATTEMPT, *PAYMENT_ATTEMPTS.values(attempt))


async def list_attempts(q: Queries, payment_id: str) -> list[PaymentAttempt]:
    return PAYMENT_ATTEMPTS.many(await q.fetch(_ATTEMPTS, payment_id))


async def find_attempt_by_provider_reference(
    q: Queries, provider: str, account_id: str, reference: str
) -> tuple[str, int] | None:
    """(payment id, attempt number) of the attempt the provider knows by `reference`."""
    row = await q.fetchrow(_ATTEMPT_BY_REFERENCE, provider, reference, account_id)
    return None if row is None else (row["payment_id"], row["number"])


def mirror_attempt(tx: Tx, payment: Payment) -> None:
    """Writes the payment's status, reference and failure to its current attempt's row at the commit."""
    if payment.attempt < 1:
        return
    name = tx.name_for("att", payment.id)  # a second move of the payment replaces its write
    tx.deferred[:] = [d for d in tx.deferred if d[0] != name]
    tx.defer(
        name,
        _MIRROR_ATTEMPT.format(n=name),
        {
            f"{name}_status": payment.status,
            f"{name}_reference": payment.provider_reference,
            f"{name}_code": payment.failure_code,
            f"{name}_message": payment.failure_message,
            f"{name}_payment": payment.id,
            f"{name}_number": payment.attempt,
        },
    )


def save(tx: Tx, payment: Payment, changes: dict[str, Any]) -> None:
    """Writes fields the state machine set on `payment`: one UPDATE of those columns, sent with the
    transaction's other deferred writes at the commit."""
    tx.update(PAYMENTS, payment.id, changes)


# The statuses the reconciler asks about (ix_payments_reconcile_due covers them).
UNSETTLED = ("pending", "requires_action", "processing")


async def claim_for_reconcile(q: Queries, limit: int, backoff: float, max_backoff: float) -> list[str]:
    return await claim_due_for_reconcile(
        q, "payments", UNSETTLED, limit=limit, backoff=backoff, max_backoff=max_backoff
    )


async def count_due_for_reconcile(q: Queries, cap: int) -> int:
    return await query.count_due_for_reconcile(q, "payments", UNSETTLED, cap=cap)


# Oldest first, each row locked for its move to expired; rows a confirm holds are left for later.
_UNCONFIRMED_BEFORE = f"""
SELECT {_C} FROM payments
WHERE status = 'requires_payment_method' AND created_at <= $1
ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED
"""


async def lock_unconfirmed_before(tx: Tx, cutoff: datetime, limit: int) -> list[Payment]:
    """Payments nobody confirmed since before `cutoff` (ix_payments_unconfirmed), locked."""
    return PAYMENTS.many(await tx.fetch(_UNCONFIRMED_BEFORE, cutoff, limit))


_BY_CHECKOUT_ID = f"SELECT {_C} FROM payments WHERE checkout_id = $1"


async def get_by_checkout_id(q: Queries, checkout_id: str) -> Payment | None:
    """The payment of a hosted checkout (`/checkout/{checkout_id}`): the unguessable id is its only
    credential, so the caller shows no more than the checkout page does."""
    return PAYMENTS.one(await q.fetchrow(_BY_CHECKOUT_ID, checkout_id))


_CLOSE_ATTEMPT = """UPDATE payment_attempts SET status = $3, failure_code = $4, failure_message = $5,
updated_at = now() WHERE payment_id = $1 AND number = $2"""


async def close_attempt(
    tx: Tx, payment_id: str, number: int, *, status: str, failure_code: str, failure_message: str
) -> None:
    """Ends an attempt the payment moves on from (a routed payment's provider that could not take
    it) without touching the payment's own status."""
    await tx.execute(_CLOSE_ATTEMPT, payment_id, number, status, failure_code, failure_message)
