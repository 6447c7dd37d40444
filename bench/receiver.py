"""A merchant's webhook endpoint for the scale-out bench (bench/scaleout.py): answers every POST with
204 at once and remembers its `webhook-id` (the event id, the same across retries), so the harness
can tell whether each event arrived exactly once.

    uvicorn bench.receiver:create_app --factory --port N   # POST: recorded; GET /ids: every id
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

RECEIVED: list[str] = []


async def _answer(send: Send, status: int, body: bytes = b"") -> None:
    headers = [(b"content-type", b"application/json")] if body else []
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """A bare ASGI app: the receiver's own CPU stays small beside the gateway's."""
    if scope["type"] != "http":
        return
    if scope["method"] == "GET" and scope["path"] == "/ids":
        await _answer(send, 200, orjson.dumps(RECEIVED))
        return
    while (await receive()).get("more_body"):
        pass  # the body is not needed: the id is in the headers
    webhook_id = dict(scope["headers"]).get(b"webhook-id", b"").decode()
    RECEIVED.append(webhook_id)
    await _answer(send, 204)


def create_app() -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """For `uvicorn --factory`, as the bench starts every app."""
    return app
