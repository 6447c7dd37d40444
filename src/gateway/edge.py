"""The app's edge: one ASGI layer that every request crosses before the framework.

It runs, in this order, what five nested middlewares ran before (each concern keeps its home):

1. the request id and, once answered, the access line and the request metrics (gateway/middleware.py);
2. the error boundary (api/boundary.py): the body limit, and an answer to whatever fails below;
3. the rate limits (api/ratelimit.py): the caller's key resolved once, the check queued;
4. the idempotency guard (idempotency/guard.py): the key claimed in the same Redis pipeline as the
   check, a finished request's replay answered here;
5. the gate: a request the check refused is answered 429 before routing;

then the framework. Five layers cost five coroutine frames on every step of a request and five send
wrappers on every message of its answer; one layer and one wrapper (`_Exchange.send`) do the same
(bench/README.md, issue #15). The wrapper does, innermost first, what theirs did: release a claim
the request still holds, put the RateLimit-* headers on the answer (or the 429 in place of a replay
the check refused), note that the answer started, its status and the X-Request-ID. An answer made
by the boundary itself goes out as it did, past the limits and the guard (`_Exchange.send_outer`).

WebSocket handshakes keep the request id, the log line and the limits (`websocket_access`,
`RateLimits.websocket`); the boundary and the guard are about HTTP bodies and answers.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.api.boundary import Boundary, within_limit
from gateway.api.dispatch import FOUND, RouteIndex
from gateway.api.ratelimit import Pending, RateLimits, refusal
from gateway.idempotency.guard import Claim, IdempotencyGuard
from gateway.middleware import assign_request_id, observe, websocket_access

_REQUEST_ID = b"x-request-id"


class _Exchange:
    """One HTTP request's answer on its way out, and what the edge learnt of the request."""

    __slots__ = (
        "claim",
        "downstream",
        "pending",
        "receive",
        "replaced",
        "request_id",
        "scope",
        "started",
        "status",
    )

    def __init__(self, scope: Scope, receive: Receive, downstream: Send, request_id: str) -> None:
        self.scope, self.receive, self.downstream, self.request_id = scope, receive, downstream, request_id
        self.status = 500  # the access line's, when the app fails before answering
        self.started = False
        self.replaced = False
        self.pending: Pending | None = None
        self.claim: Claim | None = None

    async def send(self, message: Message) -> None:
        """The answer of the app (or the guard's replay, or the gate's 429)."""
        if message["type"] == "http.response.start":
            claim = self.claim
            if claim is not None and claim.held:  # it stored nothing: free the key before the answer leaves
                await IdempotencyGuard.release(self.scope, claim)
            extra: list[tuple[bytes, bytes]] = []
            pending = self.pending
            if pending is not None:
                extra, refused = await pending.on_start(message["status"])
                if refused is not None:  # answered before the gate (a replay): refused all the same
                    self.replaced = True
                    await refusal(refused, self.scope)(self.scope, self.receive, self.send_outer)
                    return
            self._start(message, extra)
        elif self.replaced:
            return
        await self.downstream(message)

    async def send_outer(self, message: Message) -> None:
        """An answer made at the edge itself (the boundary's, a replay's 429): past the limits and
        the guard."""
        if message["type"] == "http.response.start":
            self._start(message, [])
        await self.downstream(message)

    def _start(self, message: Message, extra: list[tuple[bytes, bytes]]) -> None:
        self.started = True
        self.status = message["status"]
        # A new list: the message's may be a Response's own headers.
        message["headers"] = [*message.get("headers", ()), *extra, (_REQUEST_ID, self.request_id.encode())]


class Edge:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, max_webhook_body_bytes: int) -> None:
        self.app = app
        self.boundary = Boundary(max_body_bytes, max_webhook_body_bytes)
        self.limits = RateLimits()
        self.guard = IdempotencyGuard()
        # Set by install_edge once the stack is built: the router's index, and the handlers the
        # framework's ExceptionMiddleware (self.app) renders exceptions with.
        self.index: RouteIndex | None = None
        self.handlers: dict[Any, Any] = {}
        self.status_handlers: dict[int, Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http":
            if kind == "websocket":
                await websocket_access(self._websocket, scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        exchange = _Exchange(scope, receive, send, assign_request_id(scope))
        started = time.perf_counter()
        try:
            await self._bounded(scope, receive, exchange)
        finally:
            observe(scope, exchange.status, started)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.limits.websocket(self.app, scope, receive, send)

    async def _bounded(self, scope: Scope, receive: Receive, exchange: _Exchange) -> None:
        """The error boundary (api/boundary.py)."""
        try:
            limited = exchange.receive = within_limit(receive, self.boundary.limit(scope))
            await self._limited(scope, limited, exchange)
        except ClientDisconnect:
            return  # the client left mid-body: no one to answer, nothing went wrong here
        except Exception as exc:
            if exchange.started:
                raise
            await self.boundary.answer(exc, exchange.request_id)(scope, receive, exchange.send_outer)

    async def _limited(self, scope: Scope, receive: Receive, exchange: _Exchange) -> None:
        """The limits' check around the idempotency claim, the gate, then the framework."""
        pending = exchange.pending = await self.limits.begin(scope)
        try:
            claimed = await self.guard.claim(scope, receive, exchange.send)
            if claimed is None:  # a replay, answered
                return
            claim, receive = claimed
            exchange.claim = claim
            try:
                refused = await pending.gate() if pending is not None else None
                if refused is not None:
                    await refusal(refused, scope)(scope, receive, exchange.send)
                    return
                await self._route(scope, receive, exchange)
            finally:
                if claim is not None:  # the app failed before it answered
                    await IdempotencyGuard.release(scope, claim)
        finally:
            if pending is not None:
                pending.done()

    async def _route(self, scope: Scope, receive: Receive, exchange: _Exchange) -> None:
        """A lean route (api/lean.py) is run from here, its exceptions rendered by the app's handlers
        as the framework's ExceptionMiddleware renders them; every other request goes through the
        framework (that middleware, then the router, which takes the route found here)."""
        found = self.index.match(scope) if self.index is not None else None
        if found is None or not getattr(found[0], "edge_ready", False):
            if found is not None:
                scope[FOUND] = found
            await self.app(scope, receive, exchange.send)
            return
        route, child_scope = found
        self.index.enter(scope, child_scope)  # type: ignore[union-attr]  # found: the index is there
        try:
            await route.app(scope, receive, exchange.send)
        except Exception as exc:
            handler = self._handler(exc)
            if handler is None:
                raise  # to the boundary
            if exchange.started:
                raise RuntimeError("Caught handled exception, but response already started.") from exc
            response = await handler(Request(scope, receive), exc)
            if response is not None:
                await response(scope, receive, exchange.send)
            exc.__traceback__ = None  # as Starlette: a reused exception instance keeps no traceback

    def _handler(self, exc: Exception) -> Any:
        """Starlette's choice of handler: the status code's for an HTTPException, else the nearest
        class's along the exception's MRO."""
        if isinstance(exc, HTTPException):
            handler = self.status_handlers.get(exc.status_code)
            if handler is not None:
                return handler
        for cls in type(exc).__mro__:
            if cls in self.handlers:
                return self.handlers[cls]
        return None


# What FastAPI puts outside the app's own middleware, none of which does anything for this app
# unless FastAPI's native telemetry is on: ServerErrorMiddleware answers exceptions that escape the
# edge, which re-raises only once the answer has started (it then re-raises too); the telemetry's
# exception hook records nothing without it; the app-wide body limit is unset (the boundary's hold).
_OUTER = ["ServerErrorMiddleware", "ExceptionTelemetryMiddleware", "AppBodyLimitMiddleware"]


def install_edge(app: FastAPI, *, max_body_bytes: int, max_webhook_body_bytes: int, telemetry: bool) -> None:
    """The edge as the app's one middleware and, unless `telemetry`, its outermost layer: FastAPI's
    three outer layers (`_OUTER`) are three more coroutine frames and a send wrapper on every
    request (bench/README.md, issue #15)."""
    app.add_middleware(Edge, max_body_bytes=max_body_bytes, max_webhook_body_bytes=max_webhook_body_bytes)
    build = app.build_middleware_stack

    def build_from_the_edge() -> ASGIApp:
        stack = build()
        layer: Any = stack
        outer = []
        while layer is not None and not isinstance(layer, Edge):
            outer.append(type(layer).__name__)
            layer = getattr(layer, "app", None)
        if layer is None:
            return stack
        edge: Edge = layer
        index = app.router.middleware_stack
        below = edge.app
        if isinstance(index, RouteIndex) and isinstance(below, ExceptionMiddleware):
            edge.index = index
            edge.handlers = below._exception_handlers
            edge.status_handlers = below._status_handlers
        return stack if telemetry or outer != _OUTER else edge

    app.build_middleware_stack = build_from_the_edge  # type: ignore[method-assign]
