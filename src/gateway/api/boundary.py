"""`ErrorBoundary`: whatever happens below it, the client gets an answer it can act on.

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


class ErrorBoundary:
    def __init__(self, app: ASGIApp, max_body_bytes: int, max_webhook_body_bytes: int):
        self.app = app
        self.max_body = max_body_bytes
        self.max_webhook_body = max_webhook_body_bytes
        self._outages = OutageLog()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_webhook_body if scope["path"].startswith(WEBHOOK_PREFIX) else self.max_body
        started = False
        received = 0

        async def send_noting_start(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        async def receive_within_limit() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _too_large(limit)
            return message

        try:
            declared = _content_length(scope)
            if declared is not None and declared > limit:
                raise _too_large(limit)
            await self.app(scope, receive_within_limit, send_noting_start)
        except ClientDisconnect:
            return  # the client left mid-body: no one to answer, nothing went wrong here
        except Exception as exc:
            if started:
                raise
            request_id = scope.get("state", {}).get("request_id")
            await self._answer(exc, request_id)(scope, receive, send)

    def _answer(self, exc: Exception, request_id: str | None) -> Response:
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


def _too_large(limit: int) -> PayloadTooLarge:
    # The connection stays open: uvicorn discards the rest of the body as it arrives, without
    # holding it (closing instead would reset the socket under a client still sending).
    return PayloadTooLarge(f"The body is larger than {limit} bytes.", limit=limit)
