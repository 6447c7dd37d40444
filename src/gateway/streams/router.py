"""GET /v1/events/stream and /v1/payments/{id}/stream: live Server-Sent Events (see service.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from sse_starlette import EventSourceResponse
from starlette.responses import Response

from gateway.api.deps import Ctx, EventsRead
from gateway.api.routing import GatewayRoute
from gateway.api.schemas import error_responses
from gateway.events.router import EventTypes, parse_types
from gateway.merchants.service import Principal
from gateway.payments.service import PaymentService
from gateway.streams import feed
from gateway.streams import service as streams
from gateway.streams.handshake import PAYMENT_STREAM, methods_for

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
    "`Last-Event-ID`: the events after it instead of the payment; 204 once the last one was sent. "
    "Browsers: `?key=pk_…&client_secret=…` instead of the header, and each message is then the "
    "payment's public subset (as `GET /v1/payments/{id}` shows it to a publishable key).",
    responses={
        **_sse_response("The payment, then its events"),
        204: {"description": "The stream had already ended for this Last-Event-ID: stop reconnecting"},
        **error_responses(401, 403, 404, 422),
    },
)
async def stream_payment(
    request: Request,
    payment_id: Annotated[str, Path(description="A payment id, `pay_…`", max_length=40)],
    ctx: Ctx,
    principal: Annotated[Principal, Depends(PAYMENT_STREAM)],
    last_event_id: LastEventId = None,
    key: Annotated[
        str | None,
        Query(
            max_length=200,
            description="Browsers only (EventSource sends no headers): your publishable key "
            "(`pk_…`), with `client_secret`; any other key is refused here (401)",
        ),
    ] = None,
    client_secret: Annotated[
        str | None,
        Query(max_length=200, description="The payment's client secret (with a publishable key)"),
    ] = None,
) -> Response:
    last = feed.checked_last_event_id(last_event_id)
    payments: PaymentService = request.app.state.payments
    public_methods = None
    if principal.key_type == "publishable":
        payment = await payments.get_with_secret(principal, payment_id, client_secret)
        public_methods = await methods_for(payments, payment)
    view = await feed.payment_view(ctx, payments, principal, payment_id)
    if view.already_sent_end(last):
        # EventSource clients reconnect when a stream ends; 204 is what tells them to stop.
        return Response(status_code=204)
    return await streams.payment_stream(ctx, payments, principal, view, last, public_methods)
