"""Merchants, their API keys (shown once, stored as a SHA-256 hash), and authentication of a request."""

from __future__ import annotations

import re
import secrets
import string
import time
from dataclasses import dataclass

from redis.asyncio import Redis

from gateway.broadcast import Broadcast
from gateway.db.database import Database
from gateway.errors import InvalidAccessToken, InvalidApiKey, MerchantDisabled
from gateway.kit.ids import new_id
from gateway.kit.signing import sha256_hex
from gateway.merchants import repository
from gateway.merchants.revocations import RevokedKeys
from gateway.merchants.tokens import IssuedToken, TokenKeys, expiry_of

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
    # Unix time after which the key (a rolled one) or the access token is refused; None: never.
    expires_at: float | None = None


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


_KEY_SHAPE = re.compile(r"(sk|rk|pk)_(test|live)_[A-Za-z0-9]{16,100}")
_TYPE_OF_PREFIX = {prefix: type for type, prefix in KEY_PREFIXES.items()}
_CACHE_MAX = 10_000


@dataclass(slots=True)
class _Cached:
    until: float  # monotonic
    principal: Principal
    disabled: bool


class Authenticator:
    """Resolves a bearer credential (an API key or an access token) to a principal.

    Keys: one query (the key joined with its merchant) per cache miss; hits are cached in process
    for `cache_seconds` and dropped at once when the broadcast says the key ("key") or its merchant
    ("merchant") changed, or that messages may have been missed (None). A key's expiry is checked
    on every hit, so a rolled key stops at its expiry even while cached. Unknown keys are not cached:
    a negative cache would let anyone fill memory (and evict real keys) with made-up keys, and would
    refuse a key just created on another replica; a malformed key costs no query at all, and the
    failed-authentication rate limit bounds the rest.

    Access tokens: verified by signature and claims, the key they were made from checked against the
    revoked keys held in process (revocations.py), the merchant's standing cached like keys: no
    database round trip per request.
    """

    def __init__(
        self,
        db: Database,
        cache_seconds: float,
        *,
        redis: Redis,
        broadcast: Broadcast,
        tokens: TokenKeys | None = None,
    ):
        self._db = db
        self._ttl = cache_seconds
        self._keys: dict[str, _Cached] = {}
        self._merchants: dict[str, tuple[float, repository.MerchantStanding]] = {}
        self.tokens = tokens
        self.revoked = RevokedKeys(redis)
        broadcast.on("key", self._forget_key)
        broadcast.on("merchant", self._forget_merchant)

    async def authenticate(self, token: str) -> Principal:
        """The principal of a key or an access token; InvalidApiKey, InvalidAccessToken,
        AccessTokenExpired or MerchantDisabled when it may not be used."""
        if token.startswith("eyJ"):  # a JWT: base64url of `{"`
            return await self._access_token(token)
        return await self.authenticate_key(token)

    async def authenticate_key(self, key: str) -> Principal:
        shape = _KEY_SHAPE.fullmatch(key)
        if shape is None:
            raise InvalidApiKey("No such API key: keys look like `sk_test_…`, `rk_test_…` or `pk_test_…`.")
        key_hash = sha256_hex(key)
        hit = self._keys.get(key_hash)
        if hit is None or hit.until <= time.monotonic():
            hit = await self._load_key(key_hash, _TYPE_OF_PREFIX[shape[1]], shape[2] == "live")
        principal = hit.principal
        if principal.expires_at is not None and principal.expires_at <= time.time():
            raise InvalidApiKey("This API key has expired (it was rolled); use the key that replaced it.")
        if hit.disabled:
            raise MerchantDisabled("This merchant is disabled; its keys and tokens are refused.")
        return principal

    async def _load_key(self, key_hash: str, type: str, livemode: bool) -> _Cached:
        found = await repository.key_for_auth(self._db, key_hash)
        self._keys.pop(key_hash, None)
        if found is None or found.type != type or found.livemode != livemode:
            # A key whose prefix lies about its type or mode was not made by us: as unknown.
            raise InvalidApiKey("No such API key.")
        principal = Principal(
            merchant_id=found.merchant_id,
            livemode=found.livemode,
            key_id=found.id,
            key_type=found.type,
            scopes=frozenset(found.scopes or ()) if found.type == "restricted" else None,
            rate_limit=found.rate_limit,
            expires_at=expiry_of(found.expires_at),
        )
        until = time.monotonic() + self._ttl
        cached = _Cached(until, principal, found.merchant_status != "active")
        if self._ttl > 0:
            if len(self._keys) >= _CACHE_MAX:
                self._keys.clear()
            self._keys[key_hash] = cached
            self._merchants[found.merchant_id] = (
                until,
                repository.MerchantStanding(found.merchant_status, found.rate_limit),
            )
        return cached

    async def _access_token(self, token: str) -> Principal:
        if self.tokens is None:
            raise InvalidAccessToken("This gateway issues no access tokens (GATEWAY_JWT_KEYS is unset).")
        claims = self.tokens.verify(token)
        if await self.revoked.is_revoked(claims.key_id):
            raise InvalidAccessToken("The key this access token was made from has been revoked.")
        standing = await self._standing(claims.merchant_id)
        if standing is None:
            raise InvalidAccessToken("The access token's merchant does not exist.")
        if standing.status != "active":
            raise MerchantDisabled("This merchant is disabled; its keys and tokens are refused.")
        return Principal(
            merchant_id=claims.merchant_id,
            livemode=claims.livemode,
            key_id=claims.key_id,
            key_type=claims.key_type,
            scopes=claims.scopes,
            rate_limit=standing.rate_limit,
            expires_at=claims.expires_at,
        )

    async def _standing(self, merchant_id: str) -> repository.MerchantStanding | None:
        hit = self._merchants.get(merchant_id)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1]
        standing = await repository.merchant_standing(self._db, merchant_id)
        if standing is not None and self._ttl > 0:
            if len(self._merchants) >= _CACHE_MAX:
                self._merchants.clear()
            self._merchants[merchant_id] = (now + self._ttl, standing)
        return standing

    def issue_token(self, principal: Principal, scopes: frozenset[str] | None) -> IssuedToken:
        """An access token for a key's principal, narrowed to `scopes` (already checked against it)."""
        assert self.tokens is not None
        return self.tokens.issue(
            merchant_id=principal.merchant_id,
            livemode=principal.livemode,
            key_id=principal.key_id,
            key_type=principal.key_type,
            scopes=scopes,
            key_expires_at=principal.expires_at,
            now=time.time(),
        )

    # The broadcast's callbacks (a key changed; a merchant changed; None: forget everything).

    def _forget_key(self, key_id: str | None) -> None:
        if key_id is None:
            self._keys.clear()
            self._merchants.clear()
        else:
            for key_hash in [h for h, c in self._keys.items() if c.principal.key_id == key_id]:
                del self._keys[key_hash]
        self.revoked.invalidate(key_id)

    def _forget_merchant(self, merchant_id: str | None) -> None:
        if merchant_id is None:
            self._keys.clear()
            self._merchants.clear()
            return
        self._merchants.pop(merchant_id, None)
        for key_hash in [h for h, c in self._keys.items() if c.principal.merchant_id == merchant_id]:
            del self._keys[key_hash]

    async def aclose(self) -> None:
        await self.revoked.aclose()
