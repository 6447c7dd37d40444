"""GET /v1/events/stream and /v1/payments/{id}/stream: live Server-Sent Events (see service.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Request
from sse_starlette import EventSourceResponse
from starlette.responses import Response

from gateway.api.deps import Ctx, EventsRead
from gateway.api.routing import GatewayRoute
from gateway.api.schemas import error_responses
from gateway.events.router import EventTypes, parse_types
from gateway.payments.service import PaymentService
from gateway.streams import feed
from gateway.streams import service as streams

router = APIRouter(route_class=GatewayRoute)

LastEventId = Annotated[
    str | None,
    Header(
        alias="Last-Event-ID",
        max_length=40,
        description="Resume after this event: what was missed is sent first, from the event log",
    ),
]


def _sse_response(description: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {"description": description, "content": {"text/event-stream": {"schema": {"type": "string"}}}}
    }


@router.get(
    "/events/stream",
    operation_id="stream_events",
    tags=["events"],
    response_class=EventSourceResponse,
    summary="The merchant's events, live (Server-Sent Events)",
    description="Each message is an event as `GET /v1/events/{id}` shows it, with the event id as the "
    "SSE `id`. The comment `: ready` follows the catch-up (with `Last-Event-ID`); `: heartbeat` comes "
    "every `GATEWAY_STREAM_HEARTBEAT_SECONDS` (15 s).",
    responses={**_sse_response("An endless event stream"), **error_responses(401, 422)},
)
async def stream_events(
    ctx: Ctx,
    principal: EventsRead,
    type: EventTypes = None,
    last_event_id: LastEventId = None,
) -> Response:
    last = feed.checked_last_event_id(last_event_id)
    return await streams.merchant_stream(ctx, principal, parse_types(type), last)


@router.get(
    "/payments/{payment_id}/stream",
    operation_id="stream_payment",
    tags=["payments"],
    response_class=EventSourceResponse,
    summary="One payment's changes, live, until its outcome is known (Server-Sent Events)",
    description="First the payment itself (its current state), then its events as they happen; the "
    "stream ends after the event that takes it out of `pending`/`requires_action`/`processing`. With "
    "`Last-Event-ID`: the events after it instead of the payment; 204 once the last one was sent.",
    responses={
        **_sse_response("The payment, then its events"),
        204: {"description": "The stream had already ended for this Last-Event-ID: stop reconnecting"},
        **error_responses(401, 404, 422),
    },
)
async def stream_payment(
    request: Request,
    payment_id: Annotated[str, Path(description="A payment id, `pay_…`", max_length=40)],
    ctx: Ctx,
    principal: EventsRead,
    last_event_id: LastEventId = None,
) -> Response:
    last = feed.checked_last_event_id(last_event_id)
    payments: PaymentService = request.app.state.payments
    view = await feed.payment_view(ctx, payments, principal, payment_id)
    if view.already_sent_end(last):
        # EventSource clients reconnect when a stream ends; 204 is what tells them to stop.
        return Response(status_code=204)
    return await streams.payment_stream(ctx, payments, principal, view, last)
