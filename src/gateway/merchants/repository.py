from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.db.database import Queries, Tx
from gateway.db.query import Where, paginate
from gateway.kit.pagination import Page
from gateway.kit.signing import sha256_hex
from gateway.merchants.models import API_KEYS, MERCHANTS, ApiKey, Merchant

_M = MERCHANTS.columns
_K = API_KEYS.columns
_CREATE = f"INSERT INTO merchants (id, name, rate_limit) VALUES ($1, $2, $3) RETURNING {_M}"  # noqa: S608
_GET = f"SELECT {_M} FROM merchants WHERE id = $1"  # noqa: S608
_ADD_KEY = f"""
INSERT INTO api_keys (id, merchant_id, key_hash, prefix, livemode, type, scopes, last4, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
RETURNING {_K}
"""  # noqa: S608
_GET_KEY = f"SELECT {_K} FROM api_keys WHERE id = $1"  # noqa: S608
# Authentication's one query per cache miss: the key and what of its merchant decides the answer.
_KEY_FOR_AUTH = """
SELECT k.id, k.merchant_id, k.livemode, k.type, k.scopes, k.expires_at, m.status, m.rate_limit
FROM api_keys k JOIN merchants m ON m.id = k.merchant_id
WHERE k.key_hash = $1 AND k.revoked_at IS NULL
"""
_MERCHANT_STANDING = "SELECT status, rate_limit FROM merchants WHERE id = $1"
_ACTIVE_KEY = f"SELECT {API_KEYS.columns} FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL"  # noqa: S608


async def create(q: Queries, merchant_id: str, name: str, rate_limit: int | None = None) -> Merchant:
    merchant = MERCHANTS.one(await q.fetchrow(_CREATE, merchant_id, name, rate_limit))
    assert merchant is not None
    return merchant


async def get(q: Queries, merchant_id: str, *, for_update: bool = False) -> Merchant | None:
    return MERCHANTS.one(await q.fetchrow(_GET + (" FOR UPDATE" if for_update else ""), merchant_id))


async def list_merchants(q: Queries, page: Page, status: str | None = None) -> tuple[list[Merchant], bool]:
    # The operator's list: every merchant is its own, so the owner's condition is TRUE.
    where = Where().add("TRUE").owned().maybe("status = {}", status)
    return await paginate(q, MERCHANTS, where, page)


def save_merchant(tx: Tx, merchant: Merchant, changes: dict[str, Any]) -> Merchant:
    """Writes `changes` at the commit; the merchant as it will then be."""
    tx.update(MERCHANTS, merchant.id, changes)
    return dataclasses.replace(merchant, **changes)


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
) -> ApiKey:
    """Stores a new key by its hash, with its prefix and last four characters to tell it apart."""
    row = API_KEYS.one(
        await q.fetchrow(
            _ADD_KEY,
            key_id,
            merchant_id,
            sha256_hex(key),
            key[:12],
            livemode,
            type,
            scopes,
            key[-4:],
            expires_at,
        )
    )
    assert row is not None
    return row


async def get_key(q: Queries, key_id: str, *, for_update: bool = False) -> ApiKey | None:
    return API_KEYS.one(await q.fetchrow(_GET_KEY + (" FOR UPDATE" if for_update else ""), key_id))


async def list_keys(q: Queries, merchant_id: str, livemode: bool, page: Page) -> tuple[list[ApiKey], bool]:
    where = Where().add("merchant_id = {}", merchant_id).add("livemode = {}", livemode).owned()
    return await paginate(q, API_KEYS, where, page)


def save_key(tx: Tx, key: ApiKey, changes: dict[str, Any]) -> ApiKey:
    """Writes `changes` at the commit; the key as it will then be."""
    tx.update(API_KEYS, key.id, changes)
    return dataclasses.replace(key, **changes)


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
