"""The Redis batcher (gateway/redis_batch.py) on a real Redis: commands queued in one turn go in one
write on the one connection it keeps; an error reply is that command's alone; a connection Redis
dropped is given up and the next batch goes out on a new one."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from gateway.embedded import EmbeddedServers
from gateway.redis_batch import RedisBatcher
from gateway.redis_client import connect_redis
from ratelimits.serving import batches


@pytest.fixture
async def batcher(servers: EmbeddedServers) -> AsyncIterator[RedisBatcher]:
    redis = connect_redis(servers.redis.url, health_check_interval=30, socket_connect_timeout=2)
    made = RedisBatcher(redis)
    try:
        yield made
    finally:
        await made.close()
        await redis.aclose()


async def test_commands_of_one_turn_go_in_one_write_on_one_connection(batcher: RedisBatcher) -> None:
    first = await batcher.call("CLIENT", "ID")
    with batches() as sent:
        answers = await asyncio.gather(
            batcher.call("SET", "batch:a", "1"),
            batcher.call("INCR", "batch:a"),
            batcher.call("CLIENT", "ID"),
        )
    assert list(answers[1:]) == [2, first]  # one connection, kept from the first call
    assert [[c[0] for c in batch] for batch in sent] == [["SET", "INCR", "CLIENT"]]


async def test_an_error_reply_is_its_command_s_alone(batcher: RedisBatcher) -> None:
    await batcher.call("SET", "batch:text", "x")
    incr = batcher.submit("INCR", "batch:text")  # not a number
    get = batcher.submit("GET", "batch:text")
    with pytest.raises(ResponseError):
        await incr
    assert await get == b"x"


async def test_a_connection_redis_dropped_is_replaced(
    batcher: RedisBatcher, servers: EmbeddedServers
) -> None:
    kept = await batcher.call("CLIENT", "ID")
    admin = Redis.from_url(servers.redis.url)
    try:
        assert await admin.client_kill_filter(_id=kept) == 1
    finally:
        await admin.aclose()
    # The next batch may fail with it, as a pipeline on a pooled connection did (redis-py's check on
    # checkout does not see the closed socket); the one after runs on a new connection.
    with contextlib.suppress(RedisConnectionError):
        await batcher.call("PING")
    assert await batcher.call("CLIENT", "ID") != kept
