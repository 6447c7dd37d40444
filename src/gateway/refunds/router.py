"""HTTP layer of refunds."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from starlette.responses import Response

from gateway.api.deps import Ctx, PaymentsRead, RefundsWrite
from gateway.api.pagination import Paging, Timestamp, checked_page, require_timezone
from gateway.api.responses import json_response
from gateway.api.routing import GatewayRoute
from gateway.api.schemas import error_responses
from gateway.idempotency.guard import RequiredIdempotency
from gateway.refunds.schemas import (
    RefundCreate,
    RefundFilters,
    RefundList,
    RefundOut,
    RefundStatus,
    refund_out,
)
from gateway.refunds.service import RefundService

router = APIRouter(tags=["refunds"], route_class=GatewayRoute)

PaymentId = Annotated[str, Path(description="A payment id, `pay_…`", max_length=40)]
RefundId = Annotated[str, Path(description="A refund id, `re_…`", max_length=40)]


async def _service(ctx: Ctx) -> RefundService:
    return RefundService(ctx.db, ctx.registry, ctx.settings.provider_timeout_seconds)


Service = Annotated[RefundService, Depends(_service)]


@router.post(
    "/payments/{payment_id}/refunds",
    operation_id="create_refund",
    status_code=201,
    response_model=RefundOut,
    summary="Refund a payment, fully or in part",
    responses=error_responses(400, 401, 404, 409, 422, 502, 504),
)
async def create_refund(
    payment_id: PaymentId,
    body: RefundCreate,
    principal: RefundsWrite,
    idem: RequiredIdempotency,
    service: Service,
) -> Response:
    assert idem.key is not None
    refund, replayed = await service.create(
        principal, payment_id, body, idempotency_key=idem.key, fingerprint=idem.fingerprint
    )
    return await idem.respond(201, refund_out(refund).model_dump_json().encode(), replayed=replayed)


@router.get(
    "/payments/{payment_id}/refunds",
    operation_id="list_payment_refunds",
    response_model=RefundList,
    summary="A payment's refunds, newest first",
    responses=error_responses(401, 404, 422),
)
async def list_payment_refunds(
    payment_id: PaymentId, principal: PaymentsRead, service: Service, page: Paging
) -> Response:
    rows, has_more = await service.list_for_payment(principal, payment_id, checked_page(page, "re"))
    return json_response(RefundList(data=[refund_out(r) for r in rows], has_more=has_more))


@router.get(
    "/refunds/{refund_id}",
    operation_id="retrieve_refund",
    response_model=RefundOut,
    summary="Retrieve a refund",
    responses=error_responses(401, 404),
)
async def retrieve_refund(refund_id: RefundId, principal: PaymentsRead, service: Service) -> Response:
    return json_response(refund_out(await service.get(principal, refund_id)))


@router.get(
    "/refunds",
    operation_id="list_refunds",
    response_model=RefundList,
    summary="List refunds, newest first",
    responses=error_responses(401, 422),
)
async def list_refunds(
    principal: PaymentsRead,
    service: Service,
    page: Paging,
    status: RefundStatus | None = None,
    payment: Annotated[str | None, Query(max_length=40)] = None,
    created_gte: Timestamp | None = None,
    created_lt: Timestamp | None = None,
) -> Response:
    filters = RefundFilters(
        status=status,
        payment=payment,
        created_gte=require_timezone("created_gte", created_gte),
        created_lt=require_timezone("created_lt", created_lt),
    )
    rows, has_more = await service.list(principal, filters, checked_page(page, "re"))
    return json_response(RefundList(data=[refund_out(r) for r in rows], has_more=has_more))
