"""What the app holds for its lifetime: pools, clients, the provider registry (built in the lifespan)."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from gateway.db.pg import Pg
from gateway.idempotency.store import IdempotencyStore
from gateway.merchants.service import Authenticator
from gateway.providers.registry import ProviderRegistry
from gateway.settings import Settings


@dataclass
class AppContext:
    settings: Settings
    engine: AsyncEngine
    pg: Pg
    sessionmaker: async_sessionmaker[AsyncSession]
    redis: Redis
    idempotency: IdempotencyStore
    registry: ProviderRegistry
    authenticator: Authenticator
