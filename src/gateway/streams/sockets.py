"""Live streams over WebSocket, on the same feed as the SSE streams (feed.py).

- `serve_payment_socket`: one payment (`/v1/payments/{id}/ws`, and the checkout page's socket): its
  current state, one message per change, close 1000 after the outcome.
- `serve_events_socket`: the merchant's events (`/v1/events/ws`), with subscribe / unsubscribe
  messages that narrow it to single payments (events.py: the client's messages).

Heartbeats are WebSocket pings, sent by the server (uvicorn's `ws_ping_interval`, which the `gateway`
command sets to GATEWAY_STREAM_HEARTBEAT_SECONDS); a client that stops answering them is dropped.

Close codes: 1000 the payment's outcome is known; 1001 the feed ended without it (uvicorn itself
closes every socket with 1012 as it shuts down: reconnect to another replica); 1013 the live feed
broke or Redis is away (reconnect, resume: nothing is lost).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from gateway.context import AppContext
from gateway.payments.models import Payment
from gateway.payments.public import public_payment_json
from gateway.payments.schemas import dump, payment_json
from gateway.payments.service import PaymentService
from gateway.streams.feed import (
    INTERRUPTIONS,
    OPEN_STATUSES,
    Feed,
    Item,
    Ready,
    Subscription,
    log,
    owner,
    payment_feed,
    subscribed,
)
from gateway.streams.public import public_item

# A client that takes longer than this to take one message is dropped.
SEND_TIMEOUT_SECONDS = 60.0

CLOSE_NORMAL = 1000  # the payment's outcome is known
CLOSE_GOING_AWAY = 1001  # the server shuts down
CLOSE_POLICY = 1008  # (handshake) refused
CLOSE_TRY_AGAIN = 1013  # the live feed broke or Redis is away: reconnect and resume


class Sender:
    """Sends JSON text, one message at a time (two tasks share a socket), each within the timeout."""

    def __init__(self, ws: WebSocket):
        self.ws = ws
        self._lock = anyio.Lock()

    async def text(self, data: str) -> None:
        async with self._lock:
            with anyio.fail_after(SEND_TIMEOUT_SECONDS):
                await self.ws.send_text(data)

    async def json(self, value: dict[str, Any]) -> None:
        await self.text(dump(value).decode())


async def close(ws: WebSocket, code: int, reason: str = "") -> None:
    """Closes unless the client already went (a close on a closed socket is a RuntimeError)."""
    if ws.application_state == WebSocketState.DISCONNECTED or ws.client_state == WebSocketState.DISCONNECTED:
        return
    with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
        await ws.close(code, reason)


async def drain_client(ws: WebSocket, on_text: Callable[[str | None], Awaitable[None]] | None = None) -> None:
    """Reads the client's messages until it goes (each given to `on_text`: None for a binary one;
    ignored without it)."""
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return
        if on_text is not None:
            await on_text(message.get("text"))


async def run(
    ws: WebSocket, kind: str, serve: Callable[[], Awaitable[int]], reader: Callable[[], Awaitable[None]]
) -> None:
    """Runs `serve` (which answers the close code it ends with) beside `reader` (the client's side:
    it returns when the client goes); whichever ends first ends the other."""
    code: int | None = None

    async def serving(scope: anyio.CancelScope) -> None:
        nonlocal code
        try:
            code = await serve()
        except INTERRUPTIONS as e:
            log.warning("stream_interrupted", stream=kind, error=type(e).__name__, detail=str(e))
            code = CLOSE_TRY_AGAIN
        except (WebSocketDisconnect, RuntimeError):  # the client went while we were sending
            code = None
        finally:
            scope.cancel()

    async def reading(scope: anyio.CancelScope) -> None:
        try:
            await reader()
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass
        finally:
            scope.cancel()

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(serving, tg.cancel_scope)
            tg.start_soon(reading, tg.cancel_scope)
    except Exception:
        log.exception("stream_failed", stream=kind)
        code = 1011
    if code is not None:
        await close(ws, code)


# --- one payment --------------------------------------------------------------------------------


def render_payment_item(item: Item, *, public: bool, methods: list[str]) -> str | None:
    """A back end's message: the item as the API shows it (the payment first, then events); a
    browser's: the payment's public subset at each change (None: nothing to send)."""
    if not public:
        return item.data
    view = public_item(item, methods)
    return None if view is None else dump(view).decode()


async def serve_payment_socket(
    ws: WebSocket, ctx: AppContext, payment: Payment, *, public: bool, methods: list[str]
) -> None:
    """Serves one payment's accepted socket (the caller authorized it for `payment`): the payment's
    current state, then one message per change; closes 1000 after the outcome (1013 when the live
    feed breaks or Redis is away: the client reconnects and gets the current state again).

    `public`: a browser's socket, sent `public_payment_json(payment, methods)` at each change and
    nothing else; otherwise a back end's, sent the payment (as `GET /v1/payments/{id}`) and then each
    event as `GET /v1/events/{id}` shows it."""
    payments: PaymentService = ws.app.state.payments
    principal = owner(payment.merchant_id, payment.livemode)
    send = Sender(ws)
    sub: Subscription | None = None

    async def serve() -> int:
        nonlocal sub
        if payment.status not in OPEN_STATUSES:  # its outcome is known: no subscription needed
            await send.json(public_payment_json(payment, methods) if public else payment_json(payment))
            return CLOSE_NORMAL
        sub = await subscribed(ctx, principal)
        feed: Feed = payment_feed(ctx, payments, principal, payment.id, None, sub)
        try:
            async for item in feed:
                if isinstance(item, Ready):
                    continue
                text = render_payment_item(item, public=public, methods=methods)
                if text is not None:
                    await send.text(text)
                if item.ends:
                    return CLOSE_NORMAL
        finally:
            await feed.aclose()
        # The feed ended without the outcome: the server is shutting down.
        return CLOSE_GOING_AWAY

    try:
        await run(ws, "payment_ws", serve, lambda: drain_client(ws))
    finally:
        if sub is not None:
            await sub.close()
