"""What one process changes reaches a second process within a second, through the broadcast, while
that process caches keys for 30 s: revoked keys and their tokens, disabled merchants. A rolled key's
expiry needs no message at all: it is checked on every cache hit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import httpx

from auth.credentials import access_token, add_key, announce_revocation, bearer, new_merchant, revoke
from faults.processes import GatewayProcess
from support import Gateway, assert_problem

REACH = 1.0  # seconds: the contract (issue #13)


async def within(limit: float, check: Callable[[], Awaitable[bool]]) -> float:
    """Polls `check` until true; how long that took (an AssertionError past twice the limit)."""
    start = time.monotonic()
    while not await check():
        if time.monotonic() - start > 2 * limit:
            raise AssertionError(f"not within {2 * limit} s")
        await asyncio.sleep(0.01)
    return time.monotonic() - start


async def status(c: httpx.AsyncClient, headers: dict[str, str]) -> int:
    return (await c.get("/v1/payments", headers=headers)).status_code


async def test_a_revoked_key_is_refused_by_the_other_process_within_a_second(
    gateway: Gateway, client: httpx.AsyncClient, replica: GatewayProcess
) -> None:
    merchant = await new_merchant(gateway)
    key, other = await add_key(gateway, merchant), await add_key(gateway, merchant)
    async with httpx.AsyncClient(base_url=replica.base_url, timeout=5) as c:
        assert await status(c, key.auth) == 200  # now in the replica's cache
        assert await status(c, other.auth) == 200
        await revoke(gateway, key, announce=False)
        assert await status(c, key.auth) == 200  # the cache answers: only the message can reach it
        assert_problem(await client.get("/v1/payments", headers=key.auth), 401, "invalid_api_key")

        await announce_revocation(gateway, key)
        took = await within(REACH, lambda: _refused(c, key.auth, 401))
        assert took < REACH, took
        assert_problem(await c.get("/v1/payments", headers=key.auth), 401, "invalid_api_key")
        assert await status(c, other.auth) == 200  # only that key's entry went


async def test_a_revoked_keys_token_is_refused_by_the_other_process_within_a_second(
    gateway: Gateway, client: httpx.AsyncClient, replica: GatewayProcess
) -> None:
    merchant = await new_merchant(gateway)
    key = await add_key(gateway, merchant)
    token = await access_token(client, key.secret)  # made by the session gateway, used on the replica
    async with httpx.AsyncClient(base_url=replica.base_url, timeout=5) as c:
        assert await status(c, bearer(token)) == 200
        await revoke(gateway, key)
        took = await within(REACH, lambda: _refused(c, bearer(token), 401))
        assert took < REACH, took
        problem = assert_problem(
            await c.get("/v1/payments", headers=bearer(token)), 401, "invalid_access_token"
        )
        assert problem["detail"] == "The key this access token was made from has been revoked."


async def test_a_replica_that_starts_later_knows_the_revoked_keys(
    gateway: Gateway, client: httpx.AsyncClient, replica: GatewayProcess
) -> None:
    """Revocations made while a process was away come from Redis at its (re)start, not a message."""
    merchant = await new_merchant(gateway)
    key = await add_key(gateway, merchant)
    token = await access_token(client, key.secret)
    await replica.stop()
    await revoke(gateway, key)
    await replica.start()
    async with httpx.AsyncClient(base_url=replica.base_url, timeout=5) as c:
        assert_problem(await c.get("/v1/payments", headers=bearer(token)), 401, "invalid_access_token")


async def test_a_disabled_merchant_is_refused_by_the_other_process_within_a_second(
    gateway: Gateway, client: httpx.AsyncClient, replica: GatewayProcess
) -> None:
    merchant = await new_merchant(gateway)
    key = await add_key(gateway, merchant)
    token = await access_token(client, key.secret)
    async with httpx.AsyncClient(base_url=replica.base_url, timeout=5) as c:
        assert await status(c, key.auth) == 200
        assert await status(c, bearer(token)) == 200
        await gateway.execute("UPDATE merchants SET status = 'disabled' WHERE id = :id", id=merchant)
        assert await status(c, key.auth) == 200  # cached
        await gateway.ctx.broadcast.publish("merchant", merchant)
        took = await within(REACH, lambda: _refused(c, key.auth, 403))
        assert took < REACH, took
        assert_problem(await c.get("/v1/payments", headers=key.auth), 403, "merchant_disabled")
        assert_problem(await c.get("/v1/payments", headers=bearer(token)), 403, "merchant_disabled")

        await gateway.execute("UPDATE merchants SET status = 'active' WHERE id = :id", id=merchant)
        await gateway.ctx.broadcast.publish("merchant", merchant)
        await within(REACH, lambda: _refused(c, key.auth, 200))
        assert await status(c, bearer(token)) == 200


async def test_an_expired_key_is_refused_while_still_cached(
    gateway: Gateway, replica: GatewayProcess
) -> None:
    merchant = await new_merchant(gateway)
    # A rolled key: its expiry set (by SQL here; the roll does it through the keys API).
    key = await add_key(gateway, merchant, expires_at=datetime.now(UTC) + timedelta(seconds=1.5))
    async with httpx.AsyncClient(base_url=replica.base_url, timeout=5) as c:
        assert await status(c, key.auth) == 200  # cached for 30 s from now
        await asyncio.sleep(1.6)
        problem = assert_problem(await c.get("/v1/payments", headers=key.auth), 401, "invalid_api_key")
        assert problem["detail"] == "This API key has expired (it was rolled); use the key that replaced it."


async def _refused(c: httpx.AsyncClient, headers: dict[str, str], expected: int) -> bool:
    return await status(c, headers) == expected
