"""The merchant's routing rules: PUT replaces the ordered list, GET reads it, in the key's mode."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from gateway.api.deps import Ctx, ProviderAccountsWrite
from gateway.api.responses import json_response
from gateway.api.routing import GatewayRoute
from gateway.api.schemas import error_responses
from gateway.management.routing_rules_schemas import RoutingRules, RoutingRulesIn, rules_out
from gateway.routing_rules import service

router = APIRouter(tags=["routing rules"], route_class=GatewayRoute)


@router.put(
    "/routing-rules",
    operation_id="put_routing_rules",
    response_model=RoutingRules,
    summary='Replace your ordered routing rules (for payments made with provider "auto")',
    responses=error_responses(401, 403, 422),
)
async def put_routing_rules(body: RoutingRulesIn, ctx: Ctx, principal: ProviderAccountsWrite) -> Response:
    rows = await service.replace(
        ctx.db,
        ctx.registry,
        merchant_id=principal.merchant_id,
        livemode=principal.livemode,
        drafts=[rule.draft() for rule in body.rules],
    )
    return json_response(rules_out(principal.livemode, rows))


@router.get(
    "/routing-rules",
    operation_id="get_routing_rules",
    response_model=RoutingRules,
    summary="Your routing rules in your key's mode, in the order they are tried",
    responses=error_responses(401, 403),
)
async def get_routing_rules(ctx: Ctx, principal: ProviderAccountsWrite) -> Response:
    rows = await service.rules_of(ctx.db, principal.merchant_id, principal.livemode)
    return json_response(rules_out(principal.livemode, rows))
