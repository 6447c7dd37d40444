"""Idempotency-Key: Redis fast path, PostgreSQL backstop, exact replays."""

from __future__ import annotations

import asyncio
import uuid

import httpx

from support import Gateway, Merchant

BODY = {"amount": 2500, "currency": "KES", "provider": "sandbox", "payment_method": "pm_success"}


async def _count(gateway: Gateway, merchant: Merchant) -> int:
    return int(await gateway.scalar("SELECT count(*) FROM payments WHERE merchant_id = :m", m=merchant.id))


async def test_fifty_concurrent_requests_make_one_payment_and_one_provider_call(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    key = str(uuid.uuid4())
    headers = {**merchant.auth, "Idempotency-Key": key}
    calls_before = gateway.calls("sandbox.create_payment")

    responses = await asyncio.gather(
        *(client.post("/v1/payments", json=BODY, headers=headers) for _ in range(50))
    )

    statuses = sorted(r.status_code for r in responses)
    created = [r for r in responses if r.status_code == 201]
    conflicts = [r for r in responses if r.status_code == 409]
    assert len(created) + len(conflicts) == 50, statuses
    assert len(created) >= 1
    assert {r.content for r in created} == {created[0].content}  # every 201 is the same body
    for r in conflicts:
        assert r.json()["code"] == "idempotency_key_in_use"
        assert r.headers["retry-after"] == "1"
    assert await _count(gateway, merchant) == 1
    assert gateway.calls("sandbox.create_payment") - calls_before == 1

    replay = await client.post("/v1/payments", json=BODY, headers=headers)
    assert replay.status_code == 201
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.content == created[0].content
    assert gateway.calls("sandbox.create_payment") - calls_before == 1


async def test_first_answer_is_not_marked_replayed(client: httpx.AsyncClient, merchant: Merchant) -> None:
    r = await client.post("/v1/payments", json=BODY, headers={**merchant.auth, "Idempotency-Key": "first"})
    assert r.status_code == 201
    assert "idempotent-replayed" not in r.headers


async def test_same_key_different_body_is_422_and_writes_nothing(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    headers = {**merchant.auth, "Idempotency-Key": "order-77"}
    first = await client.post("/v1/payments", json=BODY, headers=headers)
    assert first.status_code == 201

    r = await client.post("/v1/payments", json={**BODY, "amount": 2600}, headers=headers)
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "idempotency_key_reused"
    assert await _count(gateway, merchant) == 1


async def test_key_order_and_whitespace_do_not_change_the_fingerprint(
    client: httpx.AsyncClient, merchant: Merchant
) -> None:
    headers = {**merchant.auth, "Idempotency-Key": "canon", "Content-Type": "application/json"}
    a = await client.post(
        "/v1/payments", content=b'{"amount":2500,"currency":"KES","provider":"cash"}', headers=headers
    )
    b = await client.post(
        "/v1/payments",
        content=b'{ "provider": "cash",\n "currency": "KES", "amount": 2500 }',
        headers=headers,
    )
    assert a.status_code == b.status_code == 201
    assert b.headers["idempotent-replayed"] == "true"
    assert a.content == b.content


async def test_redis_flushed_retry_returns_the_existing_payment_without_calling_the_provider(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    headers = {**merchant.auth, "Idempotency-Key": str(uuid.uuid4())}
    first = await client.post("/v1/payments", json=BODY, headers=headers)
    assert first.status_code == 201
    calls = gateway.calls("sandbox.create_payment")

    await gateway.ctx.redis.flushall()
    retry = await client.post("/v1/payments", json=BODY, headers=headers)

    assert retry.status_code == 201
    assert retry.headers["idempotent-replayed"] == "true"  # answered from PostgreSQL
    assert "idempotent-replayed" not in first.headers
    assert retry.json()["id"] == first.json()["id"]
    assert retry.json() == first.json()
    assert await _count(gateway, merchant) == 1
    assert gateway.calls("sandbox.create_payment") == calls

    # The database remembers the fingerprint too: another body under the key is still refused.
    await gateway.ctx.redis.flushall()
    other = await client.post("/v1/payments", json={**BODY, "amount": 1}, headers=headers)
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"
    assert await _count(gateway, merchant) == 1


async def test_redis_flushed_concurrent_retries_still_make_one_payment(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    """With Redis empty for every request, only the database's unique key stands between 20 racers."""
    key = str(uuid.uuid4())
    headers = {**merchant.auth, "Idempotency-Key": key}
    calls = gateway.calls("sandbox.create_payment")

    async def racer() -> httpx.Response:
        await gateway.ctx.redis.flushall()
        return await client.post("/v1/payments", json=BODY, headers=headers)

    responses = await asyncio.gather(*(racer() for _ in range(20)))
    assert {r.status_code for r in responses} <= {201, 409}
    ids = {r.json()["id"] for r in responses if r.status_code == 201}
    assert len(ids) == 1
    # One created it; any other 201 repeats it, and says so.
    fresh = [r for r in responses if r.status_code == 201 and "idempotent-replayed" not in r.headers]
    assert len(fresh) == 1
    assert await _count(gateway, merchant) == 1
    assert gateway.calls("sandbox.create_payment") - calls == 1


async def test_keys_are_scoped_per_merchant(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, other_merchant: Merchant
) -> None:
    a = await client.post("/v1/payments", json=BODY, headers={**merchant.auth, "Idempotency-Key": "shared"})
    b = await client.post(
        "/v1/payments", json=BODY, headers={**other_merchant.auth, "Idempotency-Key": "shared"}
    )
    assert a.status_code == b.status_code == 201
    assert "idempotent-replayed" not in b.headers
    assert a.json()["id"] != b.json()["id"]


async def test_decline_is_stored_and_replayed(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    headers = {**merchant.auth, "Idempotency-Key": str(uuid.uuid4())}
    body = {**BODY, "payment_method": "pm_insufficient_funds"}
    first = await client.post("/v1/payments", json=body, headers=headers)
    assert first.status_code == 402
    replay = await client.post("/v1/payments", json=body, headers=headers)
    assert replay.status_code == 402
    assert replay.content == first.content
    assert replay.headers["idempotent-replayed"] == "true"
    assert await _count(gateway, merchant) == 1


async def test_a_replay_answered_before_the_app_carries_the_request_id(
    client: httpx.AsyncClient, merchant: Merchant
) -> None:
    headers = {**merchant.auth, "Idempotency-Key": str(uuid.uuid4())}
    first = await client.post("/v1/payments", json=BODY, headers=headers)
    replay = await client.post("/v1/payments", json=BODY, headers={**headers, "X-Request-Id": "req-replay-1"})
    assert (replay.status_code, replay.content) == (first.status_code, first.content)
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.headers["content-type"] == first.headers["content-type"] == "application/json"
    assert replay.headers["x-request-id"] == "req-replay-1"


async def test_a_key_claimed_for_a_request_refused_before_its_handler_is_released(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    """Malformed JSON is refused before any dependency runs: the key claimed on the way in is freed."""
    headers = {**merchant.auth, "Idempotency-Key": str(uuid.uuid4()), "Content-Type": "application/json"}
    bad = await client.post("/v1/payments", content=b'{"amount": 25', headers=headers)
    assert bad.status_code == 400
    assert bad.headers["content-type"] == "application/problem+json"

    good = await client.post("/v1/payments", json=BODY, headers=headers)
    assert good.status_code == 201
    assert "idempotent-replayed" not in good.headers
    assert await _count(gateway, merchant) == 1


async def test_a_key_sent_to_a_route_without_idempotency_stays_free(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    endpoint = await client.post(
        "/v1/webhook-endpoints",
        json={"url": "https://example.com/hooks", "enabled_events": ["*"]},
        headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert endpoint.status_code == 201
    key = str(uuid.uuid4())
    patched = await client.patch(
        f"/v1/webhook-endpoints/{endpoint.json()['id']}",
        json={"description": "orders"},
        headers={**merchant.auth, "Idempotency-Key": key},
    )
    assert patched.status_code == 200

    created = await client.post("/v1/payments", json=BODY, headers={**merchant.auth, "Idempotency-Key": key})
    assert created.status_code == 201
    assert "idempotent-replayed" not in created.headers
    assert await _count(gateway, merchant) == 1
