"""WebSocket routes: /v1/payments/{id}/ws and /v1/events/ws (docs/api.md, "WebSockets"). Not in
OpenAPI (it has no WebSockets); documented in docs/api.md."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from gateway.context import AppContext
from gateway.errors import InvalidRequest, NotFound
from gateway.payments.service import PaymentService
from gateway.streams.events_socket import TYPES, parse_types, serve_events_socket
from gateway.streams.feed import checked_last_event_id, subscribed
from gateway.streams.handshake import (
    CLIENT_SECRET,
    EVENTS_SOCKET,
    PAYMENT_STREAM,
    as_gateway_error,
    authenticate,
    deny,
    methods_for,
)
from gateway.streams.sockets import serve_payment_socket

router = APIRouter()


@router.websocket("/payments/{payment_id}/ws")
async def payment_socket(ws: WebSocket, payment_id: str) -> None:
    ctx: AppContext = ws.app.state.ctx
    payments: PaymentService = ws.app.state.payments
    try:
        principal = await authenticate(ws, ctx, PAYMENT_STREAM)
        if len(payment_id) > 40:
            raise NotFound(f"No such payment: {payment_id[:40]!r}…", param="id")
        payment = await payments.get_with_secret(principal, payment_id, ws.query_params.get(CLIENT_SECRET))
        public = principal.key_type == "publishable"
        methods = await methods_for(payments, payment) if public else []
    except Exception as e:
        if (error := as_gateway_error(e)) is None:
            raise
        await deny(ws, error)
        return
    await ws.accept()
    await serve_payment_socket(ws, ctx, payment, public=public, methods=methods)


@router.websocket("/events/ws")
async def events_socket(ws: WebSocket) -> None:
    ctx: AppContext = ws.app.state.ctx
    try:
        principal = await authenticate(ws, ctx, EVENTS_SOCKET)
        raw_types = ws.query_params.get("type")
        if raw_types is not None and not TYPES.match(raw_types):
            raise InvalidRequest(
                "`type` is event types, comma-separated (`payment.*` a family).", param="type"
            )
        last = checked_last_event_id(ws.query_params.get("last_event_id"), "last_event_id")
        sub = await subscribed(ctx, principal)
    except Exception as e:
        if (error := as_gateway_error(e)) is None:
            raise
        await deny(ws, error)
        return
    try:
        await ws.accept()
    except BaseException:
        await sub.close()
        raise
    await serve_events_socket(ws, ctx, principal, parse_types(raw_types or ""), last, sub)
