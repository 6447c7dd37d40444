"""The live feed every stream shares, whatever carries it (Server-Sent Events in service.py,
WebSockets in sockets.py): Redis pub/sub for what happens now, the events table for what was missed.

Every gateway process publishes the events its transactions commit to the merchant's channel
(gateway.events.publisher), so a stream served by any replica sees events written by any other.

A feed, in this order:
1. subscribes to the channel and waits for Redis to confirm it: from then on nothing is missed.
   The caller does this before it answers, so with Redis down the answer is a 503;
2. catches up from the table: after an event id, the events after it (oldest first, a page at a
   time); a payment's feed without one yields the payment itself (its current state);
3. yields READY (caught up, live from here);
4. yields live events, skipping any it already yielded in step 2.

Transports turn each `Item` into their own message; heartbeats are theirs too. If the pub/sub
connection breaks (redis-py reconnects and resubscribes, and what was published meanwhile is lost),
the feed ends instead of going on with a gap: the client resumes from an event id and the table
fills the gap.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
import orjson
import structlog
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

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
# A payment's feed follows the payment while its outcome is open; the first event that shows it in
# any other status (succeeded, failed, canceled, expired, or refunded later) is the last one.
OPEN_STATUSES = frozenset({"requires_payment_method", "pending", "requires_action", "processing"})
# Table reads run shielded from the disconnect's cancellation (so the connection goes back to the
# pool cleanly), but not for longer than this.
DB_TIMEOUT_SECONDS = 10.0
CONFIRM_TIMEOUT_SECONDS = 5.0
# On shutdown a feed notices within POLL_SECONDS and ends.
POLL_SECONDS = 1.0


@dataclass(frozen=True)
class Item:
    """One message of a feed: an event as `GET /v1/events/{id}` shows it (`data`, its JSON), or a
    payment's snapshot (`snapshot`: the payment as `GET /v1/payments/{id}` shows it, with the id of
    the latest event it reflects)."""

    id: str | None
    data: str
    # The event's `data.object` (a payment, a refund), or the snapshot's payment, as plain data.
    object: dict[str, Any] = field(repr=False)
    type: str | None = None  # the event's type; None for a snapshot

    @property
    def snapshot(self) -> bool:
        return self.type is None

    @property
    def payment_id(self) -> str | None:
        """The payment the item is about (a refund's payment for refund events)."""
        if self.object.get("object") == "payment":
            return self.object.get("id")
        payment = self.object.get("payment")
        return payment if isinstance(payment, str) else None

    @property
    def ends(self) -> bool:
        """Whether it shows a payment whose outcome is known (the end of that payment's feed)."""
        return self.object.get("object") == "payment" and self.object.get("status") not in OPEN_STATUSES


class Ready:
    """Caught up: what follows is live."""


READY = Ready()
Feed = AsyncGenerator[Item | Ready, None]
T = TypeVar("T")


def stored(e: EventOut) -> Item:
    return Item(e.id, e.model_dump_json(), e.data.object, e.type)


class StreamInterrupted(Exception):
    """The pub/sub connection broke (or was re-established): live messages may have been lost."""


def checked_last_event_id(value: str | None, param: str = "Last-Event-ID") -> str | None:
    """A resume point is an event id this API sent; anything else is a client's mistake."""
    if value is None or value == "":
        return None
    if not is_valid(value, "evt"):
        raise InvalidCursor(f"{param} must be an event id (evt_…).", param=param)
    return value


def owner(merchant_id: str, livemode: bool) -> Principal:
    """The principal a feed reads as: only its merchant and mode matter (the caller was authorized)."""
    return Principal(merchant_id=merchant_id, livemode=livemode, key_id="")


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

    async def next(self) -> Item | None:
        """The next event published on the channel; None once the server is shutting down."""
        assert self._pubsub is not None
        while not self.closing.is_set():
            msg = await self._pubsub.get_message(timeout=POLL_SECONDS)
            if msg is None:
                continue
            if msg["type"] == "message":
                raw: bytes = msg["data"]
                event = orjson.loads(raw)
                return Item(event["id"], raw.decode(), event["data"]["object"], event["type"])
            if msg["type"] == "subscribe":
                # redis-py reconnected and resubscribed: whatever was published in between is lost.
                raise StreamInterrupted("pub/sub connection re-established")
        return None


async def subscribed(ctx: AppContext, principal: Principal) -> Subscription:
    """The merchant's channel, confirmed; a Redis outage raises here, before any response."""
    return await Subscription(ctx.redis, channel(principal.merchant_id, principal.livemode)).open()


@contextlib.contextmanager
def db_read() -> Iterator[None]:
    with anyio.fail_after(DB_TIMEOUT_SECONDS, shield=True):
        yield


# Failures that end a feed quietly (logged): the client reconnects and resumes.
INTERRUPTIONS = (StreamInterrupted, RedisError, OSError, TimeoutError)


async def guarded(stream: AsyncGenerator[T, None], sub: Subscription, kind: str) -> AsyncGenerator[T, None]:
    """Failures end the stream quietly (logged): the client reconnects and resumes. The
    subscription is closed whatever happens."""
    try:
        async for message in stream:
            yield message
    except INTERRUPTIONS as e:
        log.warning("stream_interrupted", stream=kind, error=type(e).__name__, detail=str(e))
    except Exception:
        log.exception("stream_failed", stream=kind)
    finally:
        await stream.aclose()
        await sub.close()


# --- the merchant's events ----------------------------------------------------------------------


async def merchant_feed(
    ctx: AppContext,
    principal: Principal,
    types: tuple[str, ...],
    last_event_id: str | None,
    sub: Subscription,
) -> Feed:
    wanted = types if types else ("*",)
    replayed: set[str] = set()
    cursor = last_event_id
    while cursor is not None:
        with db_read():
            found = await EventService(ctx.db).after(
                principal, cursor, EventFilters(types=types), REPLAY_BATCH
            )
        rows = [event_out(e) for e in found]
        for e in rows:
            replayed.add(e.id)
            yield stored(e)
        cursor = rows[-1].id if len(rows) == REPLAY_BATCH else None
    yield READY
    while (item := await sub.next()) is not None:
        # Live events are not compared by id with the resume point: ids come from each replica's
        # clock, and an event committed late may carry a smaller id than one already sent.
        if item.id in replayed or not type_matches(wanted, item.type or ""):
            continue
        yield item


# --- one payment --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PaymentView:
    """A payment as the API shows it, and its event trail (its refunds' events too), oldest first."""

    payment_id: str
    payment: dict[str, Any]
    trail: Sequence[EventOut]

    @property
    def status(self) -> str:
        return str(self.payment["status"])

    @property
    def end(self) -> EventOut | None:
        """The trail's first event that ended the feed, if the payment got that far."""
        return next((e for e in self.trail if stored(e).ends), None)

    def already_sent_end(self, last_event_id: str | None) -> bool:
        end = self.end
        return last_event_id is not None and end is not None and end.id <= last_event_id

    def snapshot(self) -> Item:
        """The payment itself, with the id of the trail's latest event (a resume continues there)."""
        latest = self.trail[-1].id if self.trail else None
        return Item(latest, dump(self.payment).decode(), self.payment)

    def catch_up(self, last_event_id: str | None) -> tuple[list[Item], bool]:
        """What to send before going live, and whether that ends the feed.

        Without a resume point: the snapshot. With one: the trail's events after it, up to the one
        that ended the feed.
        """
        if last_event_id is None:
            return [self.snapshot()], self.status not in OPEN_STATUSES
        out: list[Item] = []
        for e in self.trail:
            item = stored(e)
            if e.id > last_event_id:
                out.append(item)
            if item.ends:
                return out, True
        return out, False


async def payment_view(
    ctx: AppContext, payments: PaymentService, principal: Principal, payment_id: str
) -> PaymentView:
    """Raises NotFound for a payment of another merchant or mode. The trail is read first, so the
    payment is at least as new as its trail (an event committed in between is then sent live)."""
    with db_read():
        trail = [event_out(e) for e in await EventService(ctx.db).trail(principal, payment_id)]
        payment = await payments.get(principal, payment_id)
    return PaymentView(payment.id, payment_json(payment), trail)


async def payment_feed(
    ctx: AppContext,
    payments: PaymentService,
    principal: Principal,
    payment_id: str,
    last_event_id: str | None,
    sub: Subscription,
) -> Feed:
    """The payment's catch-up, READY, then its live events up to the one that ends it."""
    # Read (again) now that nothing can be missed: it may have moved since the caller's read.
    view = await payment_view(ctx, payments, principal, payment_id)
    items, done = view.catch_up(last_event_id)
    for caught_up in items:
        yield caught_up
    if done:
        return
    yield READY
    sent = {e.id for e in view.trail}
    while (item := await sub.next()) is not None:
        if item.id in sent or item.payment_id != payment_id:
            continue
        yield item
        if item.ends:
            return
