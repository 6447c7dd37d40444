"""A WebSocket client for the tests (the `websockets` package, a peer implementation), and what the
tests share about the gateway's sockets."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.frames import Frame, Opcode

from support import Gateway, Merchant


class Socket(ClientConnection):
    """A client connection that notes when the server pings it (the gateway's heartbeats)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.pings: list[float] = []

    def process_event(self, event: Any) -> None:
        if isinstance(event, Frame) and event.opcode is Opcode.PING:
            self.pings.append(time.monotonic())
        super().process_event(event)

    async def message(self, timeout: float = 5.0) -> dict[str, Any]:
        """The next JSON message (an AssertionError if the server closes first)."""
        try:
            text = await asyncio.wait_for(self.recv(), timeout)
        except ConnectionClosed as e:
            raise AssertionError(f"closed instead: {e.rcvd}") from e
        assert isinstance(text, str), text
        value: dict[str, Any] = orjson.loads(text)
        return value

    async def messages(self, n: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        return [await self.message(timeout) for _ in range(n)]

    async def closed(self, timeout: float = 5.0) -> tuple[int | None, list[dict[str, Any]]]:
        """The close code the server ended with, and what it sent before."""
        rest = []
        with contextlib.suppress(ConnectionClosed):
            while True:
                text = await asyncio.wait_for(self.recv(), timeout)
                rest.append(orjson.loads(text))
        await asyncio.wait_for(self.wait_closed(), timeout)
        return self.close_code, rest

    async def send_json(self, value: Any) -> None:
        await self.send(orjson.dumps(value).decode())


def ws_url(base_url: str, path: str) -> str:
    return "ws" + base_url.removeprefix("http") + path


@contextlib.asynccontextmanager
async def socket(
    base_url: str, path: str, headers: dict[str, str] | None = None, **params: str
) -> AsyncIterator[Socket]:
    query = httpx.QueryParams(params)
    url = ws_url(base_url, path) + (f"?{query}" if params else "")
    async with connect(
        url, additional_headers=headers or {}, create_connection=Socket, ping_interval=None, open_timeout=10
    ) as ws:
        assert isinstance(ws, Socket)
        yield ws


async def refused(
    base_url: str, path: str, headers: dict[str, str] | None = None, **params: str
) -> tuple[int, dict[str, Any]]:
    """The HTTP status and problem+json body of a refused handshake."""
    try:
        async with socket(base_url, path, headers, **params):
            pass
    except InvalidStatus as e:
        response = e.response
        assert response.headers["Content-Type"] == "application/problem+json", response.headers
        return response.status_code, orjson.loads(response.body or b"{}")
    raise AssertionError("the handshake was accepted")


async def pay(
    client: httpx.AsyncClient, merchant: Merchant, method: str = "pm_success", amount: int = 1200
) -> dict[str, Any]:
    r = await client.post(
        "/v1/payments",
        json={"amount": amount, "currency": "KES", "provider": "sandbox", "payment_method": method},
        headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert r.status_code in (201, 402), r.text
    return dict(r.json() if r.status_code == 201 else r.json()["payment"])


async def cancel(client: httpx.AsyncClient, merchant: Merchant, payment_id: str) -> dict[str, Any]:
    r = await client.post(
        f"/v1/payments/{payment_id}/cancel", headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())}
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


async def client_secret(gateway: Gateway, payment_id: str) -> str:
    secret: str = await gateway.scalar("SELECT client_secret FROM payments WHERE id = :id", id=payment_id)
    return secret


async def events_of(client: httpx.AsyncClient, merchant: Merchant) -> list[dict[str, Any]]:
    """The merchant's events, oldest first."""
    r = await client.get("/v1/events", headers=merchant.auth, params={"limit": 100})
    return list(reversed(r.json()["data"]))
