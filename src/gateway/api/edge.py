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

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.api.boundary import Boundary, within_limit
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
                await self.app(scope, receive, exchange.send)
            finally:
                if claim is not None:  # the app failed before it answered
                    await IdempotencyGuard.release(scope, claim)
        finally:
            if pending is not None:
                pending.done()
