"""Every query of provider_accounts."""

from __future__ import annotations

from gateway.db.database import Queries
from gateway.provider_accounts.models import PROVIDER_ACCOUNTS, ProviderAccount

_COLS = PROVIDER_ACCOUNTS.columns
_GET = f"SELECT {_COLS} FROM provider_accounts WHERE id = $1"  # noqa: S608
_ACTIVE = (
    f"SELECT {_COLS} FROM provider_accounts "  # noqa: S608
    "WHERE merchant_id = $1 AND provider = $2 AND livemode = $3 AND status = 'active'"
)


async def get(q: Queries, account_id: str) -> ProviderAccount | None:
    """An account by id, deleted or not (payments made through a deleted account still sync)."""
    return PROVIDER_ACCOUNTS.one(await q.fetchrow(_GET, account_id))


async def active(q: Queries, merchant_id: str, provider: str, livemode: bool) -> ProviderAccount | None:
    """The merchant's account that takes new payments through `provider` in this mode."""
    return PROVIDER_ACCOUNTS.one(await q.fetchrow(_ACTIVE, merchant_id, provider, livemode))
