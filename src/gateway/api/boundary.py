"""The error boundary: whatever happens below it, the client gets an answer it can act on. The app's
edge runs it (`Boundary`, gateway/edge.py); `ErrorBoundary` puts it around any other app.

- Bodies over the limit are refused with 413 `payload_too_large`: at once when Content-Length says
  so, else as soon as the bytes read pass it, so a 50 MB body is never held in memory.
- PostgreSQL or Redis unreachable, restarting or refusing connections: 503 `service_unavailable`
  with Retry-After, and one warning per service per interval instead of a traceback per request.
- Any other exception: 500 `internal_error`, logged with its traceback. The exception stops here
  (Starlette's outermost middleware would re-raise it after answering, and uvicorn then drops the
  keep-alive connection under the client's next request).

Only an error after the response has started cannot be answered: the server then closes the
connection, the one honest signal left.
"""

from __future__ import annotations

import time

import structlog
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import (
    GatewayError,
    PayloadTooLarge,
    ServiceUnavailable,
)
from gateway.outages import OUTAGE_RETRY_AFTER, outage_of
from gateway.problems import problem_response, render_gateway_error

log = structlog.get_logger("gateway.errors")
WEBHOOK_PREFIX = "/v1/webhooks/"
_WARN_EVERY = 10.0  # seconds between two warnings about the same service's outage


class OutageLog:
    """One warning per service per interval; the answers given meanwhile are counted in the next."""

    def __init__(
        self,
        event: str = "service_unavailable",
        counted_as: str = "answered_503_since_last_warning",
        logger: str = "gateway.errors",
    ) -> None:
        self._event, self._counted_as, self._logger = event, counted_as, logger
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def warn(self, service: str, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._last.get(service, -_WARN_EVERY) < _WARN_EVERY:
            self._suppressed[service] = self._suppressed.get(service, 0) + 1
            return
        self._last[service] = now
        # A logger of the current configuration (rare: at most one per service per interval).
        structlog.get_logger(self._logger).warning(
            self._event,
            service=service,
            error=type(exc).__name__,
            reason=str(exc)[:200],
            **{self._counted_as: self._suppressed.pop(service, 0)},
        )


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class Boundary:
    """What the boundary knows, for whichever layer runs it (the app's edge, gateway/edge.py, or
    `ErrorBoundary` around another app): the body limit of a path, a receive that keeps to it, and
    the answer to an exception."""

    def __init__(self, max_body_bytes: int, max_webhook_body_bytes: int):
        self.max_body = max_body_bytes
        self.max_webhook_body = max_webhook_body_bytes
        self._outages = OutageLog()

    def limit(self, scope: Scope) -> int:
        """The request's body limit; raises 413 at once when its Content-Length passes it."""
        limit = self.max_webhook_body if scope["path"].startswith(WEBHOOK_PREFIX) else self.max_body
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            raise _too_large(limit)
        return limit

    def answer(self, exc: Exception, request_id: str | None) -> Response:
        if isinstance(exc, GatewayError):
            return render_gateway_error(exc, request_id)
        service = outage_of(exc)
        if service is not None:
            self._outages.warn(service, exc)
            return render_gateway_error(
                ServiceUnavailable(
                    f"{'PostgreSQL' if service == 'postgres' else 'Redis'} is unavailable; nothing was "
                    "lost. Retry the request (with the same Idempotency-Key) after Retry-After seconds.",
                    headers={"Retry-After": OUTAGE_RETRY_AFTER},
                ),
                request_id,
            )
        log.error("unhandled_error", error_type=type(exc).__name__, exc_info=exc)
        return problem_response(
            status=500,
            code="internal_error",
            title="Internal error",
            detail="An unexpected error occurred; it has been logged.",
            request_id=request_id,
        )


def within_limit(receive: Receive, limit: int) -> Receive:
    """`receive`, raising 413 as soon as the bytes read pass `limit`."""
    received = 0

    async def receive_within_limit() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise _too_large(limit)
        return message

    return receive_within_limit


class ErrorBoundary(Boundary):
    """The boundary as a middleware of its own, for an app without the gateway's edge."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, max_webhook_body_bytes: int):
        super().__init__(max_body_bytes, max_webhook_body_bytes)
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_noting_start(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            limit = self.limit(scope)
            await self.app(scope, within_limit(receive, limit), send_noting_start)
        except ClientDisconnect:
            return  # the client left mid-body: no one to answer, nothing went wrong here
        except Exception as exc:
            if started:
                raise
            request_id = scope.get("state", {}).get("request_id")
            await self.answer(exc, request_id)(scope, receive, send)


def _too_large(limit: int) -> PayloadTooLarge:
    # The connection stays open: uvicorn discards the rest of the body as it arrives, without
    # holding it (closing instead would reset the socket under a client still sending).
    return PayloadTooLarge(f"The body is larger than {limit} bytes.", limit=limit)
