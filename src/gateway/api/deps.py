"""Annotated dependencies every router shares."""

from __future__ import annotations

from typing import Annotated

import structlog
from fastapi import Depends, Request
from fastapi.security import HTTPBearer

from gateway.context import AppContext
from gateway.errors import AuthenticationError
from gateway.merchants.service import Principal


async def _ctx(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


Ctx = Annotated[AppContext, Depends(_ctx)]


# Where a middleware that resolved the request's key leaves the principal, so it is looked up once.
PRINCIPAL_STATE = "principal"


class _BearerPrincipal(HTTPBearer):
    """The caller's principal from `Authorization: Bearer sk_…`.

    A security scheme itself (so OpenAPI shows the bearer scheme) that also does the lookup: one
    dependency instead of a scheme, a context and a resolver, which FastAPI solves on every request."""

    async def __call__(self, request: Request) -> Principal:  # type: ignore[override]
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise AuthenticationError(
                "Send your secret key as `Authorization: Bearer sk_test_…`.",
                headers={"WWW-Authenticate": "Bearer"},
            )
        principal: Principal | None = request.scope.get("state", {}).get(PRINCIPAL_STATE)
        if principal is None:  # the idempotency guard has not already resolved this request's key
            ctx: AppContext = request.app.state.ctx
            principal = await ctx.authenticator.authenticate(token.strip())
        structlog.contextvars.bind_contextvars(merchant_id=principal.merchant_id)
        return principal


CurrentPrincipal = Annotated[
    Principal,
    Depends(
        _BearerPrincipal(
            auto_error=False,
            scheme_name="HTTPBearer",
            description="Your secret key: `sk_test_…` or `sk_live_…`",
        )
    ),
]
