"""create_app(): the lifespan owns pools, clients and background loops; routers do the rest."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator
from typing import Literal

import orjson
from fastapi import APIRouter, FastAPI, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from gateway import metrics
from gateway.api.dispatch import include_flat, install_route_index
from gateway.api.lean import BareLeanRoute
from gateway.api.providers import router as providers_router
from gateway.api.responses import JSONBytes
from gateway.cash_drawers.router import router as cash_drawers_router
from gateway.checkout.router import router as checkout_router
from gateway.context import AppContext
from gateway.edge import install_edge
from gateway.events.router import router as events_router
from gateway.logging import configure_logging
from gateway.management import admin_router
from gateway.management.keys_router import router as api_keys_router
from gateway.management.oauth_router import router as oauth_router
from gateway.management.provider_accounts_router import router as provider_accounts_router
from gateway.management.routing_rules_router import router as routing_rules_router
from gateway.openapi import install_openapi
from gateway.payment_links.router import public as payment_link_pages
from gateway.payment_links.router import router as payment_links_router
from gateway.payments.router import hot as payment_hot_paths
from gateway.payments.router import router as payments_router
from gateway.payouts.router import router as payouts_router
from gateway.problems import install_error_handlers
from gateway.refunds.router import router as refunds_router
from gateway.runtime import Loops, runtime
from gateway.settings import Settings, get_settings
from gateway.streams.router import router as stream_router
from gateway.streams.ws_router import router as socket_router
from gateway.webhooks.inbound.router import router as inbound_router
from gateway.webhooks.outbound.router import router as outbound_router

TAGS = [
    {"name": "payments", "description": "Create payments on any provider, follow them, cancel them."},
    {"name": "refunds", "description": "Give money back: whole payments or parts, as often as is left."},
    {"name": "payment links", "description": "URLs that make a payment when a customer opens them."},
    {"name": "events", "description": "The log of everything that happened, as the API showed it then."},
    {"name": "webhooks", "description": "Endpoints the payment providers call."},
    {"name": "webhook endpoints", "description": "Where the gateway sends signed events, and how that went."},
    {"name": "providers", "description": "The payment rails this gateway can use."},
    {"name": "provider accounts", "description": "Your own accounts with the providers, encrypted at rest."},
    {"name": "api keys", "description": "Your keys: list, create, roll and revoke them (a secret key only)."},
    {"name": "admin", "description": "Operator API (GATEWAY_ADMIN_TOKEN): merchants, keys, payout limits."},
    {"name": "access tokens", "description": "Short-lived tokens made from a key (OAuth client credentials)"},
    {"name": "health", "description": "Liveness and readiness probes."},
]


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = Field(description="postgres, redis: `ok` or `error: <kind>`")


# The probes: FastAPI documents them, a lean handler runs them (no dependency solving, no model to
# serialise), so that /healthz costs what a bare JSON answer costs (bench/README.md, issue #15).
_health = APIRouter(tags=["health"], route_class=BareLeanRoute)
_HEALTHY = orjson.dumps({"status": "ok"})


@_health.get("/healthz", operation_id="healthz", summary="The process is up", response_model=Health)
async def healthz() -> Response:
    return JSONBytes(_HEALTHY)


@_health.get(
    "/readyz",
    operation_id="readyz",
    summary="PostgreSQL and Redis answer",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "A backing service is down"}},
)
async def readyz(request: Request) -> Response:
    ctx: AppContext = request.app.state.ctx
    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(ctx.db.fetchval("SELECT 1"), 2)
        checks["postgres"] = "ok"
    except Exception as e:
        checks["postgres"] = f"error: {type(e).__name__}"
    try:
        await asyncio.wait_for(ctx.redis.ping(), 2)
        checks["redis"] = "ok"
    except Exception as e:
        checks["redis"] = f"error: {type(e).__name__}"
    ok = all(v == "ok" for v in checks.values())
    return JSONBytes(
        orjson.dumps({"status": "ok" if ok else "unavailable", "checks": checks}), 200 if ok else 503
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_json)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with runtime(settings, Loops.from_settings(settings)) as rt:
            app.state.ctx = rt.ctx
            app.state.payments = rt.payments
            metrics.learn_routes(app)  # when metrics are on: the routes of replays (before routing)
            # Everything built so far lives as long as the process: out of the collector's sight, a
            # full collection no longer walks it (pauses of tens of ms under load otherwise).
            gc.freeze()
            yield

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

    # Every route straight onto the app, flat: FastAPI 0.16x's included routers cost more to match
    # through than most handlers (gateway/api/dispatch.py).
    for router in (
        payment_hot_paths,
        payments_router,
        refunds_router,
        payment_links_router,
        stream_router,  # before events: /v1/events/stream is not an event id
        socket_router,  # WebSockets: /v1/payments/{id}/ws, /v1/events/ws
        events_router,
        providers_router,
        provider_accounts_router,
        inbound_router,
        outbound_router,
        api_keys_router,
        oauth_router,
        payouts_router,
        routing_rules_router,
        cash_drawers_router,
    ):
        include_flat(app, router, prefix="/v1")
    include_flat(app, payment_link_pages)  # /l/{slug}: the customer's, outside /v1 and its key limits
    include_flat(app, checkout_router)  # the hosted checkout: /checkout/..., not under /v1
    if admin_router.enabled(settings):  # else /v1/admin does not exist: a plain 404
        include_flat(app, admin_router.router, prefix="/v1")

    include_flat(app, _health)  # last, as before: the document's order is unchanged
    install_openapi(app)
    install_route_index(app)
    # One layer for the request id, the error boundary, the rate limits, the idempotency claim and
    # the gate, in that order (gateway/edge.py): the limit's check and the claim share one Redis
    # pipeline; replays answered before routing carry a request id and the RateLimit-* headers.
    install_edge(
        app,
        max_body_bytes=settings.max_body_bytes,
        max_webhook_body_bytes=settings.webhooks.max_body_bytes,
        telemetry=settings.opentelemetry,
    )
    return app
