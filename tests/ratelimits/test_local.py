"""Rate limits decided by a process alone (gateway.ratelimit.limiter): far below a limit a busy key
is let through without asking Redis, and every request still counts there; near the limit, after a
failed authentication, and for limits under SHARE, Redis decides each request."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

from limits import parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter

from gateway.ratelimit.limiter import FRESH, SHARE
from ratelimits.serving import Serve, batches
from ratelimits.test_limits import assert_rate_limited, key_id, quota
from support import Gateway, Merchant, assert_problem


@contextmanager
def scripts() -> Iterator[list[str]]:
    """Records each rate-limit script sent: "ask" (a request's own question, which spends) or "send"
    (the flusher sending what the process let through)."""
    sent: list[str] = []
    with batches() as written:
        yield sent
    for command in (c for batch in written for c in batch):
        # EVALSHA, its sha, 2 keys, the keys, ..., the amount asked for last
        if command[0] == "EVALSHA" and len(command) > 4 and command[2] == 2:
            sent.append("ask" if command[-1] == 1 else "send")


async def window_count(gateway: Gateway, merchant: Merchant, limit: str) -> int:
    await asyncio.sleep(FRESH * 2)  # what was let through alone has been sent
    storage = RedisStorage("async+" + gateway.ctx.settings.redis_url, implementation="redispy")
    item = parse(limit)
    stats = await MovingWindowRateLimiter(storage).get_window_stats(
        item, "key", await key_id(gateway, merchant)
    )
    return item.amount - stats.remaining


async def test_far_below_the_limit_the_process_decides_and_every_request_counts(
    serve: Serve, merchant: Merchant, gateway: Gateway
) -> None:
    async with serve(test="1600/minute") as (client, _):
        with scripts() as sent:
            answers = [await client.get("/v1/payments", headers=merchant.auth) for _ in range(200)]
        assert [r.status_code for r in answers] == [200] * 200
        # One process: its view is exact, so the headers count down as Redis would.
        assert [quota(r)[1] for r in answers] == list(range(1599, 1399, -1))
        # The first request asks; the others are let through here and sent in batches.
        assert sent[0] == "ask"
        assert sent.count("ask") <= 5, sent
        assert 1 <= sent.count("send") < 100, sent
        assert await window_count(gateway, merchant, "1600/minute") == 200


async def test_near_the_limit_redis_decides_each_request(
    serve: Serve, merchant: Merchant, gateway: Gateway
) -> None:
    limit = 2 * SHARE  # a process may decide alone up to half of it, limit/SHARE at a time
    async with serve(test=f"{limit}/minute") as (client, _):
        with scripts() as sent:
            answers = [await client.get("/v1/payments", headers=merchant.auth) for _ in range(limit + 8)]
    assert [r.status_code for r in answers] == [200] * limit + [429] * 8
    assert [quota(r)[1] for r in answers] == list(range(limit - 1, -1, -1)) + [0] * 8
    for r in answers[limit:]:
        assert_rate_limited(r, limit, 60)
    # From half the limit on, every request asked.
    assert sent.count("ask") >= limit // 2 + 8, sent
    assert await window_count(gateway, merchant, f"{limit}/minute") == limit


async def test_a_burst_on_two_replicas_passes_the_limit_by_at_most_limit_over_share_each(
    serve: Serve, merchant: Merchant, gateway: Gateway
) -> None:
    limit = 4 * SHARE
    async with serve(test=f"{limit}/minute") as (a, _), serve(test=f"{limit}/minute") as (b, _):
        for c in (a, b):  # each process has a fresh view of the window
            assert (await c.get("/v1/payments", headers=merchant.auth)).status_code == 200
        answers = await asyncio.gather(*(c.get("/v1/payments", headers=merchant.auth) for c in [a, b] * 50))
    allowed = 2 + sum(r.status_code == 200 for r in answers)
    assert limit <= allowed <= limit + 2 * (limit // SHARE), allowed
    assert {r.status_code for r in answers} == {200, 429}
    for r in answers:
        if r.status_code == 429:
            assert_rate_limited(r, limit, 60)
    assert await window_count(gateway, merchant, f"{limit}/minute") == limit


async def test_after_a_failed_authentication_the_address_is_asked_again(
    serve: Serve, merchant: Merchant
) -> None:
    wrong = {"Authorization": "Bearer sk_test_" + "x" * 32}
    async with serve(failed_auth="3/minute", test="1600/minute") as (client, _):
        for _ in range(3):  # a fresh, clean view: these are let through alone
            assert (await client.get("/v1/payments", headers=merchant.auth)).status_code == 200
        for _ in range(3):
            assert_problem(await client.get("/v1/payments", headers=wrong), 401, "invalid_api_key")
        # The lock-out holds for the right key at once: this process saw the failures.
        assert_rate_limited(await client.get("/v1/payments", headers=merchant.auth), 3, 60)
