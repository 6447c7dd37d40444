"""Webhook endpoints and their delivery log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path
from starlette.responses import Response

from gateway.api.deps import Ctx, WebhooksWrite
from gateway.api.pagination import Paging, checked_page
from gateway.api.responses import json_response
from gateway.api.routing import GatewayRoute
from gateway.api.schemas import error_responses
from gateway.idempotency.guard import OptionalIdempotency
from gateway.webhooks.outbound.schemas import (
    DeliveryList,
    DeliveryOut,
    EndpointCreate,
    EndpointList,
    EndpointOut,
    EndpointUpdate,
    EndpointWithSecret,
    delivery_out,
    endpoint_out,
)
from gateway.webhooks.outbound.service import EndpointService

router = APIRouter(tags=["webhook endpoints"], route_class=GatewayRoute)
EndpointId = Annotated[str, Path(description="A webhook endpoint id, `we_…`", max_length=40)]
DeliveryId = Annotated[str, Path(description="A delivery id, `whd_…`", max_length=40)]


async def _service(ctx: Ctx) -> EndpointService:
    return EndpointService(ctx.db, allow_private_targets=ctx.settings.delivery.allow_private_targets)


Service = Annotated[EndpointService, Depends(_service)]


@router.post(
    "/webhook-endpoints",
    operation_id="create_webhook_endpoint",
    status_code=201,
    response_model=EndpointWithSecret,
    summary="Register an endpoint; the answer shows its signing secret once",
    responses=error_responses(400, 401, 409, 422),
)
async def create_webhook_endpoint(
    body: EndpointCreate, principal: WebhooksWrite, idem: OptionalIdempotency, service: Service
) -> Response:
    endpoint = await service.create(principal, body)
    return await idem.respond(201, endpoint_out(endpoint, with_secret=True).model_dump_json().encode())


@router.get(
    "/webhook-endpoints",
    operation_id="list_webhook_endpoints",
    response_model=EndpointList,
    summary="List endpoints, newest first",
    responses=error_responses(401, 422),
)
async def list_webhook_endpoints(principal: WebhooksWrite, service: Service, page: Paging) -> Response:
    rows, has_more = await service.list_endpoints(principal, checked_page(page, "we"))
    return json_response(EndpointList(data=[endpoint_out(e) for e in rows], has_more=has_more))


@router.get(
    "/webhook-endpoints/{endpoint_id}",
    operation_id="retrieve_webhook_endpoint",
    response_model=EndpointOut,
    summary="Retrieve an endpoint",
    responses=error_responses(401, 404),
)
async def retrieve_webhook_endpoint(
    endpoint_id: EndpointId, principal: WebhooksWrite, service: Service
) -> Response:
    return json_response(endpoint_out(await service.get(principal, endpoint_id)))


@router.patch(
    "/webhook-endpoints/{endpoint_id}",
    operation_id="update_webhook_endpoint",
    response_model=EndpointOut,
    summary="Change an endpoint's URL, events, description, or enable/disable it",
    responses=error_responses(401, 404, 422),
)
async def update_webhook_endpoint(
    endpoint_id: EndpointId, body: EndpointUpdate, principal: WebhooksWrite, service: Service
) -> Response:
    return json_response(endpoint_out(await service.update(principal, endpoint_id, body)))


@router.delete(
    "/webhook-endpoints/{endpoint_id}",
    operation_id="delete_webhook_endpoint",
    response_model=EndpointOut,
    summary="Delete an endpoint (nothing more is sent to it)",
    responses=error_responses(401, 404),
)
async def delete_webhook_endpoint(
    endpoint_id: EndpointId, principal: WebhooksWrite, service: Service
) -> Response:
    return json_response(endpoint_out(await service.delete(principal, endpoint_id)))


@router.post(
    "/webhook-endpoints/{endpoint_id}/rotate-secret",
    operation_id="rotate_webhook_endpoint_secret",
    response_model=EndpointWithSecret,
    summary="New signing secret; the old one also signs for 24 h",
    responses=error_responses(401, 404),
)
async def rotate_webhook_endpoint_secret(
    endpoint_id: EndpointId, principal: WebhooksWrite, idem: OptionalIdempotency, service: Service
) -> Response:
    endpoint = await service.rotate_secret(principal, endpoint_id)
    return await idem.respond(200, endpoint_out(endpoint, with_secret=True).model_dump_json().encode())


@router.get(
    "/webhook-endpoints/{endpoint_id}/deliveries",
    operation_id="list_webhook_deliveries",
    response_model=DeliveryList,
    summary="The endpoint's deliveries with every attempt, newest first",
    responses=error_responses(401, 404, 422),
)
async def list_webhook_deliveries(
    endpoint_id: EndpointId, principal: WebhooksWrite, service: Service, page: Paging
) -> Response:
    rows, has_more = await service.list_deliveries(principal, endpoint_id, checked_page(page, "whd"))
    return json_response(DeliveryList(data=[delivery_out(d, a) for d, a in rows], has_more=has_more))


@router.post(
    "/webhook-deliveries/{delivery_id}/retry",
    operation_id="retry_webhook_delivery",
    response_model=DeliveryOut,
    summary="Send a delivery again now",
    responses=error_responses(401, 404),
)
async def retry_webhook_delivery(
    delivery_id: DeliveryId, principal: WebhooksWrite, idem: OptionalIdempotency, service: Service
) -> Response:
    delivery, attempts = await service.retry(principal, delivery_id)
    return await idem.respond(200, delivery_out(delivery, attempts).model_dump_json().encode())
