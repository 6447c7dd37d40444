"""Every query of provider_accounts."""

from __future__ import annotations

from typing import Any

from gateway.db.database import Queries
from gateway.provider_accounts.models import PROVIDER_ACCOUNTS, ProviderAccount

_COLS = PROVIDER_ACCOUNTS.columns
_GET = f"SELECT {_COLS} FROM provider_accounts WHERE id = $1"  # noqa: S608
_ACTIVE = (
    f"SELECT {_COLS} FROM provider_accounts "  # noqa: S608
    "WHERE merchant_id = $1 AND provider = $2 AND livemode = $3 AND status = 'active'"
)
# The merchant's row for a provider and mode, deleted or not (a PUT replaces or revives it), locked
# until the transaction ends so two PUTs at once replace one after the other.
_LOCK_ANY = (
    f"SELECT {_COLS} FROM provider_accounts "  # noqa: S608
    "WHERE merchant_id = $1 AND provider = $2 AND livemode = $3 FOR UPDATE"
)
_INSERT = PROVIDER_ACCOUNTS.insert_sql(
    f"ON CONFLICT (merchant_id, provider, livemode) DO NOTHING RETURNING {_COLS}"
)
_REPLACE = f"""
UPDATE provider_accounts SET status = 'active', secrets = $2, secrets_key_id = $3, hints = $4, settings = $5,
    updated_at = now()
WHERE id = $1 RETURNING {_COLS}
"""  # noqa: S608
_ALL_ACTIVE = (
    f"SELECT {_COLS} FROM provider_accounts "  # noqa: S608
    "WHERE merchant_id = $1 AND livemode = $2 AND status = 'active' ORDER BY provider"
)
_OF_MERCHANT = (
    f"SELECT {_COLS} FROM provider_accounts "  # noqa: S608
    "WHERE merchant_id = $1 AND status = 'active' ORDER BY livemode, provider"
)
_ACTIVE_IDS = (
    "SELECT provider, id FROM provider_accounts "
    "WHERE merchant_id = $1 AND livemode = $2 AND status = 'active'"
)
_DELETE = (
    f"UPDATE provider_accounts SET status = 'deleted', updated_at = now() "  # noqa: S608
    f"WHERE id = $1 RETURNING {_COLS}"
)
# Rows sealed by another key than the current one, a batch at a time; rows another rotation holds
# are skipped, and so are the ones this run could not open.
_TO_RESEAL = (
    f"SELECT {_COLS} FROM provider_accounts "  # noqa: S608
    "WHERE secrets_key_id <> $1 AND NOT (id = ANY($2)) ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED"
)
_RESEAL = "UPDATE provider_accounts SET secrets = $2, secrets_key_id = $3 WHERE id = $1"


async def get(q: Queries, account_id: str) -> ProviderAccount | None:
    """An account by id, deleted or not (payments made through a deleted account still sync)."""
    return PROVIDER_ACCOUNTS.one(await q.fetchrow(_GET, account_id))


async def active(q: Queries, merchant_id: str, provider: str, livemode: bool) -> ProviderAccount | None:
    """The merchant's account that takes new payments through `provider` in this mode."""
    return PROVIDER_ACCOUNTS.one(await q.fetchrow(_ACTIVE, merchant_id, provider, livemode))


async def lock_any(q: Queries, merchant_id: str, provider: str, livemode: bool) -> ProviderAccount | None:
    return PROVIDER_ACCOUNTS.one(await q.fetchrow(_LOCK_ANY, merchant_id, provider, livemode))


async def insert(q: Queries, account: ProviderAccount) -> ProviderAccount | None:
    """The new row; None when another request inserted the merchant's row for this provider first."""
    return PROVIDER_ACCOUNTS.one(await q.fetchrow(_INSERT, *PROVIDER_ACCOUNTS.values(account)))


async def replace(
    q: Queries, account_id: str, secrets: str, key_id: str, hints: dict[str, str], settings: dict[str, Any]
) -> ProviderAccount:
    row = PROVIDER_ACCOUNTS.one(await q.fetchrow(_REPLACE, account_id, secrets, key_id, hints, settings))
    assert row is not None  # locked by lock_any in this transaction
    return row


async def all_active(q: Queries, merchant_id: str, livemode: bool) -> list[ProviderAccount]:
    return PROVIDER_ACCOUNTS.many(await q.fetch(_ALL_ACTIVE, merchant_id, livemode))


async def of_merchant(q: Queries, merchant_id: str) -> list[ProviderAccount]:
    """The merchant's active accounts in both modes (the CLI's list)."""
    return PROVIDER_ACCOUNTS.many(await q.fetch(_OF_MERCHANT, merchant_id))


async def active_ids(q: Queries, merchant_id: str, livemode: bool) -> dict[str, str]:
    """provider -> the id of the merchant's active account with it, in one statement."""
    return {r[0]: r[1] for r in await q.fetch(_ACTIVE_IDS, merchant_id, livemode)}


async def mark_deleted(q: Queries, account_id: str) -> ProviderAccount | None:
    return PROVIDER_ACCOUNTS.one(await q.fetchrow(_DELETE, account_id))


async def to_reseal(q: Queries, current_key_id: str, skip: list[str], limit: int) -> list[ProviderAccount]:
    return PROVIDER_ACCOUNTS.many(await q.fetch(_TO_RESEAL, current_key_id, skip, limit))


async def reseal(q: Queries, account_id: str, secrets: str, key_id: str) -> None:
    await q.execute(_RESEAL, account_id, secrets, key_id)
