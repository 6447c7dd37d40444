"""Reading a Server-Sent Events stream: our own parser (the gateway's streams are read as a browser would)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson


@dataclass
class Message:
    id: str | None = None
    data: Any = None
    comment: str | None = None


class Stream:
    def __init__(self, response: httpx.Response):
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        self._messages = self._parse(response)

    @staticmethod
    async def _parse(response: httpx.Response) -> AsyncIterator[Message]:
        current = Message()
        data: list[str] = []
        async for line in response.aiter_lines():
            if line == "":
                if data:
                    current.data = orjson.loads("\n".join(data))
                    yield current
                current, data = Message(), []
            elif line.startswith(":"):
                yield Message(comment=line[1:].strip())
            else:
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "id":
                    current.id = value
                elif name == "data":
                    data.append(value)
                else:
                    raise AssertionError(f"unexpected SSE field {line!r}")

    async def next(self, timeout: float = 5.0, heartbeats: bool = False) -> Message | None:
        """The next message (heartbeats skipped unless asked for); None when the stream has ended."""
        async with asyncio.timeout(timeout):
            async for m in self._messages:
                if m.comment == "heartbeat" and not heartbeats:
                    continue
                return m
        return None

    async def ready(self) -> list[Message]:
        """The events sent before `: ready` (the catch-up)."""
        out = []
        while (m := await self.next()) is not None and m.comment != "ready":
            assert m.comment is None, m
            out.append(m)
        assert m is not None, "the stream ended before it was ready"
        return out

    async def events(self, n: int, timeout: float = 5.0) -> list[Message]:
        out: list[Message] = []
        for _ in range(n):
            m = await self.next(timeout)
            assert m is not None, out
            assert m.comment is None, (m, out)
            out.append(m)
        return out

    async def end(self, timeout: float = 10.0) -> list[Message]:
        """Everything until the server ends the stream."""
        out = []
        while (m := await self.next(timeout)) is not None:
            out.append(m)
        return out
