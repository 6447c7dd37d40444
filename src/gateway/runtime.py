"""The one assembly of the gateway's runtime, for the API, `gateway worker` and the tests alike:
the database pool, Redis, the provider registry, the live event publisher, the services, and the
background loops (inbound webhook sweeper, outbound delivery worker, reconciler)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from typing import Any

import structlog

from gateway import metrics
from gateway.broadcast import Broadcast
from gateway.context import AppContext
from gateway.db.database import Database
from gateway.events.publisher import EventPublisher
from gateway.idempotency.store import IdempotencyStore
from gateway.merchants import tokens
from gateway.merchants.service import Authenticator
from gateway.payments.schemas import set_public_url
from gateway.payments.service import PaymentService
from gateway.provider_accounts.directory import Providers
from gateway.providers.catalog import build_registry
from gateway.ratelimit import RateLimiter
from gateway.reconciler.service import Reconciler
from gateway.redis_batch import RedisBatcher
from gateway.redis_client import connect_redis
from gateway.settings import Settings
from gateway.webhooks.inbound import service as inbound
from gateway.webhooks.outbound.outbox import FOLLOWERS
from gateway.webhooks.outbound.worker import DeliveryWorker

log = structlog.get_logger("gateway")


@dataclass(frozen=True)
class Loops:
    """Which background loops a process runs. Each is safe to run in any number of processes."""

    sweeper: bool = True
    delivery: bool = True
    reconciler: bool = True

    @classmethod
    def from_settings(cls, settings: Settings) -> Loops:
        """The API's: the sweeper always, the others unless they run in `gateway worker` processes."""
        return cls(
            sweeper=True,
            delivery=settings.delivery.run_in_process,
            reconciler=settings.reconciler.run_in_process,
        )


@dataclass
class Runtime:
    ctx: AppContext
    payments: PaymentService
    publisher: EventPublisher
    delivery: DeliveryWorker
    reconciler: Reconciler
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self, name: str, loop: Coroutine[Any, Any, None]) -> None:
        self.tasks.append(asyncio.create_task(loop, name=name))


@contextlib.asynccontextmanager
async def runtime(settings: Settings, loops: Loops) -> AsyncIterator[Runtime]:
    """Everything a gateway process holds, started in order and stopped in reverse."""
    if not settings.database_url or not settings.redis_url:
        raise RuntimeError(
            "GATEWAY_DATABASE_URL and GATEWAY_REDIS_URL must be set (or run `gateway dev`, which "
            "starts embedded servers)."
        )
    # Unusable signing keys stop the process before it holds anything (ValueError, no secret in it).
    jwt_keys = settings.jwt_keys.get_secret_value() if settings.jwt_keys is not None else None
    token_keys = tokens.from_settings(jwt_keys, settings.public_url)
    if settings.metrics_port:
        metrics.enable()
    # A Redis that cannot be reached fails fast (a 503), not after the OS's connect timeout.
    redis = connect_redis(settings.redis_url, health_check_interval=30, socket_connect_timeout=2)
    batcher = RedisBatcher(redis)
    publisher = EventPublisher(batcher)
    db = await Database.connect(settings.database_url, settings.database)
    set_public_url(settings.base_url)  # payments' checkout_url
    # Committed events go live through Redis (and are counted); their outbound deliveries are written
    # with them.
    db.on_commit, db.event_followers = metrics.counting_events(publisher.publish_soon), FOLLOWERS
    broadcast = Broadcast(redis)
    registry = Providers(build_registry(settings, redis, settings.base_url), db, settings, redis, broadcast)
    authenticator = Authenticator(
        db, settings.api_key_cache_seconds, redis=redis, broadcast=broadcast, tokens=token_keys
    )
    ctx = AppContext(
        settings=settings,
        db=db,
        redis=redis,
        idempotency=IdempotencyStore(
            batcher, settings.idempotency.ttl_seconds, settings.idempotency.lock_seconds
        ),
        registry=registry,
        authenticator=authenticator,
        broadcast=broadcast,
        # On the same batcher as the idempotency claims: a request's limit and claim share a pipeline.
        rate_limits=RateLimiter(batcher, settings.rate_limits) if settings.rate_limits.enabled else None,
    )
    await broadcast.start()
    rt = Runtime(
        ctx=ctx,
        payments=PaymentService(db, registry, settings.provider_timeout_seconds),
        publisher=publisher,
        delivery=DeliveryWorker(db, settings.delivery),
        reconciler=Reconciler(db, registry, settings.reconciler, settings.payouts),
    )
    if loops.sweeper:
        w = settings.webhooks
        rt.start(
            "sweeper",
            inbound.sweeper(
                db,
                registry,
                rt.stop,
                interval=w.sweep_interval_seconds,
                older_than_seconds=w.sweep_after_seconds,
                max_attempts=w.max_attempts,
            ),
        )
    if loops.delivery:
        rt.start("delivery", rt.delivery.run(rt.stop))
    if loops.reconciler:
        rt.start("reconciler", rt.reconciler.run(rt.stop))
    log.info("gateway_started", providers=registry.names(), environment=settings.environment, loops=loops)
    try:
        yield rt
    finally:
        rt.stop.set()
        for task in rt.tasks:  # each loop ends its round and returns
            await task
        await broadcast.aclose()
        await authenticator.aclose()
        await rt.delivery.aclose()
        await registry.aclose()
        if ctx.rate_limits is not None:
            await ctx.rate_limits.aclose()
        await publisher.drain()
        await batcher.close()
        await redis.aclose()
        await db.close()
        metrics.process_exit()
        log.info("gateway_stopped")
