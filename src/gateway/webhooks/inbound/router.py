"""POST /v1/webhooks/{provider}: raw bytes in, verified, stored, acknowledged; processed after the reply."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from starlette.background import BackgroundTask
from starlette.responses import Response

from gateway.api.deps import Ctx
from gateway.api.lean import LeanRoute
from gateway.api.responses import JSONBytes
from gateway.api.schemas import error_responses
from gateway.context import AppContext
from gateway.kit.ids import is_valid
from gateway.providers.base import CALLBACK_TOKEN_HEADER
from gateway.webhooks.inbound import service

ProviderName = Annotated[str, Path(max_length=32)]
# A callback token, or (where it starts with acct_) a merchant's provider account.
PathSegment = Annotated[str, Path(max_length=200)]
AccountId = Annotated[str, Path(max_length=40)]

# On LeanRoute: every asynchronous payment's completion comes through here (bench/README.md, #15).
router = APIRouter(prefix="/webhooks", tags=["webhooks"], route_class=LeanRoute)


async def _process_all(ctx: AppContext, inbox_ids: list[str]) -> None:
    for inbox_id in inbox_ids:
        await service.process(ctx.db, ctx.registry, inbox_id)


def _headers(request: Request, token: str | None) -> dict[str, str]:
    headers = {k: v for k, v in request.headers.items() if k != CALLBACK_TOKEN_HEADER}
    if token is not None:
        headers[CALLBACK_TOKEN_HEADER] = token
    return headers


def _account_or_token(segment: str) -> tuple[str | None, str | None]:
    """/v1/webhooks/{provider}/{segment}: a merchant's account id (acct_…), or the deployment's
    callback token (which may never look like one: providers/config.path_token)."""
    return (segment, None) if is_valid(segment, "acct") else (None, segment)


async def _receive(
    provider: str,
    token: str | None,
    request: Request,
    ctx: Ctx,
    account_id: str | None = None,
) -> Response:
    body = await request.body()
    stored, ack = await service.receive(
        ctx.db, ctx.registry, provider, _headers(request, token), body, account_id
    )
    # Processed after the answer has left (the hints: the signed are applied before it).
    later = BackgroundTask(_process_all, ctx, stored) if stored else None
    return JSONBytes(ack, background=later)


@router.post(
    "/{provider}",
    operation_id="receive_provider_webhook",
    summary="Receive a payment provider's webhook",
    responses=error_responses(400, 401, 404),
)
async def receive_provider_webhook(
    provider: ProviderName,
    request: Request,
    ctx: Ctx,
) -> Response:
    return await _receive(provider, None, request, ctx)


@router.post(
    "/{provider}/{token}",
    operation_id="receive_provider_callback",
    summary="Receive a merchant account's webhook (/{provider}/{account_id}), or a callback whose URL "
    "carries the deployment's secret token (M-Pesa, MTN MoMo: they sign nothing)",
    responses=error_responses(400, 401, 404),
)
async def receive_provider_callback(
    provider: ProviderName,
    token: PathSegment,
    request: Request,
    ctx: Ctx,
) -> Response:
    account_id, path_token = _account_or_token(token)
    return await _receive(provider, path_token, request, ctx, account_id)


@router.put(
    "/{provider}/{token}",
    operation_id="receive_provider_callback_put",
    summary="The same, for providers that call back with PUT (MTN MoMo)",
    responses=error_responses(400, 401, 404),
)
async def receive_provider_callback_put(
    provider: ProviderName,
    token: PathSegment,
    request: Request,
    ctx: Ctx,
) -> Response:
    account_id, path_token = _account_or_token(token)
    return await _receive(provider, path_token, request, ctx, account_id)


@router.post(
    "/{provider}/{account_id}/{token}",
    operation_id="receive_account_callback",
    summary="Receive a callback for a merchant's own account whose URL carries its secret token "
    "(M-Pesa, MTN MoMo)",
    responses=error_responses(400, 401, 404),
)
async def receive_account_callback(
    provider: ProviderName,
    account_id: AccountId,
    token: PathSegment,
    request: Request,
    ctx: Ctx,
) -> Response:
    return await _receive(provider, token, request, ctx, account_id)


@router.put(
    "/{provider}/{account_id}/{token}",
    operation_id="receive_account_callback_put",
    summary="The same, for providers that call back with PUT (MTN MoMo)",
    responses=error_responses(400, 401, 404),
)
async def receive_account_callback_put(
    provider: ProviderName,
    account_id: AccountId,
    token: PathSegment,
    request: Request,
    ctx: Ctx,
) -> Response:
    return await _receive(provider, token, request, ctx, account_id)
