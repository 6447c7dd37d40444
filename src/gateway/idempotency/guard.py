"""Idempotency-Key, in one place (the IETF draft's semantics, Stripe's behaviour).

`IdempotencyGuard`, run by the app's edge before routing, owns the key's life: it claims the key
in Redis before the framework runs (one round trip: SET NX, or what the key holds), answers a
finished request's replay itself with the stored bytes, and releases a claim whose request stored
nothing (a validation failure, an outage, a crash) before that answer leaves, so the client may
retry at once. Routes see
the key through a typed view, `IdempotencyKey` (RequiredIdempotency / OptionalIdempotency), which
raises what is wrong with it and stores the route's answer.

Redis is the fast path; PostgreSQL is the guarantee: the rows a request creates carry (merchant,
key) under a unique constraint, and services answer a retry from them when Redis was flushed or
down (`respond(..., replayed=True)`), so no money moves twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import structlog
from fastapi import Depends, Header, Request
from fastapi.routing import APIRoute
from redis.exceptions import RedisError
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from gateway.api.deps import PRINCIPAL_STATE, BearerPrincipal, CurrentPrincipal, access_of
from gateway.context import AppContext
from gateway.errors import (
    GatewayError,
    IdempotencyKeyInUse,
    IdempotencyKeyInvalid,
    IdempotencyKeyMissing,
    IdempotencyKeyReused,
)
from gateway.idempotency.store import IdempotencyStore, StoredResult, redis_key, valid_key
from gateway.idempotency.store import fingerprint as request_fingerprint
from gateway.merchants.service import Principal

log = structlog.get_logger("gateway.idempotency")

REPLAYED_HEADER = "Idempotent-Replayed"
_STATE_KEY = "idempotency_claim"
_MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass
class Claim:
    """What the guard learnt about a request's key. `existing` None and `redis_down` False: the
    request holds the key, until its result is stored or the claim released."""

    key: str
    redis_key: str
    fingerprint: str
    existing: StoredResult | None
    redis_down: bool = False
    done: bool = False  # stored or released: nothing left to do

    @property
    def held(self) -> bool:
        return self.existing is None and not self.redis_down and not self.done


class IdempotencyGuard:
    """Run by the app's edge (gateway/edge.py) before routing: `claim`, then `release` when the
    answer starts or the app fails."""

    def __init__(self, prefix: str = "/v1/"):
        # The prefix the API's routers are included under (main.py), so a route's own path matches
        # what follows it.
        self.prefix = prefix
        self._routes: list[tuple[APIRoute, BearerPrincipal, bool]] | None = None

    async def claim(self, scope: Scope, receive: Receive, send: Send) -> tuple[Claim | None, Receive] | None:
        """Claims an HTTP request's key. None: it was a finished request's replay, answered through
        `send`; nothing is left to do. Else the claim (None: nothing claimed; a request that is not a
        mutating /v1 one with a key and a bearer, or whose key or scope is refused: its route says
        what is wrong) and the receive that hands the body to the app as if unread."""
        if scope["method"] not in _MUTATING or not scope["path"].startswith(self.prefix):
            return None, receive
        key = token = None
        for name, value in scope["headers"]:  # the first of each, as Starlette's headers.get
            if name == b"idempotency-key" and key is None:
                key = value.decode("latin-1")
            elif name == b"authorization" and token is None:
                token = value.decode("latin-1")
        scheme, _, secret = (token or "").partition(" ")
        if key is None or not valid_key(key) or scheme.lower() != "bearer" or not secret:
            return None, receive  # the route's dependencies say what is wrong
        ctx: AppContext = scope["app"].state.ctx
        # Resolved already by the rate limits (gateway.ratelimit), else here.
        principal: Principal | None = scope.get("state", {}).get(PRINCIPAL_STATE)
        if principal is None:
            try:
                principal = await ctx.authenticator.authenticate(secret.strip())
            except GatewayError:
                return None, receive  # 401 or 403, from the route's principal
        state = scope.setdefault("state", {})
        state[PRINCIPAL_STATE] = principal
        if not self._permitted(scope, principal):
            # The route refuses it (403 insufficient_scope) before it looks at the key. Claimed here,
            # the key would let a caller that may not do this hear a permitted caller's stored answer
            # (or learn that the key was used); so it claims nothing and its 403 is never stored.
            return None, receive

        body, receive = await _buffer(receive)
        claim = Claim(
            key=key,
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
            return None
        state[_STATE_KEY] = claim
        return claim, receive

    @staticmethod
    async def release(scope: Scope, claim: Claim) -> None:
        """Releases a claim the request still holds (it stored nothing: an error's answer, or the app
        failed), before that answer leaves, so the client may retry at once."""
        if claim.held:
            ctx: AppContext = scope["app"].state.ctx
            await _release(ctx.idempotency, claim)

    def _permitted(self, scope: Scope, principal: Principal) -> bool:
        """Whether the route this request reaches lets `principal` in (a full secret key: always,
        without looking; other principals are rare enough to pay for the route lookup)."""
        if principal.key_type == "secret" and principal.scopes is None:
            return True
        if self._routes is None:
            self._routes = _scoped_routes(scope["app"].routes)
        # A route of an included router has its own path, below the /v1 prefix; one on the app (as
        # main.py puts them, flat: api/dispatch.py), the whole path.
        full = scope["path"]
        below = full[len(self.prefix) - 1 :]
        method = scope["method"]
        for route, access, included in self._routes:
            if method in (route.methods or ()) and route.path_regex.match(below if included else full):
                return access.allows(principal)
        return False  # no such route: the app answers 404 or 405, nothing to claim


def _scoped_routes(routes: list[Any], included: bool = False) -> list[tuple[APIRoute, BearerPrincipal, bool]]:
    """Every mutating API route with its principal's check, and whether it came from an included
    router (included routers' routes too: FastAPI keeps an included router whole)."""
    found: list[tuple[APIRoute, BearerPrincipal, bool]] = []
    for route in routes:
        router = getattr(route, "original_router", None)
        if router is not None:
            found += _scoped_routes(router.routes, included=True)
        elif isinstance(route, APIRoute) and (route.methods or set()) & _MUTATING:
            access = access_of(route)
            if access is not None:
                found.append((route, access, included))
    return found


async def _release(store: IdempotencyStore, claim: Claim) -> None:
    claim.done = True
    try:
        await store.release(claim.redis_key)
    except RedisError as e:
        log.warning("idempotency_release_failed", error=type(e).__name__)


async def _buffer(receive: Receive) -> tuple[bytes, Receive]:
    """Reads the whole body, and a receive that hands it to the app as if unread."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client left: a cut body must not be claimed
            raise ClientDisconnect
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


@dataclass
class IdempotencyKey:
    """The request's key as a route sees it (`key` None: the route takes none and none was sent)."""

    key: str | None
    fingerprint: str
    _claim: Claim | None = None
    _store: IdempotencyStore | None = None

    async def respond(
        self,
        status: int,
        body: bytes,
        media_type: str = "application/json",
        *,
        replayed: bool = False,
        replay_body: bytes | None = None,
    ) -> Response:
        """The route's answer, stored under the key (when this request holds it) for replays.
        `replayed`: the answer repeats an earlier request's, found in PostgreSQL. `replay_body`: what
        replays get instead of `body`, when the answer shows something only once (a new API key)."""
        claim = self._claim
        if claim is not None and claim.held and self._store is not None:
            claim.done = True
            stored = body if replay_body is None else replay_body
            try:
                await self._store.complete(claim.redis_key, claim.fingerprint, status, stored, media_type)
            except RedisError as e:
                log.warning("idempotency_store_failed", error=type(e).__name__)
                await _release(self._store, claim)
        response = Response(body, status_code=status, media_type=media_type)
        if replayed:
            response.headers[REPLAYED_HEADER] = "true"
        return response


async def _view(request: Request, key: str | None, required: bool) -> IdempotencyKey:
    if key is None:
        if required:
            raise IdempotencyKeyMissing(
                "Send an Idempotency-Key header (1-255 characters, e.g. a UUID) with every request "
                "that creates or moves money."
            )
        return IdempotencyKey(key=None, fingerprint="")
    if not valid_key(key):
        raise IdempotencyKeyInvalid("The Idempotency-Key must be 1-255 printable ASCII characters.")
    claim: Claim | None = request.scope.get("state", {}).get(_STATE_KEY)
    if claim is None or claim.key != key:
        # Not claimed (an app built without the guard): no fast path, the database still holds.
        body = await request.body()
        return IdempotencyKey(
            key=key, fingerprint=request_fingerprint(request.method, request.url.path, body)
        )
    existing = claim.existing
    if existing is not None:
        if existing.fingerprint != claim.fingerprint:
            raise IdempotencyKeyReused(
                "This Idempotency-Key was already used with a different request; use a new key."
            )
        raise IdempotencyKeyInUse(
            "A request with this Idempotency-Key is still being processed; retry shortly.",
            headers={"Retry-After": "1"},
        )
    ctx: AppContext = request.app.state.ctx
    # Redis down: no fast path; the database's unique key still holds the line.
    return IdempotencyKey(key=key, fingerprint=claim.fingerprint, _claim=claim, _store=ctx.idempotency)


async def _required(
    request: Request,
    principal: CurrentPrincipal,  # 401 before anything about the key
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> IdempotencyKey:
    return await _view(request, idempotency_key, required=True)


async def _optional(
    request: Request,
    principal: CurrentPrincipal,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> IdempotencyKey:
    return await _view(request, idempotency_key, required=False)


RequiredIdempotency = Annotated[IdempotencyKey, Depends(_required)]
OptionalIdempotency = Annotated[IdempotencyKey, Depends(_optional)]


def requires_idempotency_key(route: APIRoute) -> bool:
    """The route takes RequiredIdempotency (for the OpenAPI document: the header is required there)."""
    pending = list(route.dependant.dependencies)
    while pending:
        dep = pending.pop()
        if dep.call is _required:
            return True
        pending.extend(dep.dependencies)
    return False
