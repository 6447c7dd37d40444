"""A real HTTP receiver on 127.0.0.1 for outbound webhook tests: records requests, answers as scripted."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.requests import Request
from starlette.responses import Response

from gateway.embedded import free_port


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    port: int
    received: list[Received] = field(default_factory=list)
    # Status codes to answer, in order; when empty, `default`.
    script: list[int] = field(default_factory=list)
    default: int = 200
    in_flight: int = 0
    max_in_flight: int = 0
    # When set, requests are held until this many are in flight at once; from then on none is held.
    gate: int = 0
    _open: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    async def __call__(self, scope: dict, receive: object, send: object) -> None:  # type: ignore[type-arg]
        if scope["type"] != "http":
            return
        request = Request(scope, receive)  # type: ignore[arg-type]
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.in_flight >= self.gate:
                self._open.set()
            await self._open.wait()
            body = await request.body()
            await asyncio.sleep(0.005)
            self.received.append(Received({k.lower(): v for k, v in request.headers.items()}, body))
            status = self.script.pop(0) if self.script else self.default
            await Response(b"ok" if status < 300 else b"nope", status_code=status)(scope, receive, send)  # type: ignore[arg-type]
        finally:
            self.in_flight -= 1


@contextlib.asynccontextmanager
async def serving(
    app: Any, port: int, host: str = "127.0.0.1", *, force_exit: bool = False
) -> AsyncIterator[None]:
    """Any ASGI app on a real uvicorn server on `host:port`, for the block's length. `force_exit`:
    answers still running (a deliberately slow one) do not hold the block's end."""
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_config=None, lifespan="off"))
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield
    finally:
        server.should_exit = True
        server.force_exit = force_exit
        await task


@contextlib.asynccontextmanager
async def running_receiver(port: int | None = None, **kwargs: object) -> AsyncIterator[Receiver]:
    receiver = Receiver(port or free_port(), **kwargs)  # type: ignore[arg-type]
    async with serving(receiver, receiver.port):
        yield receiver
