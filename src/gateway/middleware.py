"""A request id on every request, response and log line, plus an access log and the request
metrics (one timing serves both). Called by the edge (gateway/edge.py) for HTTP requests, and
around WebSocket handshakes by `websocket_access`."""

from __future__ import annotations

import logging
import os
import re
import time

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway import metrics
from gateway.logging import enabled

log = structlog.get_logger("gateway.access")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


_CALLBACK_TOKEN = re.compile(r"^(/v1/webhooks/[^/]+/)[^/]+$")


def _loggable(path: str) -> str:
    """Callback URLs carry a secret (M-Pesa, MoMo sign nothing): never log it."""
    if not path.startswith("/v1/webhooks/"):  # every other request: no regex on the hot path
        return path
    return _CALLBACK_TOKEN.sub(r"\1[redacted]", path)


def assign_request_id(scope: Scope) -> str:
    """The request's id: the caller's `X-Request-ID` when it is safe to echo, else a new one; left in
    the request's state and bound to every log line of the request."""
    incoming = ""
    for name, value in scope["headers"]:  # the first, as Starlette's headers.get
        if name == b"x-request-id":
            incoming = value.decode("latin-1")
            break
    # os.urandom(12).hex() is secrets.token_hex(12) without its two Python calls.
    request_id = incoming if _SAFE_ID.match(incoming) else "req_" + os.urandom(12).hex()
    scope.setdefault("state", {})["request_id"] = request_id
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    return request_id


def observe(scope: Scope, status: int, started: float) -> None:
    """The request's metrics and its access line, once it is answered (or failed: `status` 500)."""
    elapsed = time.perf_counter() - started
    metrics.observe_request(scope, status, elapsed)
    if enabled(logging.INFO):
        log.info(
            "request",
            method=scope["method"],
            path=_loggable(scope["path"]),
            status=status,
            ms=round(elapsed * 1000, 1),
        )


async def websocket_access(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    """A WebSocket's request id and its line, when it ends: the handshake's status (101 accepted, or
    the refusal's 4xx/5xx; 403 for a close before the accept), how long it lasted, the path only
    (browsers send their publishable key and the client secret in the query)."""
    request_id = assign_request_id(scope)
    started = time.perf_counter()
    status = 500

    async def send_with_id(message: Message) -> None:
        nonlocal status
        kind = message["type"]
        if kind in ("websocket.accept", "websocket.http.response.start"):
            status = 101 if kind == "websocket.accept" else message["status"]
            message["headers"] = [*message.get("headers", ()), (b"x-request-id", request_id.encode())]
        elif kind == "websocket.close" and status == 500:
            status = 403  # closed before the accept: the server answers the handshake with 403
        await send(message)

    try:
        await app(scope, receive, send_with_id)
    finally:
        log.info(
            "request",
            method="WEBSOCKET",
            path=scope["path"],
            status=status,
            ms=round((time.perf_counter() - started) * 1000, 1),
        )
