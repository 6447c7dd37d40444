"""A restricted key's create is claimed by the idempotency guard, as a secret key's is: the guard finds
the route's scope check among the app's routes (flat on the app since api/dispatch.py), and the
answer is stored in Redis, where a replay is answered from."""

from __future__ import annotations

import uuid

import httpx

from auth.credentials import PAYMENT, add_key, new_merchant
from gateway.idempotency.store import redis_key
from support import Gateway


async def test_a_restricted_keys_create_is_claimed_and_stored_in_redis(
    gateway: Gateway, client: httpx.AsyncClient
) -> None:
    merchant = await new_merchant(gateway)
    writer = await add_key(gateway, merchant, "restricted", scopes=["payments:write"])
    key = str(uuid.uuid4())
    made = await client.post("/v1/payments", json=PAYMENT, headers=writer.auth | {"Idempotency-Key": key})
    assert made.status_code == 201, made.text
    assert await gateway.ctx.redis.exists(redis_key(merchant, False, key)) == 1

    again = await client.post("/v1/payments", json=PAYMENT, headers=writer.auth | {"Idempotency-Key": key})
    assert (again.status_code, again.headers["idempotent-replayed"]) == (201, "true")
    assert again.content == made.content
