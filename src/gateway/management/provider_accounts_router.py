"""The merchant's own provider accounts: PUT (create or replace), GET, list, DELETE, in the key's mode."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.exceptions import RequestValidationError
from starlette.responses import Response

from gateway.api.deps import Ctx, ProviderAccountsWrite
from gateway.api.responses import json_response
from gateway.api.routing import GatewayRoute
from gateway.api.schemas import error_responses
from gateway.provider_accounts import service
from gateway.provider_accounts.schemas import (
    ProviderAccountIn,
    ProviderAccountList,
    ProviderAccountOut,
    account_out,
)
from gateway.providers.account_schema import AccountInvalid

router = APIRouter(tags=["provider accounts"], route_class=GatewayRoute)
ProviderName = Annotated[
    str,
    Path(
        description="`stripe`, `paystack`, `flutterwave`, `mpesa`, `momo`, `wave`, `razorpay`", max_length=32
    ),
]


def _out(ctx: Ctx, shown: service.Shown) -> ProviderAccountOut:
    return account_out(shown.account, shown.webhook_url(ctx.settings.base_url))


@router.put(
    "/provider-accounts/{provider}",
    operation_id="put_provider_account",
    response_model=ProviderAccountOut,
    summary="Create or replace your account with a provider, in your key's mode",
    responses=error_responses(401, 409, 422),
)
async def put_provider_account(
    provider: ProviderName, body: ProviderAccountIn, ctx: Ctx, principal: ProviderAccountsWrite
) -> Response:
    try:
        shown = await service.put(
            ctx.db,
            ctx.settings.keyring(),
            ctx.broadcast,
            merchant_id=principal.merchant_id,
            livemode=principal.livemode,
            provider=provider,
            credentials=body.credentials,
            settings=body.settings,
        )
    except AccountInvalid as e:
        # The one renderer of validation errors (errors.py): 422 validation_error naming each field.
        raise RequestValidationError([{**err, "loc": ("body", *err["loc"])} for err in e.errors]) from None
    return json_response(_out(ctx, shown))


@router.get(
    "/provider-accounts",
    operation_id="list_provider_accounts",
    response_model=ProviderAccountList,
    summary="Your provider accounts in your key's mode",
    responses=error_responses(401, 409),
)
async def list_provider_accounts(ctx: Ctx, principal: ProviderAccountsWrite) -> Response:
    shown = await service.list_accounts(
        ctx.db, ctx.settings.keyring(), merchant_id=principal.merchant_id, livemode=principal.livemode
    )
    return json_response(ProviderAccountList(data=[_out(ctx, s) for s in shown]))


@router.get(
    "/provider-accounts/{provider}",
    operation_id="retrieve_provider_account",
    response_model=ProviderAccountOut,
    summary="Your account with a provider",
    responses=error_responses(401, 404, 409, 422),
)
async def retrieve_provider_account(
    provider: ProviderName, ctx: Ctx, principal: ProviderAccountsWrite
) -> Response:
    shown = await service.get(
        ctx.db,
        ctx.settings.keyring(),
        merchant_id=principal.merchant_id,
        livemode=principal.livemode,
        provider=provider,
    )
    return json_response(_out(ctx, shown))


@router.delete(
    "/provider-accounts/{provider}",
    operation_id="delete_provider_account",
    response_model=ProviderAccountOut,
    summary="Stop using your account with a provider (payments made through it still sync and refund)",
    responses=error_responses(401, 404, 409, 422),
)
async def delete_provider_account(
    provider: ProviderName, ctx: Ctx, principal: ProviderAccountsWrite
) -> Response:
    shown = await service.delete(
        ctx.db,
        ctx.settings.keyring(),
        ctx.broadcast,
        merchant_id=principal.merchant_id,
        livemode=principal.livemode,
        provider=provider,
    )
    return json_response(_out(ctx, shown))
