"""The Idempotency-Key dependency (IETF draft semantics, Stripe's behaviour).

Redis is the fast path: SET NX claims the key, a finished request's status and body are replayed
byte for byte. PostgreSQL is the guarantee: the rows a request creates carry (merchant, key) under a
unique constraint, and services consult them, so a flushed or absent Redis never doubles money.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated

import structlog
from fastapi import Depends, Header, Request
from redis.exceptions import RedisError
from starlette.responses import Response

from gateway.api.deps import CurrentPrincipal
from gateway.context import AppContext
from gateway.errors import (
    IdempotencyKeyInUse,
    IdempotencyKeyInvalid,
    IdempotencyKeyMissing,
    IdempotencyKeyReused,
)
from gateway.idempotency.middleware import REPLAYED_HEADER, STATE_KEY, Claim
from gateway.idempotency.store import IdempotencyStore, redis_key, valid_key
from gateway.idempotency.store import fingerprint as request_fingerprint
from gateway.merchants.service import Principal

log = structlog.get_logger("gateway.idempotency")


class IdempotentReplay(Exception):
    """Short-circuits the endpoint with the stored response."""

    def __init__(self, response: Response):
        self.response = response


@dataclass
class Idempotency:
    key: str | None
    fingerprint: str
    _store: IdempotencyStore | None = None
    _redis_key: str | None = None
    stored: bool = field(default=False)

    async def respond(self, status: int, body: bytes, media_type: str = "application/json") -> Response:
        """Stores the result (if we hold the key) and returns it as the response."""
        if self._store is not None and self._redis_key is not None:
            try:
                await self._store.complete(self._redis_key, self.fingerprint, status, body, media_type)
                self.stored = True
            except RedisError as e:
                log.warning("idempotency_store_failed", error=type(e).__name__)
        return Response(body, status_code=status, media_type=media_type)


async def _guard(
    request: Request, principal: Principal, key: str | None, required: bool
) -> AsyncIterator[Idempotency]:
    if key is None:
        if required:
            raise IdempotencyKeyMissing(
                "Send an Idempotency-Key header (1-255 characters, e.g. a UUID) with every request "
                "that creates or moves money."
            )
        yield Idempotency(key=None, fingerprint="")
        return
    if not valid_key(key):
        raise IdempotencyKeyInvalid("The Idempotency-Key must be 1-255 printable ASCII characters.")
    ctx: AppContext = request.app.state.ctx
    store = ctx.idempotency
    rkey = redis_key(principal.merchant_id, principal.livemode, key)
    claim: Claim | None = request.scope.get("state", {}).get(STATE_KEY)
    if claim is not None and claim.redis_key == rkey:
        # The middleware claimed this key for this request: take the claim over.
        claim.taken = True
        fingerprint, existing, redis_down = claim.fingerprint, claim.existing, claim.redis_down
    else:
        fingerprint = request_fingerprint(request.method, request.url.path, await request.body())
        try:
            existing, redis_down = await store.claim(rkey, fingerprint), False
        except RedisError as e:
            log.warning("idempotency_redis_unavailable", error=type(e).__name__)
            existing, redis_down = None, True
    if redis_down:
        # Redis down: go on without the fast path; the database's unique key still holds the line.
        yield Idempotency(key=key, fingerprint=fingerprint)
        return
    if existing is not None:
        if existing.fingerprint != fingerprint:
            raise IdempotencyKeyReused(
                "This Idempotency-Key was already used with a different request; use a new key."
            )
        if not existing.done:
            raise IdempotencyKeyInUse(
                "A request with this Idempotency-Key is still being processed; retry shortly.",
                headers={"Retry-After": "1"},
            )
        response = Response(existing.body, status_code=existing.status, media_type=existing.media_type)
        response.headers[REPLAYED_HEADER] = "true"
        raise IdempotentReplay(response)

    idem = Idempotency(key=key, fingerprint=fingerprint, _store=store, _redis_key=rkey)
    try:
        yield idem
    finally:
        if not idem.stored:
            # Validation failures, outages and crashes are not stored: the client may retry the key.
            try:
                await store.release(rkey)
            except RedisError as e:
                log.warning("idempotency_release_failed", error=type(e).__name__)


async def _required(
    request: Request,
    principal: CurrentPrincipal,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> AsyncIterator[Idempotency]:
    async for idem in _guard(request, principal, idempotency_key, required=True):
        yield idem


async def _optional(
    request: Request,
    principal: CurrentPrincipal,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> AsyncIterator[Idempotency]:
    async for idem in _guard(request, principal, idempotency_key, required=False):
        yield idem


# scope="function": the key is released or stored before the response leaves, never after.
RequiredIdempotency = Annotated[Idempotency, Depends(_required, scope="function")]
OptionalIdempotency = Annotated[Idempotency, Depends(_optional, scope="function")]
