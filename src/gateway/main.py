"""create_app(): the lifespan owns pools, clients and background loops; routers do the rest."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator
from typing import Any

import structlog
from fastapi import FastAPI, Request
from redis.asyncio import Redis
from sqlalchemy import text
from starlette.responses import Response

from gateway.api.providers import router as providers_router
from gateway.context import AppContext
from gateway.db.engine import make_engine, make_sessionmaker
from gateway.db.pg import Pg, create_pool
from gateway.errors import install_error_handlers
from gateway.events.publisher import EventPublisher
from gateway.events.router import router as events_router
from gateway.events.stream_router import router as stream_router
from gateway.idempotency.dependency import IdempotentReplay
from gateway.idempotency.middleware import IdempotencyMiddleware
from gateway.idempotency.store import IdempotencyStore
from gateway.logging import configure_logging
from gateway.merchants.service import Authenticator
from gateway.middleware import RequestIdMiddleware
from gateway.payments.router import reads as payment_reads
from gateway.payments.router import router as payments_router
from gateway.payments.service import PaymentService
from gateway.providers.catalog import build_registry
from gateway.reconciler.service import Reconciler
from gateway.redis_batch import RedisBatcher
from gateway.refunds.router import router as refunds_router
from gateway.settings import Settings, get_settings
from gateway.webhooks.inbound import service as inbound
from gateway.webhooks.inbound.router import router as inbound_router
from gateway.webhooks.outbound.router import router as outbound_router
from gateway.webhooks.outbound.worker import DeliveryWorker

log = structlog.get_logger("gateway")

TAGS = [
    {"name": "payments", "description": "Create payments on any provider, follow them, cancel them."},
    {"name": "refunds", "description": "Give money back: whole payments or parts, as often as is left."},
    {"name": "events", "description": "The log of everything that happened, as the API showed it then."},
    {"name": "webhooks", "description": "Endpoints the payment providers call."},
    {"name": "webhook endpoints", "description": "Where the gateway sends signed events, and how that went."},
    {"name": "providers", "description": "The payment rails this gateway can use."},
    {"name": "health", "description": "Liveness and readiness probes."},
]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_json)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not settings.database_url or not settings.redis_url:
            raise RuntimeError(
                "GATEWAY_DATABASE_URL and GATEWAY_REDIS_URL must be set (or run `gateway dev`, which "
                "starts embedded servers)."
            )
        engine = make_engine(settings.database_url, settings.database)
        sessionmaker = make_sessionmaker(engine)
        redis = Redis.from_url(settings.redis_url, health_check_interval=30)
        registry = build_registry(settings, redis)
        batcher = RedisBatcher(redis)
        publisher = EventPublisher(batcher)
        session_class = sessionmaker.kw["sync_session_class"]
        publisher.install(session_class)
        pg = Pg(await create_pool(settings.database_url, settings.database), publisher.publish_soon)
        app.state.ctx = AppContext(
            settings=settings,
            engine=engine,
            pg=pg,
            sessionmaker=sessionmaker,
            redis=redis,
            idempotency=IdempotencyStore(
                batcher, settings.idempotency.ttl_seconds, settings.idempotency.lock_seconds
            ),
            registry=registry,
            authenticator=Authenticator(sessionmaker, settings.api_key_cache_seconds),
        )
        app.state.payments = PaymentService(app.state.ctx)  # stateless: one per app
        sweeper = asyncio.create_task(
            inbound.sweeper(
                sessionmaker,
                registry,
                interval=settings.webhooks.sweep_interval_seconds,
                older_than_seconds=settings.webhooks.sweep_after_seconds,
                max_attempts=settings.webhooks.max_attempts,
            )
        )
        stop = asyncio.Event()
        worker = DeliveryWorker(sessionmaker, settings.delivery)
        worker_task = asyncio.create_task(worker.run(stop)) if settings.delivery.run_in_process else None
        reconciler = Reconciler(sessionmaker, registry, settings.reconciler)
        reconciler_task = (
            asyncio.create_task(reconciler.run(stop)) if settings.reconciler.run_in_process else None
        )
        log.info("gateway_started", providers=registry.names(), environment=settings.environment)
        # Everything built so far lives as long as the process: out of the collector's sight, a full
        # collection no longer walks it (pauses of tens of ms under load otherwise).
        gc.freeze()
        try:
            yield
        finally:
            stop.set()
            for task in (worker_task, reconciler_task):
                if task is not None:
                    await task
            await worker.aclose()
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            await registry.aclose()
            publisher.uninstall(session_class)
            await publisher.drain()
            await redis.aclose()
            await pg.close()
            await engine.dispose()
            log.info("gateway_stopped")

    app = FastAPI(
        title="Gateway",
        version="1.0.0",
        summary="One payments API over mobile money, cards and cash.",
        description="Amounts are integers in the currency's minor unit. Errors are RFC 9457 "
        "`application/problem+json` with a stable `code`. Every request that creates or moves money needs "
        "an `Idempotency-Key` header.",
        openapi_tags=TAGS,
        lifespan=lifespan,
        telemetry=None
        if settings.opentelemetry
        else {"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    install_error_handlers(app)

    async def replay(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, IdempotentReplay)
        return exc.response

    app.add_exception_handler(IdempotentReplay, replay)

    # Each router straight onto the app (one level of included routers to match through, not two).
    for router in (
        payment_reads,
        payments_router,
        refunds_router,
        stream_router,  # before events: /v1/events/stream is not an event id
        events_router,
        providers_router,
        inbound_router,
        outbound_router,
    ):
        app.include_router(router, prefix="/v1")

    @app.get("/healthz", tags=["health"], operation_id="healthz", summary="The process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["health"],
        operation_id="readyz",
        summary="PostgreSQL and Redis answer",
        responses={503: {"description": "A backing service is down"}},
    )
    async def readyz(request: Request) -> Response:
        ctx: AppContext = request.app.state.ctx
        checks: dict[str, Any] = {}
        try:
            async with ctx.engine.connect() as conn:
                await asyncio.wait_for(conn.execute(text("SELECT 1")), 2)
            checks["postgres"] = "ok"
        except Exception as e:
            checks["postgres"] = f"error: {type(e).__name__}"
        try:
            await asyncio.wait_for(ctx.redis.ping(), 2)
            checks["redis"] = "ok"
        except Exception as e:
            checks["redis"] = f"error: {type(e).__name__}"
        ok = all(v == "ok" for v in checks.values())
        import orjson

        return Response(
            orjson.dumps({"status": "ok" if ok else "unavailable", "checks": checks}),
            status_code=200 if ok else 503,
            media_type="application/json",
        )

    app.add_middleware(IdempotencyMiddleware)  # inside the request id: replays carry one too
    app.add_middleware(RequestIdMiddleware)
    return app
