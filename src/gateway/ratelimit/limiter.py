"""Which requests spend which quota, and when a process may decide alone.

Every replica counts in the same Redis lists (gateway.ratelimit.script), so a limit holds across any
number of processes. Asking Redis on every request would cost each request a round trip and the
script's CPU, for an answer that is "yes" almost always: a key far below its limit cannot be
refused. So each process keeps a view of each busy window (per key and client address, from the
last answer, at most FRESH old) and lets a request through without asking while:

- the key has used less than half its window's quota (as Redis last said, plus what this process
  let through since), and this process has let through fewer than limit/SHARE since it last asked;
- the address had no failed authentication at that answer, nor here since.

What it lets through reaches Redis within FRESH/2 (the flusher) or with its next question, and
counts there like any request. Limits under SHARE per window are always asked (each request is a
large part of them); so is every request near a limit, and every request of a client that failed to
authenticate: the refusals are always Redis', never refused below the limit. The price, on a
burst from idle: a limit can be passed by at most limit/SHARE requests per process and address
(docs/api.md, "Rate limits").
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItem, RateLimitItemPerSecond
from limits import parse as parse_limit
from limits.aio.storage.redis.bridge import RedisBridge
from redis.exceptions import RedisError

from gateway.ratelimit import script
from gateway.ratelimit.script import Reply, Verdict
from gateway.redis_batch import RedisBatcher
from gateway.settings import RateLimitSettings

FRESH = 0.1  # seconds a view of a window may be old for its process to decide alone
SHARE = 16  # a process decides alone at most limit/SHARE requests between two answers


# Not frozen: a frozen dataclass's __init__ sets each field through object.__setattr__, four times
# the cost, and one is made for nearly every /v1 request (bench/README.md). Never changed once made.
@dataclass(slots=True)
class Quota:
    """What a request spent of one quota: the RateLimit-* headers, and whether it may go on."""

    verdict: Verdict
    limit: int
    window: int  # seconds
    remaining: int
    # Seconds until the oldest request counted leaves the window (and frees room for one more).
    reset: int

    @property
    def allowed(self) -> bool:
        return self.verdict == "allowed"

    @property
    def retry_after(self) -> int:
        return max(1, self.reset)

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"ratelimit-limit", b"%d" % self.limit),
            (b"ratelimit-remaining", b"%d" % self.remaining),
            (b"ratelimit-reset", b"%d" % self.reset),
        ]


def _quota(verdict: Verdict, item: RateLimitItem, oldest: float, count: int, now: float) -> Quota:
    window = item.get_expiry()
    # The script's tostring() keeps 14 digits: its timestamp may be a few µs past ours (at most the
    # whole window, then).
    reset = min(window, max(0, math.ceil(oldest + window - now)))
    return Quota(verdict, item.amount, window, max(0, item.amount - count), reset)


@dataclass(slots=True)
class _View:
    """This process's view of one key's window for one client address."""

    item: RateLimitItem
    quota_key: str
    client: str
    count: int = 0  # requests in the window at the last answer
    oldest: float = 0.0  # the oldest one's time (epoch seconds)
    asked: float = -math.inf  # when that answer was asked for (monotonic)
    clean: bool = False  # the address had no failed authentication then
    granted: int = 0  # let through here since, not yet sent to Redis
    sending: int = 0  # let through here, on their way to Redis

    def synced(self, reply: Reply, asked: float, sent: int) -> None:
        self.sending -= sent
        if asked >= self.asked:
            self.count, self.oldest, self.asked = reply.entries, reply.oldest, asked
            self.clean = reply.failed == 0 and reply.verdict != "failed_auth"

    def args(self, failures: RateLimitItem, now: float, take: bool) -> tuple[tuple[Any, ...], int]:
        """The script's arguments, which send what was let through here; and how many that is."""
        sent, self.granted = self.granted, 0
        self.sending += sent
        return script.arguments(now, self.client, failures, (self.item, self.quota_key), sent, take), sent


class Check:
    """One request's check, queued at once; `result()` waits for it."""

    def __init__(
        self,
        redis: RedisBatcher,
        args: tuple[Any, ...],
        spend: RateLimitItem | None,
        failures: RateLimitItem,
        now: float,
        view: tuple[_View, float, int] | None = None,
    ):
        self._redis, self._args, self._spend, self._failures, self._now = redis, args, spend, failures, now
        self._future = script.submit(redis, args)
        if view is not None:  # whether or not anyone waits for the answer
            self._future.add_done_callback(lambda f: _answered(f, *view))

    async def result(self) -> Quota | None:
        """The quota spent (None: the request spends none and may go on). Raises RedisError."""
        reply = await script.answer(self._redis, self._future, self._args)
        if reply.verdict == "failed_auth":
            return _quota(reply.verdict, self._failures, reply.oldest, reply.entries, self._now)
        if self._spend is None:
            return None
        return _quota(reply.verdict, self._spend, reply.oldest, reply.entries, self._now)

    def forget(self) -> None:
        """Nobody will wait for the answer: an error in it is not worth asyncio's warning."""
        self._future.add_done_callback(lambda f: None if f.cancelled() else f.exception())


def _answered(future: asyncio.Future[Any], view: _View, asked: float, sent: int) -> None:
    if future.cancelled() or future.exception() is not None:
        view.sending -= sent  # lost (Redis away), or sent again by the EVAL that follows NoScriptError
    else:
        view.synced(Reply.of(future.result()), asked, sent)


class Granted:
    """A request this process let through without asking (its Check's interface; `quota`, for who
    would rather not await what is already known)."""

    __slots__ = ("quota",)

    def __init__(self, quota: Quota):
        self.quota = quota

    async def result(self) -> Quota:
        return self.quota

    def forget(self) -> None:
        pass


class RateLimiter:
    def __init__(self, redis: RedisBatcher, settings: RateLimitSettings):
        self._redis = redis
        self._modes = {True: parse_limit(settings.live), False: parse_limit(settings.test)}
        self.failures = parse_limit(settings.failed_auth)
        self.admin = parse_limit(settings.admin)
        self.confirm_per_payment = parse_limit(settings.confirm_per_payment)
        self.confirm_per_ip = parse_limit(settings.confirm_per_ip)
        self.link_opens_per_ip = parse_limit(settings.link_opens_per_ip)
        self._overrides: dict[int, RateLimitItem] = {}
        # By the quota's identity (its view holds it, so the id stays its own): RateLimitItem's
        # __hash__ is Python's, on every request.
        self._views: dict[tuple[int, tuple[str, ...], str], _View] = {}
        self._failed_here: dict[str, float] = {}  # address -> when this process last saw it fail
        self._flusher: asyncio.Task[None] | None = None

    def per_key(self, livemode: bool, override: int | None) -> RateLimitItem:
        """A key's quota: its merchant's own requests/s, else its mode's default."""
        if override is None:
            return self._modes[livemode]
        item = self._overrides.get(override)
        if item is None:
            item = self._overrides[override] = RateLimitItemPerSecond(override)
        return item

    def check(self, client: str, spend: RateLimitItem | None = None, *identifiers: str) -> Check | Granted:
        """Checks `client`'s failed authentications and, with `spend`, spends one request of that
        quota for `identifiers` (e.g. "key", key_id): not spent if the address is over its failures."""
        now = time.time()
        if spend is None:
            return Check(self._redis, script.arguments(now, client, self.failures), None, self.failures, now)
        if spend.amount < SHARE:
            args = script.arguments(now, client, self.failures, (spend, script.key(spend, *identifiers)))
            return Check(self._redis, args, spend, self.failures, now)
        found = (id(spend), identifiers, client)
        view = self._views.get(found)
        asked = time.monotonic()
        if view is None:
            view = self._views[found] = _View(spend, script.key(spend, *identifiers), client)
            self._start_flusher()
        elif self._may_grant(view, spend, asked):
            view.granted += 1
            used = view.count + view.sending + view.granted
            return Granted(_quota("allowed", spend, view.oldest, used, now))
        args, sent = view.args(self.failures, now, take=True)
        return Check(self._redis, args, spend, self.failures, now, (view, asked, sent))

    def _may_grant(self, view: _View, item: RateLimitItem, now: float) -> bool:
        return (
            view.clean
            and now - view.asked < FRESH
            and view.granted < item.amount // SHARE
            and view.count + view.sending + view.granted + 1 <= item.amount // 2
            and view.asked > self._failed_here.get(view.client, -math.inf)
        )

    def count_failure(self, client: str) -> None:
        """One failed authentication from `client` (sent without waiting: the 401 does not wait)."""
        f = self.failures
        self._failed_here[client] = time.monotonic()
        self._redis.fire(
            _ignore,
            "EVAL",
            RedisBridge.SCRIPT_ACQUIRE_MOVING_WINDOW,
            1,
            script.key(f, "failed-auth", client),
            time.time(),
            f.amount,
            f.get_expiry(),
            1,
        )

    async def aclose(self) -> None:
        """Stops the flusher (what it had not sent yet is not counted: a few ms of requests)."""
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher

    def _start_flusher(self) -> None:
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        """Sends what was let through here every FRESH/2, which keeps busy views fresh; forgets the
        views (and failures) a window old."""
        try:
            while self._views:
                await asyncio.sleep(FRESH / 2)
                asked = time.monotonic()
                sending = []
                for k, view in list(self._views.items()):
                    if view.granted:
                        args, sent = view.args(self.failures, time.time(), take=False)
                        sending.append((k, view, args, sent, script.submit(self._redis, args)))
                    elif not view.sending and asked - view.asked > view.item.get_expiry() + 1:
                        del self._views[k]
                for address, failed in list(self._failed_here.items()):
                    if asked - failed > self.failures.get_expiry() + 1:
                        del self._failed_here[address]
                for k, view, args, sent, future in sending:
                    try:
                        view.synced(await script.answer(self._redis, future, args), asked, sent)
                    except (RedisError, OSError):  # Redis away: the next request asks, and warns
                        view.sending -= sent
                        self._views.pop(k, None)
        finally:
            self._flusher = None


def _ignore(error: BaseException) -> None:
    """A failure left uncounted while Redis is away: the limits fail open (the request's own check
    has already warned)."""
