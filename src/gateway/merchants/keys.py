"""Merchants and their API keys as the operator and the merchants manage them: create, list, change,
roll, revoke.

Every change that other processes cache (a revoked or rolled key, a merchant's status or rate limit)
is announced after its commit through the broadcast (topics "key" and "merchant"), so every replica
forgets it within milliseconds; a revoked key's id is first added to the Redis sorted set that
access-token checks read (`gateway:revoked-keys`, scored by the revocation's unix time), so a process
that (re)connects can reload it. A key's secret exists only in the answer that made it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.broadcast import Broadcast
from gateway.db.database import Database
from gateway.errors import ApiKeyNotRollable, InvalidRequest, InvalidScopes, NotFound
from gateway.kit.ids import new_id
from gateway.kit.pagination import Page
from gateway.merchants import repository, revocations
from gateway.merchants.models import KEY_TYPES, ApiKey, Merchant
from gateway.merchants.scopes import SCOPES
from gateway.merchants.service import Principal, generate_key

log = structlog.get_logger("gateway.merchants")

# A rolled key keeps working at most this long beside its successor (Stripe allows 7 days too).
MAX_ROLL_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class NewKey:
    key: ApiKey
    secret: str  # shown once, never stored


@dataclass(frozen=True)
class Rolled:
    new: NewKey
    old: ApiKey


def key_status(key: ApiKey, now: datetime | None = None) -> str:
    """revoked | expired | active (a rolled key is active until its expires_at)."""
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= (now or datetime.now(UTC)):
        return "expired"
    return "active"


def checked_scopes(type: str, scopes: Sequence[str] | None) -> list[str] | None:
    """The scopes to store with a key of `type`: a restricted key's (one or more of SCOPES, in
    SCOPES' order, each once); None for secret and publishable keys, which take none."""
    if type not in KEY_TYPES:
        raise InvalidRequest(
            f"type must be one of {', '.join(KEY_TYPES)}.",
            errors=[{"loc": ["body", "type"], "msg": "unknown key type", "type": "literal_error"}],
        )
    if type != "restricted":
        if scopes:
            raise InvalidScopes(
                f"A {type} key takes no scopes (it may do all a {type} key may); "
                "give scopes to a restricted key instead.",
                param="scopes",
            )
        return None
    if not scopes:
        raise InvalidScopes(
            f"A restricted key needs at least one scope: {', '.join(SCOPES)}.", param="scopes"
        )
    unknown = sorted({s for s in scopes if s not in SCOPES})
    if unknown:
        raise InvalidScopes(
            f"Unknown scopes: {', '.join(unknown)}. A restricted key takes {', '.join(SCOPES)}.",
            param="scopes",
        )
    return [s for s in SCOPES if s in scopes]


def _missing_key(key_id: str) -> NotFound:
    return NotFound(f"No such API key: {key_id!r}", param="id")


class KeyManager:
    """Merchants and keys on the database; `principal` None is the operator (admin API, CLI), who
    reaches every merchant's keys; a merchant reaches only its own keys in its key's mode."""

    def __init__(self, db: Database, redis: Redis | None, broadcast: Broadcast | None = None):
        self.db = db
        # None: a command that only creates and reads (the CLI without Redis); changes need both.
        self.redis = redis
        self.broadcast = broadcast or (Broadcast(redis) if redis is not None else None)

    def _announcer(self) -> tuple[Redis, Broadcast]:
        if self.redis is None or self.broadcast is None:
            raise RuntimeError("announcing a key or merchant change needs Redis")
        return self.redis, self.broadcast

    # --- merchants ---------------------------------------------------------------------------------

    async def create_merchant(self, name: str, rate_limit: int | None = None) -> Merchant:
        merchant = await repository.create(self.db, new_id("mer"), name, rate_limit)
        log.info("merchant_created", merchant_id=merchant.id)
        return merchant

    async def get_merchant(self, merchant_id: str) -> Merchant:
        merchant = await repository.get(self.db, merchant_id)
        if merchant is None:
            raise NotFound(f"No such merchant: {merchant_id!r}", param="id")
        return merchant

    async def list_merchants(self, page: Page, status: str | None = None) -> tuple[list[Merchant], bool]:
        return await repository.list_merchants(self.db, page, status)

    async def update_merchant(self, merchant_id: str, changes: dict[str, Any]) -> Merchant:
        """`changes`: any of name, status, rate_limit (None: the mode's default)."""
        assert set(changes) <= {"name", "status", "rate_limit"}
        _, broadcast = self._announcer()
        async with self.db.transaction() as tx:
            merchant = await repository.get(tx, merchant_id, for_update=True)
            if merchant is None:
                raise NotFound(f"No such merchant: {merchant_id!r}", param="id")
            if changes:
                merchant = repository.save_merchant(tx, merchant, changes | {"updated_at": datetime.now(UTC)})
        if "status" in changes or "rate_limit" in changes:
            # Every process's cached principals of this merchant carry its status and limit. A
            # failure here is an outage (503): the client repeats the request, which announces again.
            await broadcast.publish("merchant", merchant_id)
            log.info("merchant_changed", merchant_id=merchant_id, fields=sorted(changes))
        return merchant

    # --- keys --------------------------------------------------------------------------------------

    async def create_key(
        self, merchant_id: str, livemode: bool, type: str = "secret", scopes: Sequence[str] | None = None
    ) -> NewKey:
        stored_scopes = checked_scopes(type, scopes)
        secret = generate_key(livemode, type)
        async with self.db.transaction() as tx:
            if await repository.get(tx, merchant_id) is None:
                raise NotFound(f"No such merchant: {merchant_id!r}", param="id")
            key = await repository.add_key(
                tx, new_id("key"), merchant_id, secret, livemode, type=type, scopes=stored_scopes
            )
        log.info("api_key_created", merchant_id=merchant_id, key_id=key.id, type=type, livemode=livemode)
        return NewKey(key, secret)

    async def list_keys(self, merchant_id: str, livemode: bool, page: Page) -> tuple[list[ApiKey], bool]:
        return await repository.list_keys(self.db, merchant_id, livemode, page)

    @staticmethod
    def _reachable(key: ApiKey | None, principal: Principal | None) -> bool:
        if key is None:
            return False
        return principal is None or (
            key.merchant_id == principal.merchant_id and key.livemode == principal.livemode
        )

    async def get_key(self, key_id: str, principal: Principal | None) -> ApiKey:
        key = await repository.get_key(self.db, key_id)
        if not self._reachable(key, principal):
            raise _missing_key(key_id)
        assert key is not None
        return key

    async def roll_key(self, key_id: str, expires_in: int, principal: Principal | None) -> Rolled:
        """A new key of the same merchant, mode, type and scopes; the old one keeps working for
        `expires_in` seconds (0: it stops now), then is refused as expired."""
        redis, broadcast = self._announcer()
        if not 0 <= expires_in <= MAX_ROLL_SECONDS:
            raise InvalidRequest(
                f"expires_in must be 0-{MAX_ROLL_SECONDS} seconds (at most 7 days).",
                errors=[{"loc": ["body", "expires_in"], "msg": "out of range", "type": "less_than_equal"}],
            )
        async with self.db.transaction() as tx:
            old = await repository.get_key(tx, key_id, for_update=True)  # two rolls cannot both win
            if not self._reachable(old, principal):
                raise _missing_key(key_id)
            assert old is not None
            now = datetime.now(UTC)
            if old.rolled_to is not None or key_status(old, now) != "active":
                reason = f"was rolled to {old.rolled_to}" if old.rolled_to else f"is {key_status(old, now)}"
                raise ApiKeyNotRollable(f"The API key {key_id} {reason}.", param="id")
            secret = generate_key(old.livemode, old.type)
            new = await repository.add_key(
                tx, new_id("key"), old.merchant_id, secret, old.livemode, type=old.type, scopes=old.scopes
            )
            old = repository.save_key(
                tx, old, {"expires_at": now + timedelta(seconds=expires_in), "rolled_to": new.id}
            )
        log.info("api_key_rolled", merchant_id=old.merchant_id, key_id=old.id, rolled_to=new.id)
        assert old.expires_at is not None
        try:
            # A future score takes effect then: access tokens made from the old key stop at its expiry.
            await revocations.record(redis, old.id, old.expires_at.timestamp())
            await broadcast.publish("key", old.id)
        except (RedisError, OSError) as e:
            # The new key's secret exists only in this answer: it must reach the caller. Other
            # processes drop their cached copy of the old key when their cache time runs out instead.
            log.warning("api_key_change_not_announced", key_id=old.id, error=type(e).__name__)
        return Rolled(NewKey(new, secret), old)

    async def revoke_key(self, key_id: str, principal: Principal | None) -> ApiKey:
        """Refused everywhere from now on. Repeating it changes nothing but announces it again, so a
        revocation whose announcement failed (an outage: 503) is completed by its retry."""
        redis, broadcast = self._announcer()
        async with self.db.transaction() as tx:
            key = await repository.get_key(tx, key_id, for_update=True)
            if not self._reachable(key, principal):
                raise _missing_key(key_id)
            assert key is not None
            if key.revoked_at is None:
                key = repository.save_key(tx, key, {"revoked_at": datetime.now(UTC)})
        assert key.revoked_at is not None
        await revocations.record(redis, key.id, key.revoked_at.timestamp())
        await broadcast.publish("key", key.id)
        log.info("api_key_revoked", merchant_id=key.merchant_id, key_id=key.id)
        return key
