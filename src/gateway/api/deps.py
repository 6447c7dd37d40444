"""Annotated dependencies every router shares."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import structlog
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.context import AppContext
from gateway.errors import AuthenticationError
from gateway.merchants.service import Principal


async def _ctx(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


Ctx = Annotated[AppContext, Depends(_ctx)]


async def _session(ctx: Ctx) -> AsyncIterator[AsyncSession]:
    # Services commit what they mean to keep; anything left open is rolled back here.
    async with ctx.sessionmaker() as session:
        yield session


Session = Annotated[AsyncSession, Depends(_session)]

_bearer = HTTPBearer(auto_error=False, description="Your secret key: `sk_test_…` or `sk_live_…`")


async def _principal(
    ctx: Ctx, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise AuthenticationError(
            "Send your secret key as `Authorization: Bearer sk_test_…`.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    principal = await ctx.authenticator.authenticate(credentials.credentials)
    structlog.contextvars.bind_contextvars(merchant_id=principal.merchant_id)
    return principal


CurrentPrincipal = Annotated[Principal, Depends(_principal)]
