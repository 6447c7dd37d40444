"""`/v1/events/ws`: the merchant's events live over one WebSocket (docs/api.md, "WebSockets").

Server → client: each event as `GET /v1/events/{id}` shows it (`"object": "event"`), and control
messages without `object`: `{"type": "ready"}` once caught up, `{"type": "subscribed", ...}`,
`{"type": "unsubscribed", ...}`, `{"type": "error", "code": ..., "message": ...}`.

Client → server (JSON text):
- `{"action": "subscribe", "payment": "pay_…", "type"?: "payment.succeeded,payment.failed"}`: follow
  that payment (its refunds' events too). While any subscription exists, only the subscribed
  payments' events are sent; each subscription may narrow its payment's events by type.
- `{"action": "unsubscribe", "payment": "pay_…"}`: stop; with no subscription left, every event
  again.
The connection's own `type` filter (the query) applies on top of all that.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.websockets import WebSocket

from gateway.context import AppContext
from gateway.errors import NotFound
from gateway.events.schemas import type_matches
from gateway.kit.ids import is_valid
from gateway.merchants.service import Principal
from gateway.payments.service import PaymentService
from gateway.streams.feed import Item, Ready, Subscription, db_read, merchant_feed
from gateway.streams.sockets import CLOSE_GOING_AWAY, Sender, drain_client, run

# Subscriptions one connection may hold (one payment each).
MAX_SUBSCRIPTIONS = 100
# A client message longer than this is refused unread.
MAX_MESSAGE_CHARS = 2_000
# The `type` filter's shape, as the SSE stream's query parameter.
TYPES = re.compile(r"^[a-z_.*,\s]{1,500}$")


class ClientError(Exception):
    def __init__(self, code: str, message: str, **extra: Any):
        super().__init__(message)
        self.code, self.message, self.extra = code, message, extra


def parse_types(value: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in value.split(",") if t.strip())


def checked_types(value: Any, param: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, str) or not TYPES.match(value):
        raise ClientError(
            "invalid_message", f"`{param}` is event types, comma-separated (`payment.*` a family)."
        )
    return parse_types(value)


@dataclass
class Follows:
    """The payments a connection follows, each with its own type filter (() = all its events)."""

    payments: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def passes(self, item: Item) -> bool:
        if not self.payments:
            return True
        payment = item.payment_id
        if payment is None or payment not in self.payments:
            return False
        types = self.payments[payment]
        return not types or type_matches(types, item.type or "")


async def serve_events_socket(
    ws: WebSocket,
    ctx: AppContext,
    principal: Principal,
    types: tuple[str, ...],
    last_event_id: str | None,
    sub: Subscription,
) -> None:
    """`ws` accepted, `sub` the merchant's channel, confirmed before the accept."""
    payments: PaymentService = ws.app.state.payments
    send = Sender(ws)
    follows = Follows()

    async def serve() -> int:
        feed = merchant_feed(ctx, principal, types, last_event_id, sub)
        try:
            async for item in feed:
                if isinstance(item, Ready):
                    await send.json({"type": "ready"})
                elif follows.passes(item):
                    await send.text(item.data)
        finally:
            await feed.aclose()
        # The feed ended: the server is shutting down (a broken feed raised: 1013).
        return CLOSE_GOING_AWAY

    async def on_text(text: str | None) -> None:
        try:
            await send.json(await _handle(text, follows, payments, principal))
        except ClientError as e:
            await send.json({"type": "error", "code": e.code, "message": e.message, **e.extra})

    try:
        await run(ws, "events_ws", serve, lambda: drain_client(ws, on_text))
    finally:
        await sub.close()


async def _handle(
    text: str | None, follows: Follows, payments: PaymentService, principal: Principal
) -> dict[str, Any]:
    """The answer to one client message (ClientError for a bad one: the connection goes on)."""
    if text is None:
        raise ClientError("invalid_message", "Messages are JSON text, not binary.")
    if len(text) > MAX_MESSAGE_CHARS:
        raise ClientError("invalid_message", f"Messages are at most {MAX_MESSAGE_CHARS} characters.")
    try:
        message = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise ClientError("invalid_message", "Messages are JSON objects.") from None
    if not isinstance(message, dict):
        raise ClientError("invalid_message", "Messages are JSON objects.")
    action = message.get("action")
    if action not in ("subscribe", "unsubscribe"):
        raise ClientError("unknown_action", "`action` is `subscribe` or `unsubscribe`.", action=_echo(action))
    payment = message.get("payment")
    if not isinstance(payment, str) or not is_valid(payment, "pay"):
        raise ClientError("invalid_message", "`payment` must be a payment id (pay_…).", action=action)
    if action == "unsubscribe":
        follows.payments.pop(payment, None)
        return {"type": "unsubscribed", "payment": payment}
    types = checked_types(message.get("type"), "type")
    if payment not in follows.payments and len(follows.payments) >= MAX_SUBSCRIPTIONS:
        raise ClientError(
            "too_many_subscriptions",
            f"A connection follows at most {MAX_SUBSCRIPTIONS} payments; unsubscribe from one first.",
            payment=payment,
        )
    # Followed before the read: the feed is live already, so no change after the read is missed
    # (one made meanwhile may come before this answer).
    before = follows.payments.get(payment)
    follows.payments[payment] = types
    try:
        with db_read():
            found = await payments.get(principal, payment)
    except NotFound:
        if before is None:
            follows.payments.pop(payment, None)
        else:
            follows.payments[payment] = before
        raise ClientError("resource_missing", f"No such payment: {payment!r}", payment=payment) from None
    return {"type": "subscribed", "payment": payment, "status": found.status, "types": list(types)}


def _echo(value: Any) -> Any:
    return value if isinstance(value, str) and len(value) <= 40 else None
