"""What every request handler may reach for the app's lifetime: pools, clients, the provider
registry. Built by gateway.runtime, the one assembly of the API, the worker and the tests."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from gateway.broadcast import Broadcast
from gateway.db.database import Database
from gateway.idempotency.store import IdempotencyStore
from gateway.merchants.service import Authenticator
from gateway.provider_accounts.directory import Providers
from gateway.ratelimit import RateLimiter
from gateway.settings import Settings


@dataclass
class AppContext:
    settings: Settings
    db: Database
    redis: Redis
    idempotency: IdempotencyStore
    # The deployment's adapters and merchants' own accounts' adapters.
    registry: Providers
    authenticator: Authenticator
    # Cache invalidations to every process (revoked keys, replaced provider accounts).
    broadcast: Broadcast
    # Per key, per client address (gateway.api.ratelimit); None when GATEWAY_RATE_LIMITS__ENABLED=false.
    rate_limits: RateLimiter | None = None
