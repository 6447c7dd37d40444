from __future__ import annotations

from gateway.db.database import Queries
from gateway.merchants.models import API_KEYS, MERCHANTS, ApiKey, Merchant

_CREATE = "INSERT INTO merchants (id, name) VALUES ($1, $2)"
_GET = f"SELECT {MERCHANTS.columns} FROM merchants WHERE id = $1"  # noqa: S608
_ADD_KEY = "INSERT INTO api_keys (id, merchant_id, key_hash, prefix, livemode) VALUES ($1, $2, $3, $4, $5)"
_ACTIVE_KEY = f"SELECT {API_KEYS.columns} FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL"  # noqa: S608


async def create(q: Queries, merchant_id: str, name: str) -> None:
    await q.execute(_CREATE, merchant_id, name)


async def get(q: Queries, merchant_id: str) -> Merchant | None:
    return MERCHANTS.one(await q.fetchrow(_GET, merchant_id))


async def add_key(
    q: Queries, key_id: str, merchant_id: str, key_hash: str, prefix: str, livemode: bool
) -> None:
    await q.execute(_ADD_KEY, key_id, merchant_id, key_hash, prefix, livemode)


async def find_active_key(q: Queries, key_hash: str) -> ApiKey | None:
    return API_KEYS.one(await q.fetchrow(_ACTIVE_KEY, key_hash))
