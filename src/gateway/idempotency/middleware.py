"""Claims a request's Idempotency-Key before the framework runs, and answers replays itself.

A replay is the commonest retry and the cheapest answer: the stored bytes. Found here, it costs one
Redis round trip and no routing, dependency solving or body parsing. Everything else goes on to the
app with the claim in the request's state: the idempotency dependency takes it over (and with it
the duty to store or release the key) instead of claiming again, and decides every error (a reused
key, a key in use, no key). A claim no dependency took over — a route without idempotency, a
request refused before its dependencies ran — is released here once the app has answered.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from redis.exceptions import RedisError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import GatewayError
from gateway.idempotency.store import StoredResult, redis_key, valid_key
from gateway.idempotency.store import fingerprint as request_fingerprint

log = structlog.get_logger("gateway.idempotency")

REPLAYED_HEADER = "Idempotent-Replayed"
STATE_KEY = "idempotency_claim"
_MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass
class Claim:
    """What the middleware learnt about a key: `existing` None with `redis_down` False means the
    request now holds the key."""

    redis_key: str
    fingerprint: str
    existing: StoredResult | None
    redis_down: bool = False
    taken: bool = False


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, prefix: str = "/v1/"):
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in _MUTATING
            or not scope["path"].startswith(self.prefix)
        ):
            await self.app(scope, receive, send)
            return
        key = token = None
        for name, value in scope["headers"]:
            if name == b"idempotency-key":
                key = value.decode("latin-1")
            elif name == b"authorization":
                token = value.decode("latin-1")
        scheme, _, secret = (token or "").partition(" ")
        if key is None or not valid_key(key) or scheme.lower() != "bearer" or not secret:
            await self.app(scope, receive, send)  # the dependency answers what is wrong
            return
        ctx = scope["app"].state.ctx
        try:
            principal = await ctx.authenticator.authenticate(secret.strip())
        except GatewayError:
            await self.app(scope, receive, send)
            return

        body, receive = await _buffer(receive)
        claim = Claim(
            redis_key=redis_key(principal.merchant_id, principal.livemode, key),
            fingerprint=request_fingerprint(scope["method"], scope["path"], body),
            existing=None,
        )
        try:
            claim.existing = await ctx.idempotency.claim(claim.redis_key, claim.fingerprint)
        except RedisError as e:
            log.warning("idempotency_redis_unavailable", error=type(e).__name__)
            claim.redis_down = True
        stored = claim.existing
        if stored is not None and stored.done and stored.fingerprint == claim.fingerprint:
            await _replay(stored, send)
            return

        scope.setdefault("state", {})[STATE_KEY] = claim
        try:
            await self.app(scope, receive, send)
        finally:
            if claim.existing is None and not claim.redis_down and not claim.taken:
                try:
                    await ctx.idempotency.release(claim.redis_key)
                except RedisError as e:
                    log.warning("idempotency_release_failed", error=type(e).__name__)


async def _buffer(receive: Receive) -> tuple[bytes, Receive]:
    """Reads the whole body, and a receive that hands it to the app as if unread."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    replayed = False

    async def again() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, again


async def _replay(stored: StoredResult, send: Send) -> None:
    headers = [
        (b"content-length", str(len(stored.body)).encode()),
        (b"content-type", stored.media_type.encode()),
        (REPLAYED_HEADER.lower().encode(), b"true"),
    ]
    await send({"type": "http.response.start", "status": stored.status, "headers": headers})
    await send({"type": "http.response.body", "body": stored.body})
