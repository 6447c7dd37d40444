"""The one Redis script every rate-limit check runs: `limits`' moving window, one EVALSHA.

The decisions and the keys are `limits`' own (its moving-window acquire script, verbatim; its keys:
`LIMITS:` + `RateLimitItem.key_for(...)`), so its API reads what the gateway counts
(tests/ratelimits check that against `MovingWindowRateLimiter.get_window_stats`). Only the transport
differs: its asyncio API awaits each script on a client of its own (the acquire, then its window
script for what the RateLimit headers report: two round trips), which no pipeline can share. Here
one EVALSHA does both, queued on the gateway's RedisBatcher in the same event-loop turn as the
idempotency claim, so both go to Redis in one round trip.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal, NamedTuple

from limits import RateLimitItem
from limits.aio.storage import RedisStorage
from limits.aio.storage.redis.bridge import RedisBridge
from redis.exceptions import NoScriptError

from gateway.redis_batch import RedisBatcher

# KEYS[1]: the client address's failed authentications; KEYS[2] (if any): the quota the request
# spends. ARGV: now, the failures' limit and window (s), then the quota's limit and window (s), the
# requests a process let through on its own since it last asked (gateway.ratelimit.limiter: they
# happened, so they count, whatever the verdict) and 1 to spend one more (0: only record those).
# Answers {verdict, oldest entry, entries in the window, failures listed for the address}, verdict
# 0 allowed, 1 over the quota, 2 the address is over its failed authentications (then the oldest
# and the count are the failures').
# Cheap on every request (about 8 redis.call, not 20: the decisions stay the acquire script's): the
# failures are searched only when there are enough of them to matter (LLEN); for the quota, the
# entries past the window, which can never count again (time only moves on), are popped from the
# tail (each once), so the list is the window: its length is the count and its tail the oldest,
# what `window` finds by binary search.
_GLUE = b"""
local now = tonumber(ARGV[1])
local failures = tonumber(ARGV[2])
local failed = redis.call('llen', KEYS[1])
local blocked = nil
if failed >= failures then
    local found = window({KEYS[1]}, {now - tonumber(ARGV[3]), failures})
    if found and tonumber(found[2]) >= failures then
        blocked = {2, found[1], found[2], failed}
    end
end
if #KEYS < 2 then
    return blocked or {0, tostring(now), 0, failed}
end
local limit = tonumber(ARGV[4])
local expiry = tonumber(ARGV[5])
local granted = tonumber(ARGV[6])
if granted > 0 then
    local entries = {}
    for i = 1, granted do entries[i] = now end
    for i = 1, #entries, 7000 do
        redis.call('lpush', KEYS[2], unpack(entries, i, math.min(i + 6999, #entries)))
    end
    redis.call('ltrim', KEYS[2], 0, limit - 1)
    redis.call('expire', KEYS[2], expiry)
end
if blocked then
    return blocked
end
local verdict = 0
if ARGV[7] == '1' and not acquire({KEYS[2]}, {now, limit, expiry, 1}) then
    verdict = 1
end
local cutoff = now - expiry
local oldest = redis.call('lindex', KEYS[2], -1)
while oldest and tonumber(oldest) < cutoff do
    redis.call('rpop', KEYS[2])
    oldest = redis.call('lindex', KEYS[2], -1)
end
return {verdict, oldest or tostring(now), redis.call('llen', KEYS[2]), failed}
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


class Reply(NamedTuple):
    verdict: Verdict
    oldest: float  # epoch seconds of the oldest entry in the window (now when there is none)
    entries: int  # in the window
    failed: int  # failed authentications listed for the address (a window's worth at most)

    @classmethod
    def of(cls, raw: list[Any]) -> Reply:
        return cls(_VERDICTS[int(raw[0])], float(raw[1]), int(raw[2]), int(raw[3]))


def arguments(
    now: float,
    client: str,
    failures: RateLimitItem,
    spend: tuple[RateLimitItem, str] | None = None,
    granted: int = 0,
    take: bool = True,
) -> tuple[Any, ...]:
    """The script's numkeys, KEYS and ARGV; `spend`: the quota and its Redis key."""
    keys = [key(failures, "failed-auth", client)]
    args: list[Any] = [now, failures.amount, failures.get_expiry()]
    if spend is not None:
        item, quota_key = spend
        keys.append(quota_key)
        args += [item.amount, item.get_expiry(), granted, 1 if take else 0]
    return (len(keys), *keys, *args)


def submit(redis: RedisBatcher, args: tuple[Any, ...]) -> Any:
    """Queues the script now (it joins the next pipeline); the answer's future."""
    return redis.submit("EVALSHA", _SHA, *args)


async def answer(redis: RedisBatcher, future: Any, args: tuple[Any, ...]) -> Reply:
    """The submitted script's reply. Raises RedisError."""
    try:
        raw = await future
    except NoScriptError:  # a Redis that restarted or was flushed: once, the script's text
        raw = await redis.call("EVAL", SCRIPT, *args)
    return Reply.of(raw)


def key(item: RateLimitItem, *identifiers: str) -> str:
    return f"{RedisStorage.PREFIX}:{item.key_for(*identifiers)}"
