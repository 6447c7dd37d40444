"""Live streams: Server-Sent Events fed by Redis pub/sub, resumable from the events table.

Every gateway process publishes the events its transactions commit to the merchant's channel
(gateway.events.publisher), so a stream served by any replica sees events written by any other.

A stream, in this order:
1. subscribes to the channel and waits for Redis to confirm it: from then on nothing is missed.
   This happens before the response starts, so with Redis down the answer is a 503, not a 200 with
   an empty stream;
2. catches up from the table: with `Last-Event-ID`, the events after that id (oldest first, a page
   at a time); the payment stream without it sends the payment itself (its current state);
3. sends the comment `: ready` (caught up, live from here);
4. sends live events, skipping any it already sent in step 2;
5. all along, the comment `: heartbeat` every GATEWAY_STREAM_HEARTBEAT_SECONDS.

When the client disconnects the Redis connection is closed, which drops the subscription. When the
server shuts down (SIGTERM/SIGINT under uvicorn) streams end cleanly within a second or two, and
clients reconnect to another replica. If the pub/sub connection breaks (redis-py reconnects and
resubscribes, and what was published meanwhile is lost), the stream ends instead of going on with a
gap: the client reconnects with `Last-Event-ID` and the table fills the gap.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import anyio
import orjson
import structlog
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sse_starlette import EventSourceResponse, ServerSentEvent

from gateway.context import AppContext
from gateway.errors import InvalidCursor
from gateway.events.publisher import channel
from gateway.events.schemas import EventFilters, EventOut, event_out, type_matches
from gateway.events.service import EventService
from gateway.kit.ids import is_valid
from gateway.merchants.service import Principal
from gateway.payments.schemas import dump, payment_json
from gateway.payments.service import PaymentService

log = structlog.get_logger("gateway.streams")

# Events replayed per read of the table on a resume.
REPLAY_BATCH = 500
# A payment stream follows the payment while its outcome is open; the first event that shows it in
# any other status (succeeded, failed, canceled, expired, or refunded later) is the last one sent.
OPEN_STATUSES = frozenset({"pending", "requires_action", "processing"})
# Table reads run shielded from the disconnect's cancellation (so the connection goes back to the
# pool cleanly), but not for longer than this.
DB_TIMEOUT_SECONDS = 10.0
# A client that takes longer than this to accept one message (a full TCP window) is dropped.
SEND_TIMEOUT_SECONDS = 60.0
CONFIRM_TIMEOUT_SECONDS = 5.0
# On shutdown a stream notices within POLL_SECONDS and ends; after the grace period it is cut.
POLL_SECONDS = 1.0
SHUTDOWN_GRACE_SECONDS = 3.0


Messages = AsyncGenerator[ServerSentEvent, None]


class StreamInterrupted(Exception):
    """The pub/sub connection broke (or was re-established): live messages may have been lost."""


def checked_last_event_id(value: str | None) -> str | None:
    """`Last-Event-ID` is an event id this API sent; anything else is a client's mistake."""
    if value is None or value == "":
        return None
    if not is_valid(value, "evt"):
        raise InvalidCursor("Last-Event-ID must be an event id (evt_…).", param="Last-Event-ID")
    return value


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


READY = ServerSentEvent(comment="ready")


def _message(event_id: str | None, data: str) -> ServerSentEvent:
    return ServerSentEvent(data=data, id=event_id)


def _stored(e: EventOut) -> ServerSentEvent:
    return _message(e.id, e.model_dump_json())


class Subscription:
    """One Redis pub/sub connection on one channel, confirmed by Redis before it is used; `closing`
    is set when the server shuts down."""

    def __init__(self, redis: Redis, name: str):
        self._redis = redis
        self.name = name
        self.closing = anyio.Event()
        self._pubsub: PubSub | None = None

    async def open(self) -> Subscription:
        self._pubsub = self._redis.pubsub()
        try:
            with anyio.fail_after(CONFIRM_TIMEOUT_SECONDS):
                await self._pubsub.subscribe(self.name)
                while True:
                    msg = await self._pubsub.get_message(timeout=CONFIRM_TIMEOUT_SECONDS)
                    if msg is not None and msg["type"] == "subscribe":
                        break
        except TimeoutError as e:
            await self.close()
            # Redis that does not answer is Redis away (a 503), whoever's clock noticed.
            raise RedisTimeoutError("Redis did not confirm the subscription in time") from e
        except BaseException:
            await self.close()
            raise
        return self

    async def close(self) -> None:
        # Closing the connection drops the subscription on the server. Shielded: after a disconnect
        # this runs in a cancelled scope, where any unshielded await is cancelled at once.
        if self._pubsub is None:
            return
        pubsub, self._pubsub = self._pubsub, None
        with anyio.move_on_after(CONFIRM_TIMEOUT_SECONDS, shield=True):
            await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def next(self) -> tuple[dict[str, Any], str] | None:
        """The next event published on the channel, parsed and as sent (the JSON the API shows);
        None once the server is shutting down."""
        assert self._pubsub is not None
        while not self.closing.is_set():
            msg = await self._pubsub.get_message(timeout=POLL_SECONDS)
            if msg is None:
                continue
            if msg["type"] == "message":
                raw: bytes = msg["data"]
                return orjson.loads(raw), raw.decode()
            if msg["type"] == "subscribe":
                # redis-py reconnected and resubscribed: whatever was published in between is lost.
                raise StreamInterrupted("pub/sub connection re-established")
        return None


@contextlib.contextmanager
def _db_read() -> Iterator[None]:
    with anyio.fail_after(DB_TIMEOUT_SECONDS, shield=True):
        yield


async def _guarded(stream: Messages, sub: Subscription, kind: str) -> Messages:
    """Failures end the stream quietly (logged): the client reconnects and resumes."""
    try:
        async for message in stream:
            yield message
    except (StreamInterrupted, RedisError, OSError, TimeoutError) as e:
        log.warning("stream_interrupted", stream=kind, error=type(e).__name__, detail=str(e))
    except Exception:
        log.exception("stream_failed", stream=kind)
    finally:
        await stream.aclose()
        await sub.close()


async def _subscribed(ctx: AppContext, principal: Principal) -> Subscription:
    """The merchant's channel, confirmed; a Redis outage raises here, before any response."""
    return await Subscription(ctx.redis, channel(principal.merchant_id, principal.livemode)).open()


# --- GET /v1/events/stream ----------------------------------------------------------------------


async def merchant_stream(
    ctx: AppContext, principal: Principal, types: tuple[str, ...], last_event_id: str | None
) -> EventSourceResponse:
    sub = await _subscribed(ctx, principal)
    events = _merchant_events(ctx, principal, types, last_event_id, sub)
    return event_source(ctx, _guarded(events, sub, "events"), sub.closing)


async def _merchant_events(
    ctx: AppContext,
    principal: Principal,
    types: tuple[str, ...],
    last_event_id: str | None,
    sub: Subscription,
) -> Messages:
    wanted = types if types else ("*",)
    replayed: set[str] = set()
    cursor = last_event_id
    while cursor is not None:
        with _db_read():
            found = await EventService(ctx.db).after(
                principal, cursor, EventFilters(types=types), REPLAY_BATCH
            )
        rows = [event_out(e) for e in found]
        for e in rows:
            replayed.add(e.id)
            yield _stored(e)
        cursor = rows[-1].id if len(rows) == REPLAY_BATCH else None
    yield READY
    while (got := await sub.next()) is not None:
        event, raw = got
        # Live events are not compared by id with Last-Event-ID: ids come from each replica's
        # clock, and an event committed late may carry a smaller id than one already sent.
        if event["id"] in replayed or not type_matches(wanted, event["type"]):
            continue
        yield _message(event["id"], raw)


# --- GET /v1/payments/{id}/stream ---------------------------------------------------------------


def _ends(obj: dict[str, Any]) -> bool:
    return obj.get("object") == "payment" and obj.get("status") not in OPEN_STATUSES


def _of_payment(obj: dict[str, Any], payment_id: str) -> bool:
    return obj.get("id") == payment_id or obj.get("payment") == payment_id


@dataclass(frozen=True)
class PaymentView:
    """A payment as the API shows it, and its event trail (its refunds' events too), oldest first."""

    payment_id: str
    payment_json: str
    status: str
    trail: Sequence[EventOut]

    @property
    def end(self) -> EventOut | None:
        """The trail's first event that ended the stream, if the payment got that far."""
        return next((e for e in self.trail if _ends(e.data.object)), None)

    def already_sent_end(self, last_event_id: str | None) -> bool:
        end = self.end
        return last_event_id is not None and end is not None and end.id <= last_event_id

    def catch_up(self, last_event_id: str | None) -> tuple[list[ServerSentEvent], bool]:
        """What to send before going live, and whether that ends the stream.

        Without Last-Event-ID: the payment itself (`"object": "payment"`), whose SSE id is the id of
        the trail's latest event, so a reconnect resumes after what it showed. With it: the trail's
        events after that id, up to the one that ended the stream.
        """
        if last_event_id is None:
            latest = self.trail[-1].id if self.trail else None
            return [_message(latest, self.payment_json)], self.status not in OPEN_STATUSES
        out: list[ServerSentEvent] = []
        for e in self.trail:
            if e.id > last_event_id:
                out.append(_stored(e))
            if _ends(e.data.object):
                return out, True
        return out, False


async def payment_view(
    ctx: AppContext, payments: PaymentService, principal: Principal, payment_id: str
) -> PaymentView:
    """Raises NotFound for a payment of another merchant or mode. The trail is read first, so the
    payment is at least as new as its trail (an event committed in between is then sent live)."""
    with _db_read():
        trail = [event_out(e) for e in await EventService(ctx.db).trail(principal, payment_id)]
        payment = await payments.get(principal, payment_id)
    return PaymentView(payment.id, dump(payment_json(payment)).decode(), payment.status, trail)


async def payment_stream(
    ctx: AppContext,
    payments: PaymentService,
    principal: Principal,
    view: PaymentView,
    last_event_id: str | None,
) -> EventSourceResponse:
    """`view` was read by the caller (for the 404); a payment whose outcome is already known needs no
    subscription at all."""
    messages, done = view.catch_up(last_event_id)
    if done:
        return event_source(ctx, _finished(messages), anyio.Event())
    sub = await _subscribed(ctx, principal)
    events = _payment_events(ctx, payments, principal, view.payment_id, last_event_id, sub)
    return event_source(ctx, _guarded(events, sub, "payment"), sub.closing)


async def _finished(messages: list[ServerSentEvent]) -> Messages:
    for m in messages:
        yield m


async def _payment_events(
    ctx: AppContext,
    payments: PaymentService,
    principal: Principal,
    payment_id: str,
    last_event_id: str | None,
    sub: Subscription,
) -> Messages:
    # Read again now that nothing can be missed: it may have moved since the caller's read.
    view = await payment_view(ctx, payments, principal, payment_id)
    messages, done = view.catch_up(last_event_id)
    for m in messages:
        yield m
    if done:
        return
    yield READY
    sent = {e.id for e in view.trail}
    while (got := await sub.next()) is not None:
        event, raw = got
        obj = event["data"]["object"]
        if event["id"] in sent or not _of_payment(obj, payment_id):
            continue
        yield _message(event["id"], raw)
        if _ends(obj):
            return
