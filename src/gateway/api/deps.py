"""Annotated dependencies every router shares."""

from __future__ import annotations

from typing import Annotated, Any

import structlog
from fastapi import Depends, Request
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer
from starlette.datastructures import QueryParams

from gateway.context import AppContext
from gateway.errors import AuthenticationError, InsufficientScope
from gateway.merchants import scopes
from gateway.merchants.service import Principal


async def _ctx(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


Ctx = Annotated[AppContext, Depends(_ctx)]


# Where a middleware that resolved the request's key leaves the principal, so it is looked up once.
PRINCIPAL_STATE = "principal"

# Browsers cannot send headers on a WebSocket or an EventSource: their publishable key rides in the
# query of the live streams (`?key=pk_…&client_secret=…`). No other key is ever taken from a URL.
QUERY_KEY = "key"


def query_key(query: QueryParams | str) -> str | None:
    """The key a browser sent in the query, if any (the caller checks it is a publishable one)."""
    params = QueryParams(query) if isinstance(query, str) else query
    return params.get(QUERY_KEY) or None


_PUBLISHABLE_REFUSAL = (
    "A publishable key may only confirm and read a payment with its client secret (in a browser); "
    "call this with a secret key"
)


class BearerPrincipal(HTTPBearer):
    """The caller's principal from `Authorization: Bearer <key or access token>`, allowed to do
    `scope` (None: only a secret key, or an access token made from one and not narrowed, may).

    A security scheme itself (so OpenAPI shows the bearer scheme) that also does the lookup: one
    dependency instead of a scheme, a context and a resolver, which FastAPI solves on every request
    (and LeanRoute calls directly: the scope check is two attribute reads)."""

    def __init__(self, scope: str | None, *, publishable: bool = False, check: bool = True):
        super().__init__(
            auto_error=False,
            scheme_name="HTTPBearer",
            description="Your secret key (`sk_test_…`), a restricted key (`rk_test_…`) or an access token",
        )
        self.scope = scope
        self.publishable = publishable
        self.check = check

    async def __call__(self, request: Request) -> Principal:  # type: ignore[override]
        state = request.scope.setdefault("state", {})
        principal: Principal | None = state.get(PRINCIPAL_STATE)
        if principal is None:  # no middleware (idempotency, rate limits) resolved this request's key
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not token:
                raise AuthenticationError(
                    "Send your secret key as `Authorization: Bearer sk_test_…`.",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            ctx: AppContext = request.app.state.ctx
            principal = await ctx.authenticator.authenticate(token.strip())
            state[PRINCIPAL_STATE] = principal
        structlog.contextvars.bind_contextvars(merchant_id=principal.merchant_id)
        if self.check and not self.allows(principal):
            raise self.refusal(principal)
        return principal

    def allows(self, principal: Principal) -> bool:
        if principal.key_type == "publishable":
            return self.publishable
        if principal.scopes is None:  # a secret key, or its token not narrowed
            return True
        return self.scope is not None and self.scope in principal.scopes

    def refusal(self, principal: Principal) -> InsufficientScope:
        if principal.key_type == "publishable":
            needed = f" or a restricted key with the `{self.scope}` scope" if self.scope else ""
            return InsufficientScope(f"{_PUBLISHABLE_REFUSAL}{needed}.", required_scope=self.scope)
        if self.scope is None:
            return InsufficientScope(
                "Only a secret key (or an access token made from one, not narrowed) may do this.",
                required_scope=None,
            )
        return InsufficientScope(
            f"This key may not do this: it needs the `{self.scope}` scope.", required_scope=self.scope
        )


def Scoped(scope: str | None, *, publishable: bool = False) -> Any:
    """`Annotated[Principal, Scoped("payments:write")]`: the caller, refused with 403
    insufficient_scope unless it may do `scope` (None: a secret key only). `publishable=True` lets
    publishable keys in too (only routes a browser may call: confirm and read with a client secret)."""
    return Depends(BearerPrincipal(scope, publishable=publishable))


def access_of(route: APIRoute) -> BearerPrincipal | None:
    """The scope check a route's principal goes through (for the idempotency guard)."""
    for dep in route.dependant.dependencies:
        if isinstance(dep.call, BearerPrincipal) and dep.call.check:
            return dep.call
    return None


# Any authenticated caller, no scope checked: plumbing that runs beside a route's own Scoped
# principal (the idempotency key's dependency), never a route's only principal.
CurrentPrincipal = Annotated[Principal, Depends(BearerPrincipal(None, publishable=True, check=False))]

PaymentsRead = Annotated[Principal, Scoped(scopes.PAYMENTS_READ)]
PaymentsWrite = Annotated[Principal, Scoped(scopes.PAYMENTS_WRITE)]
# The two routes a browser may call with a publishable key and the payment's client secret.
PaymentsReadOrClient = Annotated[Principal, Scoped(scopes.PAYMENTS_READ, publishable=True)]
PaymentsConfirm = Annotated[Principal, Scoped(scopes.PAYMENTS_WRITE, publishable=True)]
RefundsWrite = Annotated[Principal, Scoped(scopes.REFUNDS_WRITE)]
EventsRead = Annotated[Principal, Scoped(scopes.EVENTS_READ)]
WebhooksWrite = Annotated[Principal, Scoped(scopes.WEBHOOKS_WRITE)]
ProviderAccountsWrite = Annotated[Principal, Scoped(scopes.PROVIDER_ACCOUNTS_WRITE)]
PayoutsRead = Annotated[Principal, Scoped(scopes.PAYOUTS_READ)]
PayoutsWrite = Annotated[Principal, Scoped(scopes.PAYOUTS_WRITE)]
# Key management: a secret key, or an access token made from one without narrowing.
SecretKey = Annotated[Principal, Scoped(None)]
