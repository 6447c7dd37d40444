from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gateway.db.database import Queries
from gateway.kit.signing import sha256_hex
from gateway.merchants.models import API_KEYS, MERCHANTS, ApiKey, Merchant

_CREATE = "INSERT INTO merchants (id, name) VALUES ($1, $2)"
_GET = f"SELECT {MERCHANTS.columns} FROM merchants WHERE id = $1"  # noqa: S608
_ADD_KEY = """
INSERT INTO api_keys (id, merchant_id, key_hash, prefix, livemode, type, scopes, last4, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
"""
# Authentication's one query per cache miss: the key and what of its merchant decides the answer.
_KEY_FOR_AUTH = """
SELECT k.id, k.merchant_id, k.livemode, k.type, k.scopes, k.expires_at, m.status, m.rate_limit
FROM api_keys k JOIN merchants m ON m.id = k.merchant_id
WHERE k.key_hash = $1 AND k.revoked_at IS NULL
"""
_MERCHANT_STANDING = "SELECT status, rate_limit FROM merchants WHERE id = $1"
_ACTIVE_KEY = f"SELECT {API_KEYS.columns} FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL"  # noqa: S608


async def create(q: Queries, merchant_id: str, name: str) -> None:
    await q.execute(_CREATE, merchant_id, name)


async def get(q: Queries, merchant_id: str) -> Merchant | None:
    return MERCHANTS.one(await q.fetchrow(_GET, merchant_id))


async def add_key(
    q: Queries,
    key_id: str,
    merchant_id: str,
    key: str,
    livemode: bool,
    *,
    type: str = "secret",
    scopes: list[str] | None = None,
    expires_at: datetime | None = None,
) -> None:
    """Stores a new key by its hash, with its prefix and last four characters to tell it apart."""
    await q.execute(
        _ADD_KEY, key_id, merchant_id, sha256_hex(key), key[:12], livemode, type, scopes, key[-4:], expires_at
    )


async def find_active_key(q: Queries, key_hash: str) -> ApiKey | None:
    return API_KEYS.one(await q.fetchrow(_ACTIVE_KEY, key_hash))


@dataclass(slots=True, frozen=True)
class KeyForAuth:
    """An unrevoked key as authentication needs it, with its merchant's status and rate limit."""

    id: str
    merchant_id: str
    livemode: bool
    type: str
    scopes: list[str] | None
    expires_at: datetime | None
    merchant_status: str
    rate_limit: int | None


@dataclass(slots=True, frozen=True)
class MerchantStanding:
    status: str
    rate_limit: int | None


async def key_for_auth(q: Queries, key_hash: str) -> KeyForAuth | None:
    record = await q.fetchrow(_KEY_FOR_AUTH, key_hash)
    return None if record is None else KeyForAuth(*record)


async def merchant_standing(q: Queries, merchant_id: str) -> MerchantStanding | None:
    record = await q.fetchrow(_MERCHANT_STANDING, merchant_id)
    return None if record is None else MerchantStanding(*record)
