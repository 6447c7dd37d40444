"""HTTP layer of payouts: /v1/payouts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from starlette.responses import Response

from gateway.api.deps import Ctx, PayoutsRead, PayoutsWrite
from gateway.api.pagination import Paging, Timestamp, checked_page, require_timezone
from gateway.api.responses import json_response
from gateway.api.routing import GatewayRoute
from gateway.api.schemas import error_responses
from gateway.idempotency.guard import RequiredIdempotency
from gateway.payouts.schemas import (
    PayoutCreate,
    PayoutFilters,
    PayoutList,
    PayoutOut,
    PayoutStatus,
    payout_out,
)
from gateway.payouts.service import PayoutService

router = APIRouter(prefix="/payouts", tags=["payouts"], route_class=GatewayRoute)

PayoutId = Annotated[str, Path(description="A payout id, `po_…`", max_length=40)]


async def _service(ctx: Ctx) -> PayoutService:
    return PayoutService(ctx.db, ctx.registry, ctx.settings.payouts)


Service = Annotated[PayoutService, Depends(_service)]


@router.post(
    "",
    operation_id="create_payout",
    status_code=201,
    response_model=PayoutOut,
    summary="Send money out through a rail (at most once)",
    responses=error_responses(400, 401, 403, 409, 422, 502),
)
async def create_payout(
    body: PayoutCreate, principal: PayoutsWrite, idem: RequiredIdempotency, service: Service
) -> Response:
    assert idem.key is not None
    payout, replayed = await service.create(
        principal, body, idempotency_key=idem.key, fingerprint=idem.fingerprint
    )
    return await idem.respond(201, payout_out(payout).model_dump_json().encode(), replayed=replayed)


@router.get(
    "/{payout_id}",
    operation_id="retrieve_payout",
    response_model=PayoutOut,
    summary="Retrieve a payout",
    responses=error_responses(401, 403, 404),
)
async def retrieve_payout(payout_id: PayoutId, principal: PayoutsRead, service: Service) -> Response:
    return json_response(payout_out(await service.get(principal, payout_id)))


@router.get(
    "",
    operation_id="list_payouts",
    response_model=PayoutList,
    summary="List payouts, newest first",
    responses=error_responses(401, 403, 422),
)
async def list_payouts(
    principal: PayoutsRead,
    service: Service,
    page: Paging,
    status: PayoutStatus | None = None,
    provider: Annotated[str | None, Query(max_length=32)] = None,
    created_gte: Timestamp | None = None,
    created_lt: Timestamp | None = None,
) -> Response:
    filters = PayoutFilters(
        status=status,
        provider=provider,
        created_gte=require_timezone("created_gte", created_gte),
        created_lt=require_timezone("created_lt", created_lt),
    )
    rows, has_more = await service.list(principal, filters, checked_page(page, "po"))
    return json_response(PayoutList(data=[payout_out(p) for p in rows], has_more=has_more))


@router.post(
    "/{payout_id}/cancel",
    operation_id="cancel_payout",
    response_model=PayoutOut,
    summary="Cancel a payout not yet submitted to its provider",
    responses=error_responses(400, 401, 403, 404, 409),
)
async def cancel_payout(
    payout_id: PayoutId, principal: PayoutsWrite, idem: RequiredIdempotency, service: Service
) -> Response:
    payout = await service.cancel(principal, payout_id)
    return await idem.respond(200, payout_out(payout).model_dump_json().encode())
