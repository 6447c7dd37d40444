"""GET /v1/providers: what each provider can do, whether it is configured in the caller's mode, and
the caller's own account with it."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.responses import Response

from gateway.api.deps import Ctx, PaymentsRead
from gateway.api.responses import json_response
from gateway.api.routing import GatewayRoute
from gateway.api.schemas import error_responses
from gateway.provider_accounts.service import account_ids

router = APIRouter(tags=["providers"], route_class=GatewayRoute)


class ProviderOut(BaseModel):
    name: str
    object: Literal["provider"] = "provider"
    configured: bool
    account: str | None = Field(
        description="Your own account with this provider in this mode (`acct_…`), or null: "
        "PUT /v1/provider-accounts/{provider} sets one"
    )
    currencies: list[str]
    flows: list[str]
    refunds: bool
    partial_refunds: bool
    cancel: bool


class ProviderList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ProviderOut]
    has_more: bool = False


@router.get(
    "/providers",
    operation_id="list_providers",
    response_model=ProviderList,
    summary="Every provider: usable by you in your mode or not (your own account, or the deployment's "
    "where accounts are shared), currencies, flows, refunds",
    responses=error_responses(401),
)
async def list_providers(ctx: Ctx, principal: PaymentsRead) -> Response:
    data = []
    own = await account_ids(ctx.db, merchant_id=principal.merchant_id, livemode=principal.livemode)
    for name in ctx.registry.names():
        p = ctx.registry.get(name)
        assert p is not None
        caps = p.capabilities
        data.append(
            ProviderOut(
                name=name,
                # Usable by this merchant in this mode: its own account, or the deployment's if shared.
                configured=ctx.registry.configured(name, principal.livemode, own.get(name)),
                account=own.get(name),
                currencies=sorted(caps.currencies),
                flows=sorted(caps.flows),
                refunds=caps.refunds,
                partial_refunds=caps.partial_refunds,
                cancel=caps.cancel,
            )
        )
    return json_response(ProviderList(data=data))
