"""Who opens a live stream, for the WebSocket routes and the browser form of the payment's SSE stream.

Back ends send their key (or access token) as `Authorization: Bearer …`. Browsers cannot send headers
on a WebSocket or an EventSource, so they send their publishable key in the query (`key=pk_…`) with
the payment's client secret (`client_secret=…`); only a publishable key may ever ride in a URL (any
other key there is refused unread: 401). Neither reaches the access log, which logs the path only.

A refused WebSocket handshake is answered with the HTTP status and problem+json body a request would
get (401, 403, 404, 429, 503), through the ASGI WebSocket denial response; a server without that
extension closes the handshake with 1008 (policy violation) instead.
"""

from __future__ import annotations

import contextlib

import structlog
from starlette.requests import HTTPConnection, Request
from starlette.websockets import WebSocket

from gateway.api.deps import PRINCIPAL_STATE, BearerPrincipal, query_key
from gateway.context import AppContext
from gateway.errors import AuthenticationError, GatewayError, ServiceUnavailable
from gateway.merchants import scopes
from gateway.merchants.service import Principal
from gateway.outages import OUTAGE_RETRY_AFTER, outage_of
from gateway.payments.models import Payment
from gateway.payments.service import PaymentService
from gateway.problems import render_gateway_error
from gateway.streams.sockets import CLOSE_POLICY

log = structlog.get_logger("gateway.streams")


class StreamAccess(BearerPrincipal):
    """The caller of a live stream: its key from the Authorization header, or (browsers) a
    publishable key from the query; allowed to do `scope` (a publishable key only where
    `publishable`, and then only with the payment's client secret, which the route checks).
    A dependency of the SSE route (OpenAPI shows its bearer scheme), called directly by the
    WebSocket routes."""

    async def __call__(self, request: Request) -> Principal:  # type: ignore[override]
        ctx: AppContext = request.app.state.ctx
        return await authenticate(request, ctx, self)


# Back ends: the events:read scope, as the SSE streams (every message is an event, or the payment
# the first event describes). Browsers: a publishable key with the payment's client secret.
PAYMENT_STREAM = StreamAccess(scopes.EVENTS_READ, publishable=True)
EVENTS_SOCKET = StreamAccess(scopes.EVENTS_READ)

CLIENT_SECRET = "client_secret"


def credential(conn: HTTPConnection) -> str | None:
    """The caller's key or token: the Authorization header first, else the query's `key`."""
    scheme, _, token = conn.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return query_key(conn.query_params)


async def authenticate(conn: HTTPConnection, ctx: AppContext, access: BearerPrincipal) -> Principal:
    """The caller, allowed by `access` (GatewayError otherwise: 401, 403, 503...)."""
    state = conn.scope.setdefault("state", {})
    principal: Principal | None = state.get(PRINCIPAL_STATE)  # the rate limits resolved it already
    if principal is None:
        header = conn.headers.get("authorization")
        key = query_key(conn.query_params)
        if not header and key is not None and not key.startswith("pk_"):
            raise AuthenticationError(
                "Only a publishable key (`pk_…`) may be sent in a URL; send other keys as "
                "`Authorization: Bearer …` (and roll this one: it may have been logged on the way)."
            )
        token = credential(conn)
        if token is None:
            raise AuthenticationError(
                "Send your key as `Authorization: Bearer sk_test_…` "
                "(browsers: `?key=pk_test_…&client_secret=…`)."
            )
        principal = await ctx.authenticator.authenticate(token)
        state[PRINCIPAL_STATE] = principal
    structlog.contextvars.bind_contextvars(merchant_id=principal.merchant_id)
    if not access.allows(principal):
        raise access.refusal(principal)
    return principal


def as_gateway_error(exc: Exception) -> GatewayError | None:
    """What a handshake answers for `exc`: itself, a 503 for an outage, None for a bug."""
    if isinstance(exc, GatewayError):
        return exc
    if outage_of(exc) is not None:
        return ServiceUnavailable(
            "A service the gateway needs is unavailable; retry shortly.",
            headers={"Retry-After": OUTAGE_RETRY_AFTER},
        )
    return None


async def deny(ws: WebSocket, exc: GatewayError) -> None:
    """Refuses the handshake with the answer a request would get."""
    response = render_gateway_error(exc, ws.scope.get("state", {}).get("request_id"))
    try:
        await ws.send_denial_response(response)
    except RuntimeError:  # no denial extension in this server
        with contextlib.suppress(RuntimeError, OSError):
            await ws.close(CLOSE_POLICY, exc.code)


async def methods_for(payments: PaymentService, payment: Payment) -> list[str]:
    """What a browser may confirm the payment with."""
    return await payments.methods(payment.merchant_id, payment.livemode, payment.currency)
