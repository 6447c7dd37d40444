"""Rate limits (#13): per API key in the shared Redis (moving window, `limits`' algorithm and keys),
the merchant's own limit, failed authentications and the admin API per client address; 429
`rate_limited` with Retry-After and the RateLimit-* headers; webhooks and probes never limited."""

from __future__ import annotations

import asyncio
import uuid

import httpx
from limits import parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter

from gateway.idempotency.store import redis_key
from ratelimits.serving import Serve, batches
from support import Gateway, Merchant, assert_problem

BODY = {"amount": 2500, "currency": "KES", "provider": "sandbox", "payment_method": "pm_success"}


def quota(r: httpx.Response) -> tuple[int, int, int]:
    h = r.headers
    return int(h["ratelimit-limit"]), int(h["ratelimit-remaining"]), int(h["ratelimit-reset"])


def assert_rate_limited(r: httpx.Response, limit: int, window: int) -> None:
    problem = assert_problem(r, 429, "rate_limited")
    assert problem["request_id"] == r.headers["x-request-id"]
    assert problem["title"] == "Too many requests"
    retry_after = int(r.headers["retry-after"])
    assert 1 <= retry_after <= window
    assert quota(r) == (limit, 0, retry_after)


async def key_id(gateway: Gateway, merchant: Merchant) -> str:
    found: str = await gateway.scalar("SELECT id FROM api_keys WHERE merchant_id = :m", m=merchant.id)
    return found


async def test_a_burst_over_the_key_limit_is_429_and_the_headers_count_down(
    serve: Serve, merchant: Merchant, gateway: Gateway
) -> None:
    async with serve(test="5/minute") as (client, _):
        for remaining in (4, 3, 2, 1, 0):
            r = await client.get("/v1/payments", headers=merchant.auth)
            assert r.status_code == 200, r.text
            limit, left, reset = quota(r)
            assert (limit, left) == (5, remaining)
            assert 1 <= reset <= 60
            assert "retry-after" not in r.headers
        refused = await client.get("/v1/payments", headers=merchant.auth)
        assert_rate_limited(refused, 5, 60)
        assert "5 per 60 s" in refused.json()["detail"]

    # The count is `limits`' own: its moving-window limiter reads the same list under the same key.
    storage = RedisStorage("async+" + gateway.ctx.settings.redis_url, implementation="redispy")
    stats = await MovingWindowRateLimiter(storage).get_window_stats(
        parse("5/minute"), "key", await key_id(gateway, merchant)
    )
    assert stats.remaining == 0


async def test_under_the_limit_nothing_is_refused_and_keys_count_apart(
    serve: Serve, merchant: Merchant, other_merchant: Merchant
) -> None:
    async with serve(test="6/minute") as (client, _):
        answers = await asyncio.gather(
            *(client.get("/v1/payments", headers=m.auth) for m in [merchant, other_merchant] * 6)
        )
    assert [r.status_code for r in answers] == [200] * 12
    for m in (merchant, other_merchant):
        left = sorted(
            quota(r)[1] for r in answers if r.request.headers["authorization"] == m.auth["Authorization"]
        )
        assert left == [0, 1, 2, 3, 4, 5]


async def test_two_replicas_share_the_count(serve: Serve, merchant: Merchant) -> None:
    async with serve(test="10/minute") as (a, _), serve(test="10/minute") as (b, _):
        answers = [await c.get("/v1/payments", headers=merchant.auth) for c in [a, b] * 8]
    # One count for both processes: 10 in all pass (5 on each), whichever replica answers.
    assert [r.status_code for r in answers] == [200] * 10 + [429] * 6
    assert [quota(r)[1] for r in answers] == [9, 8, 7, 6, 5, 4, 3, 2, 1, 0] + [0] * 6
    for r in answers[10:]:
        assert_rate_limited(r, 10, 60)


async def test_the_merchants_own_limit_replaces_the_default(
    serve: Serve, merchant: Merchant, gateway: Gateway
) -> None:
    await gateway.execute("UPDATE merchants SET rate_limit = 3 WHERE id = :m", m=merchant.id)
    async with serve(test="100/minute") as (client, _):
        answers = await asyncio.gather(*(client.get("/v1/payments", headers=merchant.auth) for _ in range(6)))
    assert sorted(r.status_code for r in answers) == [200] * 3 + [429] * 3
    assert {quota(r)[0] for r in answers} == {3}  # per second: the override's window
    for r in answers:
        if r.status_code == 429:
            assert_rate_limited(r, 3, 1)


async def test_a_refused_create_releases_its_idempotency_claim_and_a_replay_counts(
    serve: Serve, merchant: Merchant, gateway: Gateway
) -> None:
    keys = [str(uuid.uuid4()) for _ in range(2)]
    async with serve(test="3/minute") as (client, _):
        first = await client.post(
            "/v1/payments", json=BODY, headers={**merchant.auth, "Idempotency-Key": keys[0]}
        )
        assert first.status_code == 201, first.text
        assert quota(first)[:2] == (3, 2)
        replay = await client.post(
            "/v1/payments", json=BODY, headers={**merchant.auth, "Idempotency-Key": keys[0]}
        )
        assert (replay.status_code, replay.headers["idempotent-replayed"]) == (201, "true")
        assert replay.json()["id"] == first.json()["id"]
        assert quota(replay)[:2] == (3, 1)
        assert (await client.get("/v1/payments", headers=merchant.auth)).status_code == 200
        # Over the limit: a new key is refused before the route, and its claim does not outlive the 429.
        refused = await client.post(
            "/v1/payments", json=BODY, headers={**merchant.auth, "Idempotency-Key": keys[1]}
        )
        assert_rate_limited(refused, 3, 60)
        assert await gateway.ctx.redis.exists(redis_key(merchant.id, False, keys[1])) == 0
        # A replay is refused too (the guard answers it before the gate: the limiter replaces it).
        again = await client.post(
            "/v1/payments", json=BODY, headers={**merchant.auth, "Idempotency-Key": keys[0]}
        )
        assert_rate_limited(again, 3, 60)
        assert "idempotent-replayed" not in again.headers
    assert await gateway.scalar("SELECT count(*) FROM payments WHERE merchant_id = :m", m=merchant.id) == 1


async def test_the_limit_and_the_idempotency_claim_share_one_round_trip(
    serve: Serve, merchant: Merchant
) -> None:
    async with serve(test="50/minute") as (client, _):
        with batches() as sent:
            r = await client.post(
                "/v1/payments", json=BODY, headers={**merchant.auth, "Idempotency-Key": "one-trip"}
            )
    assert r.status_code == 201, r.text
    # The first batch of the request carries the limit's script and the claim: one round trip.
    assert [c[0] for c in sent[0]] == ["EVALSHA", "EVAL"]


async def test_failed_authentications_per_address_lock_it_out_for_the_window(
    serve: Serve, merchant: Merchant, address: str
) -> None:
    wrong = {"Authorization": "Bearer sk_test_" + "x" * 32}
    async with serve(failed_auth="3/minute", test="100/minute") as (client, _):
        for _ in range(3):
            assert_problem(await client.get("/v1/payments", headers=wrong), 401, "invalid_api_key")
        blocked = await client.get("/v1/payments", headers=wrong)
        assert_rate_limited(blocked, 3, 60)
        assert "failed authentications" in blocked.json()["detail"]
        # No oracle: over the limit, a right key from that address is refused as well ...
        assert_rate_limited(await client.get("/v1/payments", headers=merchant.auth), 3, 60)
        # ... and no key at all too; another address is not affected.
        assert_rate_limited(await client.get("/v1/payments"), 3, 60)
        elsewhere = await client.get(
            "/v1/payments", headers={**merchant.auth, "X-Forwarded-For": "10.255.0.1"}
        )
        assert elsewhere.status_code == 200
        # Provider webhooks from that address are never limited.
        hook = await client.post(
            "/v1/webhooks/sandbox", content=b"{}", headers={"content-type": "application/json"}
        )
        assert hook.status_code in (400, 401)
        assert "ratelimit-limit" not in hook.headers


async def test_missing_credentials_count_as_failures(serve: Serve) -> None:
    async with serve(failed_auth="2/minute") as (client, _):
        assert_problem(await client.get("/v1/events"), 401, "authentication_required")
        assert_problem(
            await client.get("/v1/events", headers={"Authorization": "Basic eDp5"}),
            401,
            "authentication_required",
        )
        assert_rate_limited(await client.get("/v1/events"), 2, 60)


async def test_webhooks_and_probes_are_never_limited(serve: Serve) -> None:
    async with serve(test="1/minute", failed_auth="1/minute", admin="1/minute") as (client, _):
        for _ in range(5):
            hook = await client.post(
                "/v1/webhooks/sandbox", content=b"{}", headers={"content-type": "application/json"}
            )
            assert hook.status_code in (400, 401)
            assert "ratelimit-limit" not in hook.headers
        for path in ("/healthz", "/readyz", "/openapi.json", "/docs"):
            for _ in range(3):
                r = await client.get(path)
                assert r.status_code == 200, path
                assert "ratelimit-limit" not in r.headers


async def test_the_admin_api_is_limited_per_address(serve: Serve, address: str) -> None:
    async with serve(admin="2/minute") as (client, _):
        answers = [await client.get("/v1/admin/merchants") for _ in range(2)]
        assert [quota(r)[:2] for r in answers] == [(2, 1), (2, 0)]
        assert_rate_limited(await client.get("/v1/admin/merchants"), 2, 60)
        other = await client.get("/v1/admin/merchants", headers={"X-Forwarded-For": "10.255.0.2"})
        assert other.status_code != 429


async def test_limits_off_send_no_headers(serve: Serve, merchant: Merchant) -> None:
    async with serve(enabled=False, test="1/minute") as (client, _):
        answers = [await client.get("/v1/payments", headers=merchant.auth) for _ in range(3)]
    assert [r.status_code for r in answers] == [200] * 3
    assert all("ratelimit-limit" not in r.headers for r in answers)
