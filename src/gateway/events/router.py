"""GET /v1/events and /v1/events/{id}: the merchant's event log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from starlette.responses import Response

from gateway.api.deps import Ctx, EventsRead
from gateway.api.pagination import Paging, Timestamp, checked_page, require_timezone
from gateway.api.responses import json_response
from gateway.api.routing import GatewayRoute
from gateway.api.schemas import error_responses
from gateway.events.schemas import EventFilters, EventList, EventOut, event_out
from gateway.events.service import EventService

router = APIRouter(prefix="/events", tags=["events"], route_class=GatewayRoute)


async def _service(ctx: Ctx) -> EventService:
    return EventService(ctx.db)


Service = Annotated[EventService, Depends(_service)]


# The `type` filter of the event log and of its live stream.
EventTypes = Annotated[
    str | None,
    Query(
        max_length=500,
        description="Types, comma-separated; `payment.*` matches a family",
        pattern=r"^[a-z_.*,\s]+$",
    ),
]


def parse_types(value: str | None) -> tuple[str, ...]:
    return tuple(t.strip() for t in value.split(",") if t.strip()) if value else ()


@router.get(
    "",
    operation_id="list_events",
    response_model=EventList,
    summary="List events, newest first",
    responses=error_responses(401, 422),
)
async def list_events(
    principal: EventsRead,
    service: Service,
    page: Paging,
    type: EventTypes = None,
    payment: Annotated[str | None, Query(max_length=40)] = None,
    created_gte: Timestamp | None = None,
    created_lt: Timestamp | None = None,
) -> Response:
    filters = EventFilters(
        types=parse_types(type),
        payment=payment,
        created_gte=require_timezone("created_gte", created_gte),
        created_lt=require_timezone("created_lt", created_lt),
    )
    rows, has_more = await service.list(principal, filters, checked_page(page, "evt"))
    return json_response(EventList(data=[event_out(e) for e in rows], has_more=has_more))


@router.get(
    "/{event_id}",
    operation_id="retrieve_event",
    response_model=EventOut,
    summary="Retrieve an event",
    responses=error_responses(401, 404),
)
async def retrieve_event(
    event_id: Annotated[str, Path(max_length=40)], principal: EventsRead, service: Service
) -> Response:
    return json_response(event_out(await service.get(principal, event_id)))
