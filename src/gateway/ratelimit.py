"""Rate limits in the shared Redis: the `limits` package's moving window, one script per request.

The decisions and the keys are `limits`' own (its moving-window acquire script, verbatim; its keys:
`LIMITS:` + `RateLimitItem.key_for(...)`), so its API reads what the gateway counts
(tests/ratelimits check that against `MovingWindowRateLimiter.get_window_stats`). Only the transport
differs: its asyncio API awaits each script on a client of its own (the acquire, then its window
script for what the RateLimit headers report: two round trips), which no pipeline can share. Here
one EVALSHA does both, queued on the gateway's RedisBatcher in the same event-loop turn as the
idempotency claim, so both go to Redis in one round trip. The window's count comes from the glue
below (the same number as `limits`' window script, without a binary search per request).

Every replica counts in the same lists, so a limit holds across any number of processes.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from typing import Any, Literal

from limits import RateLimitItem, RateLimitItemPerSecond
from limits import parse as parse_limit
from limits.aio.storage import RedisStorage
from limits.aio.storage.redis.bridge import RedisBridge
from redis.exceptions import NoScriptError

from gateway.redis_batch import RedisBatcher
from gateway.settings import RateLimitSettings

# KEYS[1]: the client address's failed authentications; KEYS[2] (if any): the quota the request
# spends. ARGV: now, the failures' limit and window (s), then the quota's limit and window (s).
# Answers {0} (nothing to spend: allowed), or {verdict, oldest entry, entries in the window} with
# verdict 0 allowed, 1 over the quota, 2 the address is over its failed authentications.
# Cheap on every request (about 8 redis.call, not 20: the decisions stay the acquire script's): the
# failures are searched only when there are enough of them to matter (LLEN); for the quota, the
# entries past the window, which can never count again (time only moves on), are popped from the
# tail (each once), so the list is the window: its length is the count and its tail the oldest,
# what `window` finds by binary search.
_GLUE = b"""
local now = tonumber(ARGV[1])
local failures = tonumber(ARGV[2])
if redis.call('llen', KEYS[1]) >= failures then
    local failed = window({KEYS[1]}, {now - tonumber(ARGV[3]), failures})
    if failed and tonumber(failed[2]) >= failures then
        return {2, failed[1], failed[2]}
    end
end
if #KEYS < 2 then
    return {0}
end
local expiry = tonumber(ARGV[5])
local acquired = acquire({KEYS[2]}, {now, ARGV[4], expiry, 1})
local cutoff = now - expiry
local oldest = redis.call('lindex', KEYS[2], -1)
while oldest and tonumber(oldest) < cutoff do
    redis.call('rpop', KEYS[2])
    oldest = redis.call('lindex', KEYS[2], -1)
end
return {acquired and 0 or 1, oldest or tostring(now), redis.call('llen', KEYS[2])}
"""
SCRIPT = (
    b"local function acquire(KEYS, ARGV)\n"
    + RedisBridge.SCRIPT_ACQUIRE_MOVING_WINDOW
    + b"\nend\nlocal function window(KEYS, ARGV)\n"
    + RedisBridge.SCRIPT_MOVING_WINDOW
    + b"\nend\n"
    + _GLUE
)
_SHA = hashlib.sha1(SCRIPT).hexdigest()  # noqa: S324 (Redis names scripts by SHA-1)

Verdict = Literal["allowed", "over_limit", "failed_auth"]
_VERDICTS: tuple[Verdict, ...] = ("allowed", "over_limit", "failed_auth")


@dataclass(frozen=True, slots=True)
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


class Check:
    """One request's check, queued at once; `result()` waits for it."""

    def __init__(
        self,
        redis: RedisBatcher,
        args: tuple[Any, ...],
        spend: RateLimitItem | None,
        failures: RateLimitItem,
        now: float,
    ):
        self._redis, self._args, self._spend, self._failures, self._now = redis, args, spend, failures, now
        self._future = redis.submit("EVALSHA", _SHA, *args)

    async def result(self) -> Quota | None:
        """The quota spent (None: the request spends none and may go on). Raises RedisError."""
        try:
            raw = await self._future
        except NoScriptError:  # a Redis that restarted or was flushed: once, the script's text
            raw = await self._redis.call("EVAL", SCRIPT, *self._args)
        if len(raw) == 1:
            return None
        verdict = _VERDICTS[int(raw[0])]
        item = self._failures if verdict == "failed_auth" else self._spend
        assert item is not None
        window = item.get_expiry()
        # The script's tostring() keeps 14 digits: its timestamp may be a few µs past ours (at most
        # the whole window, then).
        reset = min(window, max(0, math.ceil(float(raw[1]) + window - self._now)))
        return Quota(verdict, item.amount, window, max(0, item.amount - int(raw[2])), reset)

    def forget(self) -> None:
        """Nobody will wait for the answer: an error in it is not worth asyncio's warning."""
        self._future.add_done_callback(lambda f: None if f.cancelled() else f.exception())


class RateLimiter:
    def __init__(self, redis: RedisBatcher, settings: RateLimitSettings):
        self._redis = redis
        self._modes = {True: parse_limit(settings.live), False: parse_limit(settings.test)}
        self.failures = parse_limit(settings.failed_auth)
        self.admin = parse_limit(settings.admin)
        self._overrides: dict[int, RateLimitItem] = {}

    def per_key(self, livemode: bool, override: int | None) -> RateLimitItem:
        """A key's quota: its merchant's own requests/s, else its mode's default."""
        if override is None:
            return self._modes[livemode]
        item = self._overrides.get(override)
        if item is None:
            item = self._overrides[override] = RateLimitItemPerSecond(override)
        return item

    def check(self, client: str, spend: RateLimitItem | None = None, *identifiers: str) -> Check:
        """Queues the check of `client`'s failed authentications and, with `spend`, one request
        against that quota for `identifiers` (e.g. "key", key_id): not spent if the address is
        over its failures."""
        now = time.time()
        f = self.failures
        keys = [_key(f, "failed-auth", client)]
        args: list[Any] = [now, f.amount, f.get_expiry()]
        if spend is not None:
            keys.append(_key(spend, *identifiers))
            args += [spend.amount, spend.get_expiry()]
        return Check(self._redis, (len(keys), *keys, *args), spend, f, now)

    def count_failure(self, client: str) -> None:
        """One failed authentication from `client` (sent without waiting: the 401 does not wait)."""
        f = self.failures
        self._redis.fire(
            _ignore,
            "EVAL",
            RedisBridge.SCRIPT_ACQUIRE_MOVING_WINDOW,
            1,
            _key(f, "failed-auth", client),
            time.time(),
            f.amount,
            f.get_expiry(),
            1,
        )


def _key(item: RateLimitItem, *identifiers: str) -> str:
    return f"{RedisStorage.PREFIX}:{item.key_for(*identifiers)}"


def _ignore(error: BaseException) -> None:
    """A failure left uncounted while Redis is away: the limits fail open (the request's own check
    has already warned)."""
