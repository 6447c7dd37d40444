"""Live streams as Server-Sent Events (GET /v1/events/stream, /v1/payments/{id}/stream), on the
shared feed (feed.py: Redis pub/sub, caught up from the events table).

A stream subscribes before the response starts (with Redis down the answer is a 503, not a 200 with
an empty stream), then sends the feed: each item as a message whose SSE id is the event id, the
comment `: ready` once caught up, and the comment `: heartbeat` every
GATEWAY_STREAM_HEARTBEAT_SECONDS.

When the client disconnects the Redis connection is closed, which drops the subscription. When the
server shuts down (SIGTERM/SIGINT under uvicorn) streams end cleanly within a second or two, and
clients reconnect to another replica. A broken pub/sub connection ends the stream: the client
reconnects with `Last-Event-ID` and the table fills the gap.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

import anyio
from sse_starlette import EventSourceResponse, ServerSentEvent

from gateway.context import AppContext
from gateway.merchants.service import Principal
from gateway.payments.schemas import dump
from gateway.payments.service import PaymentService
from gateway.streams.feed import (
    Feed,
    Item,
    PaymentView,
    Ready,
    guarded,
    merchant_feed,
    payment_feed,
    subscribed,
)
from gateway.streams.public import public_item

# A client that takes longer than this to accept one message (a full TCP window) is dropped.
SEND_TIMEOUT_SECONDS = 60.0
# On shutdown a stream notices within feed.POLL_SECONDS and ends; after the grace period it is cut.
SHUTDOWN_GRACE_SECONDS = 3.0

Messages = AsyncGenerator[ServerSentEvent, None]
READY = ServerSentEvent(comment="ready")


def event_source(ctx: AppContext, stream: Messages, closing: anyio.Event) -> EventSourceResponse:
    """`closing` is set when the server shuts down, and `stream` then ends cleanly (its clients
    reconnect to another replica) instead of being cut."""
    return EventSourceResponse(
        stream,
        ping=ctx.settings.stream_heartbeat_seconds,
        ping_message_factory=lambda: ServerSentEvent(comment="heartbeat"),
        send_timeout=SEND_TIMEOUT_SECONDS,
        shutdown_event=closing,
        shutdown_grace_period=SHUTDOWN_GRACE_SECONDS,
    )


def _message(item: Item) -> ServerSentEvent:
    return ServerSentEvent(data=item.data, id=item.id)


async def _sse(feed: Feed) -> Messages:
    async for item in feed:
        yield READY if isinstance(item, Ready) else _message(item)


async def _sse_public(feed: Feed, methods: list[str]) -> Messages:
    """A browser's view: the payment's public subset at each change, nothing else."""
    async for item in feed:
        if isinstance(item, Ready):
            yield READY
        elif (public := public_item(item, methods)) is not None:
            yield ServerSentEvent(data=dump(public).decode(), id=item.id)


# --- GET /v1/events/stream ----------------------------------------------------------------------


async def merchant_stream(
    ctx: AppContext, principal: Principal, types: tuple[str, ...], last_event_id: str | None
) -> EventSourceResponse:
    sub = await subscribed(ctx, principal)
    messages = _sse(merchant_feed(ctx, principal, types, last_event_id, sub))
    return event_source(ctx, guarded(messages, sub, "events"), sub.closing)


# --- GET /v1/payments/{id}/stream ---------------------------------------------------------------


async def payment_stream(
    ctx: AppContext,
    payments: PaymentService,
    principal: Principal,
    view: PaymentView,
    last_event_id: str | None,
    public_methods: list[str] | None = None,
) -> EventSourceResponse:
    """`view` was read by the caller (for the 404); a payment whose outcome is already known needs no
    subscription at all. `public_methods`: a browser's stream (the public view, with these methods)."""

    def render(feed: Feed) -> Messages:
        return _sse(feed) if public_methods is None else _sse_public(feed, public_methods)

    items, done = view.catch_up(last_event_id)
    if done:
        return event_source(ctx, render(_finished(items)), anyio.Event())
    sub = await subscribed(ctx, principal)
    feed = payment_feed(ctx, payments, principal, view.payment_id, last_event_id, sub)
    return event_source(ctx, guarded(render(feed), sub, "payment"), sub.closing)


async def _finished(items: list[Item]) -> Feed:
    for item in items:
        yield item
