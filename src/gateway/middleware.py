"""Pure ASGI middleware: a request id on every request, response and log line, plus an access log
and the request metrics (one timing serves both)."""

from __future__ import annotations

import logging
import re
import secrets
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


def _request_id(scope: Scope) -> str:
    incoming = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), "")
    request_id = incoming if _SAFE_ID.match(incoming) else "req_" + secrets.token_hex(12)
    scope.setdefault("state", {})["request_id"] = request_id
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    return request_id


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
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

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A WebSocket's line, when it ends: the handshake's status (101 accepted, or the refusal's
        4xx/5xx; 403 for a close before the accept), how long it lasted, the path only (browsers send
        their publishable key and the client secret in the query)."""
        request_id = _request_id(scope)
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
            await self.app(scope, receive, send_with_id)
        finally:
            log.info(
                "request",
                method="WEBSOCKET",
                path=scope["path"],
                status=status,
                ms=round((time.perf_counter() - started) * 1000, 1),
            )
