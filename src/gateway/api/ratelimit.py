"""Rate limits at the door of /v1 (docs/api.md, "Rate limits"; the counting: gateway/ratelimit.py).

Run by the app's edge (gateway/edge.py) around the idempotency guard, so that the limit and
the claim share one Redis round trip:

- `RateLimits.begin`, before the guard: resolves the caller's key once (the principal, left in the
  request's state for the guard and the routes), queues the limiter's check on the RedisBatcher and
  goes on without waiting for it. The check's `on_start` puts the RateLimit-* headers on the answer
  and counts a 401 as a failed authentication of the client's address.
- The guard queues its claim in the same event-loop turn: one pipeline carries both.
- The check's `gate`, after the guard, before routing: waits for the check and answers 429 when it
  refuses (the guard releases its claim before that answer leaves, as for any answer that stored
  nothing). A replay the guard answers itself never reaches the gate: `on_start` sends the 429 in
  its place.

A key that fails to authenticate is not answered here: the request goes on and its route answers
the 401 or 403 as always (one renderer, and only the routes know which credentials they take: the
admin token, Basic on /v1/oauth/token). Here the 401 is only counted.

WebSocket handshakes (/v1/payments/{id}/ws, /v1/events/ws) are limited as requests: a handshake
counts once against its key (or, without one, its address), whatever the socket does afterwards;
a refused handshake is the same 429 (a WebSocket denial response), an accepted one carries the
RateLimit-* headers, and a handshake refused with 401 counts as a failed authentication. Browsers
send their publishable key in the query (`key=pk_…`, they cannot send headers): it is the key
counted when there is no Authorization header.

Redis away: the check fails, the request goes on without RateLimit headers and the limits say so
in one warning per 10 s (payments must not stop because the limiter cannot count).
"""

from __future__ import annotations

from redis.exceptions import RedisError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.api.boundary import OutageLog
from gateway.api.deps import PRINCIPAL_STATE, query_key
from gateway.context import AppContext
from gateway.errors import GatewayError, RateLimited
from gateway.problems import render_gateway_error
from gateway.ratelimit import Check, Granted, Quota, RateLimiter

_DENIAL = "websocket.http.response"
WEBHOOKS = "/v1/webhooks/"
ADMIN = "/v1/admin"


class Pending:
    """A request's check, waited for once by whoever needs it first."""

    __slots__ = ("address", "check", "limiter", "outages", "quota", "refused", "waited")

    def __init__(self, check: Check | Granted, outages: OutageLog, limiter: RateLimiter, address: str):
        self.check, self.outages, self.limiter, self.address = check, outages, limiter, address
        # Granted here: known already (most requests), nothing to wait for.
        self.quota: Quota | None = check.quota if type(check) is Granted else None
        self.waited = self.quota is not None
        self.refused = False  # the gate answered the 429

    async def result(self) -> Quota | None:
        if not self.waited:
            self.waited = True
            try:
                self.quota = await self.check.result()
            except (RedisError, OSError) as e:  # fail open
                self.outages.warn("redis", e)
        return self.quota

    async def gate(self) -> Quota | None:
        """Before routing: the quota to refuse the request with (429), or None to go on."""
        quota = await self.result()
        if quota is not None and not quota.allowed:
            self.refused = True
            return quota
        return None

    async def on_start(self, status: int) -> tuple[list[tuple[bytes, bytes]], Quota | None]:
        """When the answer starts: the RateLimit-* headers to put on it, or the quota to refuse it
        with when the check said no to a request answered before the gate (a replay: the 429 is sent
        in its place). A 401 counts as a failed authentication of the client's address."""
        quota = await self.result()
        headers: list[tuple[bytes, bytes]] = []
        if quota is not None and not self.refused:
            if not quota.allowed:
                return headers, quota
            headers = quota.headers()
        if status == 401:
            self.limiter.count_failure(self.address)
        return headers, None

    def done(self) -> None:
        """The request is over: a check no one waited for (the app failed first) is forgotten."""
        if not self.waited:
            self.check.forget()


def limited(path: str) -> bool:
    """/v1 but the providers' webhooks; /healthz, /readyz, /docs, /openapi.json are not limited."""
    return path.startswith("/v1/") and not path.startswith(WEBHOOKS)


class RateLimits:
    """The limits at the door. For HTTP the edge (gateway/edge.py) calls `begin` before the
    idempotency claim, then the check's `gate` before routing and its `on_start` when the answer
    starts; `websocket` runs the same around a WebSocket handshake."""

    def __init__(self) -> None:
        self._outages = OutageLog(
            "rate_limits_unavailable", "let_through_since_last_warning", "gateway.ratelimit"
        )

    async def begin(self, scope: Scope) -> Pending | None:
        """Resolves the caller's key once (the principal, left in the request's state for the guard
        and the routes) and queues the limiter's check on the RedisBatcher without waiting for it.
        None: the request is not limited (not /v1, a provider's webhook, the limits off)."""
        path: str = scope["path"]
        if not limited(path):
            return None
        ctx: AppContext = scope["app"].state.ctx
        limiter = ctx.rate_limits
        if limiter is None:  # GATEWAY_RATE_LIMITS__ENABLED=false
            return None
        client = scope.get("client")
        address = client[0] if client else "unknown"
        state = scope.setdefault("state", {})
        if path == ADMIN or path.startswith(ADMIN + "/"):
            check = limiter.check(address, limiter.admin, "admin", address)
        else:
            principal = None
            header = _bearer(scope)
            secret = header or _query_key(scope)
            if secret:
                # A refused key: the route answers it, and its 401 is counted in on_start.
                try:
                    principal = await ctx.authenticator.authenticate(secret)
                except GatewayError:
                    principal = None
            if principal is None:
                check = limiter.check(address)
            else:
                if header:  # a query key is only counted: the routes that take one check it themselves
                    state[PRINCIPAL_STATE] = principal
                quota = limiter.per_key(principal.livemode, principal.rate_limit)
                check = limiter.check(address, quota, "key", principal.key_id)
        return Pending(check, self._outages, limiter, address)

    async def websocket(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        """A handshake counted as a request: refused with a 429 denial response (or a close, where
        the server cannot send one), the RateLimit-* headers on the accept, a 401 counted."""
        pending = await self.begin(scope)
        if pending is None:
            await app(scope, receive, send)
            return

        async def send_with_quota(message: Message) -> None:
            if message["type"] == "websocket.accept":
                quota = await pending.result()
                if quota is not None:
                    message["headers"] = [*message.get("headers", ()), *quota.headers()]
            elif message["type"] == "websocket.http.response.start" and message["status"] == 401:
                pending.limiter.count_failure(pending.address)  # a handshake refused for its key
            await send(message)

        try:
            refused = await pending.gate()
            if refused is None:
                await app(scope, receive, send_with_quota)
            elif _DENIAL not in scope.get("extensions", {}):
                await send_with_quota({"type": "websocket.close", "code": 1008, "reason": "rate_limited"})
            else:
                await refusal(refused, scope)(scope, receive, send_with_quota)  # its denial response
        finally:
            pending.done()


def refusal(quota: Quota, scope: Scope) -> ASGIApp:
    """The 429 for a refused check, with its Retry-After and RateLimit-* headers."""
    if quota.verdict == "failed_auth":
        detail = (
            f"Too many failed authentications from this address (limit {quota.limit} per {quota.window} s)"
        )
    else:
        detail = f"Too many requests (limit {quota.limit} per {quota.window} s)"
    detail += f"; retry after {quota.retry_after} s."
    response = render_gateway_error(
        RateLimited(detail, headers={"Retry-After": str(quota.retry_after)}),
        scope.get("state", {}).get("request_id"),
    )
    response.raw_headers.extend(quota.headers())
    return response


def _bearer(scope: Scope) -> str | None:
    for name, value in scope["headers"]:  # the first, as Starlette's headers.get
        if name == b"authorization":
            scheme, _, secret = value.decode("latin-1").partition(" ")
            return secret.strip() if scheme.lower() == "bearer" and secret.strip() else None
    return None


async def check_confirm(ctx: AppContext, payment_id: str, address: str, request_id: str | None) -> None:
    """Spends one confirm of the payment and one of the client's address (settings.rate_limits.
    confirm_per_payment, confirm_per_ip); raises 429 rate_limited when either is spent. Redis away:
    let through, as every limit (payments must not stop because the limiter cannot count)."""
    limiter = ctx.rate_limits
    if limiter is None:
        return
    checks = (
        limiter.check(address, limiter.confirm_per_payment, "confirm", payment_id),
        limiter.check(address, limiter.confirm_per_ip, "confirm_ip", address),
    )
    await _spend("confirms", checks)


async def check_link_open(ctx: AppContext, address: str) -> None:
    """Spends one of the address's payment link opens without a payment of its own yet
    (settings.rate_limits.link_opens_per_ip): each may make a payment row. 429 rate_limited."""
    limiter = ctx.rate_limits
    if limiter is not None:
        await _spend(
            "payment link opens", (limiter.check(address, limiter.link_opens_per_ip, "link_ip", address),)
        )


async def _spend(what: str, checks: tuple[Check | Granted, ...]) -> None:
    for check in checks:
        try:
            quota = await check.result()
        except (RedisError, OSError) as e:
            _CONFIRM_OUTAGES.warn("redis", e)
            continue
        if quota is not None and not quota.allowed:
            for other in checks:
                if other is not check:
                    other.forget()
            raise RateLimited(
                f"Too many {what} (limit {quota.limit} per {quota.window} s); "
                f"retry after {quota.retry_after} s.",
                headers={"Retry-After": str(quota.retry_after)},
            )


_CONFIRM_OUTAGES = OutageLog("rate_limits_unavailable", "let_through_since_last_warning", "gateway.ratelimit")


def _query_key(scope: Scope) -> str | None:
    """A browser's publishable key in the query (`key=pk_…`); no other key is taken from a URL."""
    query: bytes = scope.get("query_string", b"")
    if b"key=pk_" not in query:  # most requests: no parsing
        return None
    key = query_key(query.decode("latin-1"))
    return key if key is not None and key.startswith("pk_") else None
