"""Merchants and their secret API keys (shown once, stored as a SHA-256 hash)."""

from __future__ import annotations

import secrets
import string
import time
from dataclasses import dataclass

from gateway.db.database import Database
from gateway.errors import InvalidApiKey
from gateway.kit.ids import new_id
from gateway.kit.signing import sha256_hex
from gateway.merchants import repository

_KEY_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True)
class Principal:
    """Who is calling: one merchant in one mode, through one key (or a token made from it)."""

    merchant_id: str
    livemode: bool
    key_id: str
    # secret | restricted | publishable
    key_type: str = "secret"
    # What a restricted key (or a narrowed access token) may do; None: everything its type may.
    scopes: frozenset[str] | None = None
    # The merchant's requests/s per key, overriding the mode's default; None: the default.
    rate_limit: int | None = None


@dataclass(frozen=True)
class NewMerchant:
    merchant_id: str
    name: str
    secret_key: str
    livemode: bool


KEY_PREFIXES = {"secret": "sk", "publishable": "pk", "restricted": "rk"}


def generate_key(livemode: bool, type: str = "secret") -> str:
    """`sk_test_…`, `pk_live_…`, `rk_test_…`: the type and mode, then ~190 random bits."""
    body = "".join(secrets.choice(_KEY_ALPHABET) for _ in range(32))
    return f"{KEY_PREFIXES[type]}_{'live' if livemode else 'test'}_{body}"


def generate_secret_key(livemode: bool) -> str:
    return generate_key(livemode, "secret")


async def create_merchant(db: Database, name: str, *, livemode: bool = False) -> NewMerchant:
    merchant_id = new_id("mer")
    key = generate_secret_key(livemode)
    async with db.transaction() as tx:
        await repository.create(tx, merchant_id, name)
        await repository.add_key(tx, new_id("key"), merchant_id, key, livemode)
    return NewMerchant(merchant_id, name, key, livemode)


class Authenticator:
    """Resolves a bearer key to a principal; hits are cached in process for a short while."""

    def __init__(self, db: Database, cache_seconds: float):
        self._db = db
        self._ttl = cache_seconds
        self._cache: dict[str, tuple[float, Principal]] = {}

    async def authenticate(self, secret_key: str) -> Principal:
        if not secret_key.startswith(("sk_test_", "sk_live_")) or len(secret_key) > 128:
            raise InvalidApiKey("The API key is not a secret key (sk_test_… or sk_live_…).")
        key_hash = sha256_hex(secret_key)
        now = time.monotonic()
        hit = self._cache.get(key_hash)
        if hit is not None and hit[0] > now:
            return hit[1]
        found = await repository.find_active_key(self._db, key_hash)
        if found is None:
            self._cache.pop(key_hash, None)
            raise InvalidApiKey("No such API key.")
        # Stand-in until the Authenticator's rewrite (#13, "auth") reads the merchant with its key.
        merchant = await repository.get(self._db, found.merchant_id)
        principal = Principal(
            merchant_id=found.merchant_id,
            livemode=found.livemode,
            key_id=found.id,
            rate_limit=merchant.rate_limit if merchant is not None else None,
        )
        if self._ttl > 0:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key_hash] = (now + self._ttl, principal)
        return principal
