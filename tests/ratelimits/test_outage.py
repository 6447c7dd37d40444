"""Redis away: the limits fail open (the request goes on, without RateLimit headers) and say so in
one warning per 10 s; back, they count again. The Redis is the test's own, really stopped."""

from __future__ import annotations

import asyncio

import structlog

from gateway.embedded import EmbeddedRedis
from ratelimits.serving import Serve
from support import Merchant


async def test_redis_down_fails_open_with_one_warning_and_recovers(
    serve: Serve, own_redis: EmbeddedRedis, merchant: Merchant
) -> None:
    async with serve(redis_url=own_redis.url, test="100/minute") as (client, _):
        r = await client.get("/v1/payments", headers=merchant.auth)
        assert (r.status_code, r.headers["ratelimit-remaining"]) == (200, "99")

        await asyncio.to_thread(own_redis.stop)
        with structlog.testing.capture_logs() as logs:
            answers = [await client.get("/v1/payments", headers=merchant.auth) for _ in range(5)]
        assert [r.status_code for r in answers] == [200] * 5
        assert not any("ratelimit-limit" in r.headers for r in answers)
        warnings = [e for e in logs if e["event"] == "rate_limits_unavailable"]
        assert len(warnings) == 1
        assert (warnings[0]["log_level"], warnings[0]["service"]) == ("warning", "redis")

        # Same port: the client reconnects by itself. The Redis comes back empty (no counts, no
        # cached script: the limiter sends the script's text once).
        await asyncio.to_thread(own_redis.start)
        answers = [await client.get("/v1/payments", headers=merchant.auth) for _ in range(2)]
        assert [(r.status_code, r.headers["ratelimit-remaining"]) for r in answers] == [
            (200, "99"),
            (200, "98"),
        ]
