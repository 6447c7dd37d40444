"""Gateways of the tests' own, with small limits, on the session's PostgreSQL and Redis: real uvicorn
servers (the client's address comes from the socket, or from X-Forwarded-For, which uvicorn takes
from 127.0.0.1 as a proxy's)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from redis.asyncio.connection import AbstractConnection

from gateway.embedded import free_port
from gateway.main import create_app
from gateway.settings import RateLimitSettings
from support import Gateway

Serve = Callable[..., contextlib.AbstractAsyncContextManager[tuple[httpx.AsyncClient, FastAPI]]]


@contextlib.asynccontextmanager
async def serving(
    gateway: Gateway,
    address: str,
    redis_url: str | None = None,
    *,
    settings_update: Any = None,  # a mapping of Settings fields (Any: **limits of str share the keywords)
    **limits: Any,
) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI]]:
    """A gateway on its own port whose rate limits are `limits` (the rest as the session gateway's,
    changed by `settings_update`; `enabled=False` turns them off), and a client calling it from
    `address`."""
    port = free_port()
    settings = gateway.ctx.settings.model_copy(
        update={
            "port": port,
            "rate_limits": RateLimitSettings(**limits),
            "redis_url": redis_url or gateway.ctx.settings.redis_url,
            **(settings_update or {}),
        }
    )
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on"))
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", timeout=30, headers={"X-Forwarded-For": address}
        ) as client:
            yield client, app
    finally:
        server.should_exit = True
        await task


@contextlib.contextmanager
def batches() -> Iterator[list[list[tuple[Any, ...]]]]:
    """Records each batch of commands written to Redis at once (redis-py's `pack_commands`: the
    app's batcher's, and any pipeline's), as the commands' arguments, in the order sent."""
    real = AbstractConnection.pack_commands
    sent: list[list[tuple[Any, ...]]] = []

    def recording(self: AbstractConnection, commands: Any) -> Any:
        commands = [tuple(c) for c in commands]
        sent.append(commands)
        return real(self, commands)

    AbstractConnection.pack_commands = recording  # type: ignore[method-assign]
    try:
        yield sent
    finally:
        AbstractConnection.pack_commands = real  # type: ignore[method-assign]
