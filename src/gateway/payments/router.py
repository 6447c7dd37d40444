"""HTTP layer of payments: parse, authenticate, guard with idempotency, call the service, render."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Path, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from pydantic_core import PydanticCustomError
from starlette.responses import Response

from gateway.api.deps import PaymentsConfirm, PaymentsRead, PaymentsReadOrClient, PaymentsWrite
from gateway.api.lean import LeanRoute
from gateway.api.pagination import Paging, checked_page, require_timezone
from gateway.api.ratelimit import check_confirm
from gateway.api.responses import JSONBytes, json_response
from gateway.api.routing import GatewayRoute
from gateway.api.schemas import error_responses, query_parameters
from gateway.errors import InvalidEmail
from gateway.events.schemas import EventList, event_out
from gateway.idempotency.guard import OptionalIdempotency, RequiredIdempotency
from gateway.kit.pagination import Page
from gateway.payments.answers import render_payment
from gateway.payments.drafts import Confirmation
from gateway.payments.fields import normalize_email
from gateway.payments.public import PublicPaymentOut, public_payment_json
from gateway.payments.requests import PaymentConfirm, PaymentCreate, PaymentFilters, PaymentListQuery
from gateway.payments.schemas import (
    PaymentAttemptList,
    PaymentList,
    PaymentOut,
    attempt_out,
    dump,
    payment_json,
)
from gateway.payments.service import PaymentService

router = APIRouter(prefix="/payments", tags=["payments"], route_class=GatewayRoute)
# The hot paths (list, retrieve, create) on LeanRoute: FastAPI documents them, a lean handler runs
# them. Included before `router`; their order here is the OpenAPI document's.
hot = APIRouter(prefix="/payments", tags=["payments"], route_class=LeanRoute)

PaymentId = Annotated[str, Path(description="A payment id, `pay_…`", max_length=40)]


def _service(request: Request) -> PaymentService:
    # Read in the handler, not solved as a dependency; built once by the app's lifespan.
    service: PaymentService = request.app.state.payments
    return service


def _raw_json(value: dict[str, Any]) -> Response:
    return JSONBytes(dump(value))


def _query_email(value: str) -> str:
    """The filter matches what we stored: the address as email-validator normalises it."""
    try:
        return normalize_email(value)
    except PydanticCustomError as e:
        raise InvalidEmail(
            str(e), errors=[{"loc": ["query", "customer_email"], "msg": str(e), "type": "invalid_email"}]
        ) from e


def _query(request: Request) -> dict[str, str]:
    """The query string as Starlette's `request.query_params` reads it (latin-1, blank values kept, a
    repeated name's last value), as a plain dict: pydantic validates a dict several times faster than
    another Mapping (5 µs against 13 for the list's usual query)."""
    return dict(parse_qsl(request.scope["query_string"].decode("latin-1"), keep_blank_values=True))


def _list_query(request: Request) -> PaymentListQuery:
    # One model validation of the query string. Declared to FastAPI (as parameters or as a query
    # model), the nine fields cost a fifth of a list request in its per-parameter machinery.
    try:
        return PaymentListQuery.model_validate(_query(request))
    except ValidationError as e:
        raise RequestValidationError(
            [{**err, "loc": ("query", *err["loc"])} for err in e.errors(include_url=False)]
        ) from e


@hot.get(
    "",
    operation_id="list_payments",
    response_model=PaymentList,
    summary="List payments, newest first",
    responses=error_responses(401, 422),
    openapi_extra={"parameters": query_parameters(PaymentListQuery)},
)
async def list_payments(request: Request, principal: PaymentsRead) -> Response:
    query = _list_query(request)
    filters = PaymentFilters(
        status=query.status,
        provider=query.provider,
        reference=query.reference,
        # An empty value is not an address: refused like any other (the document says format email).
        customer_email=_query_email(query.customer_email) if query.customer_email is not None else None,
        payment_link=query.payment_link,
        created_gte=require_timezone("created_gte", query.created_gte),
        created_lt=require_timezone("created_lt", query.created_lt),
    )
    page = Page(limit=query.limit, starting_after=query.starting_after, ending_before=query.ending_before)
    data, has_more = await _service(request).list(principal, filters, checked_page(page, "pay"))
    return _raw_json({"object": "list", "data": data, "has_more": has_more})


_CLIENT_SECRET_MAX = 100
_CLIENT_SECRET_PARAMETER = {
    "name": "client_secret",
    "in": "query",
    "required": False,
    "schema": {"type": "string", "maxLength": _CLIENT_SECRET_MAX},
    "description": "The payment's client secret: with a publishable key (a browser), the answer is "
    "the payment's public subset (PublicPaymentOut); a wrong or missing secret is 404. A secret or "
    "restricted key needs none and gets the whole payment.",
}


@hot.get(
    "/{payment_id}",
    operation_id="retrieve_payment",
    response_model=PaymentOut | PublicPaymentOut,
    summary="Retrieve a payment",
    responses=error_responses(401, 403, 404),
    openapi_extra={"parameters": [_CLIENT_SECRET_PARAMETER]},
)
async def retrieve_payment(
    request: Request, payment_id: PaymentId, principal: PaymentsReadOrClient
) -> Response:
    service = _service(request)
    secret = _query(request).get("client_secret") if request.scope["query_string"] else None
    if secret is not None and len(secret) > _CLIENT_SECRET_MAX:
        raise RequestValidationError(
            [
                {
                    "loc": ("query", "client_secret"),
                    "msg": f"String should have at most {_CLIENT_SECRET_MAX} characters",
                    "type": "string_too_long",
                }
            ]
        )
    if principal.key_type == "publishable":
        payment = await service.get_with_secret(principal, payment_id, secret)
        methods = await service.methods(principal.merchant_id, principal.livemode, payment.currency)
        return _raw_json(public_payment_json(payment, methods))
    return _raw_json(await service.view(principal, payment_id))


@hot.post(
    "",
    operation_id="create_payment",
    status_code=201,
    response_model=PaymentOut,
    summary="Create a payment",
    responses=error_responses(400, 401, 402, 409, 422, 502, 504),
)
async def create_payment(
    request: Request,
    body: PaymentCreate,
    principal: PaymentsWrite,
    idem: RequiredIdempotency,
) -> Response:
    assert idem.key is not None
    rendered = await _service(request).create(
        principal,
        body,
        idempotency_key=idem.key,
        fingerprint=idem.fingerprint,
        request_id=request.state.request_id,
    )
    return await idem.respond(rendered.status, rendered.body, rendered.media_type, replayed=rendered.replayed)


@router.post(
    "/{payment_id}/confirm",
    operation_id="confirm_payment",
    response_model=PaymentOut | PublicPaymentOut,
    summary="Choose the payment's rail and start it (a browser: publishable key and client secret)",
    responses=error_responses(400, 401, 402, 403, 404, 409, 422, 429, 502, 504),
)
async def confirm_payment(
    request: Request,
    payment_id: PaymentId,
    body: PaymentConfirm,
    principal: PaymentsConfirm,
    idem: RequiredIdempotency,
) -> Response:
    client = request.client
    request_id = request.state.request_id
    await check_confirm(request.app.state.ctx, payment_id, client.host if client else "unknown", request_id)
    service = _service(request)
    customer = body.customer
    confirmation = Confirmation(
        provider=body.provider,
        payment_method=body.payment_method,
        phone=customer.phone if customer else None,
        email=customer.email if customer else None,
        cash_session=body.cash_session,
    )
    payment = await service.confirm(principal, payment_id, body.client_secret, confirmation)
    if principal.key_type == "publishable":
        methods = await service.methods(principal.merchant_id, principal.livemode, payment.currency)
        rendered = render_payment(payment, request_id, view=public_payment_json(payment, methods))
    else:
        rendered = render_payment(payment, request_id, client_secret=True)
    return await idem.respond(rendered.status, rendered.body, rendered.media_type)


@router.get(
    "/{payment_id}/attempts",
    operation_id="list_payment_attempts",
    response_model=PaymentAttemptList,
    summary="The payment's attempts (each start of a rail), oldest first",
    responses=error_responses(401, 404),
)
async def list_payment_attempts(request: Request, payment_id: PaymentId, principal: PaymentsRead) -> Response:
    rows = await _service(request).attempts(principal, payment_id)
    return json_response(PaymentAttemptList(data=[attempt_out(a) for a in rows], has_more=False))


@router.post(
    "/{payment_id}/cancel",
    operation_id="cancel_payment",
    response_model=PaymentOut,
    summary="Cancel a payment that is still waiting for the customer or the provider",
    responses=error_responses(400, 401, 404, 409, 502, 504),
)
async def cancel_payment(
    request: Request, payment_id: PaymentId, principal: PaymentsWrite, idem: RequiredIdempotency
) -> Response:
    payment = await _service(request).cancel(principal, payment_id)
    return await idem.respond(200, dump(payment_json(payment, client_secret=True)))


@router.post(
    "/{payment_id}/sync",
    operation_id="sync_payment",
    response_model=PaymentOut,
    summary="Ask the provider for the payment's status now and apply what it says",
    responses=error_responses(401, 404, 409, 502, 504),
)
async def sync_payment(
    request: Request, payment_id: PaymentId, principal: PaymentsWrite, idem: OptionalIdempotency
) -> Response:
    payment = await _service(request).sync(principal, payment_id)
    return await idem.respond(200, dump(payment_json(payment, client_secret=True)))


@router.get(
    "/{payment_id}/events",
    operation_id="list_payment_events",
    response_model=EventList,
    summary="The payment's event trail, newest first",
    responses=error_responses(401, 404, 422),
)
async def list_payment_events(
    request: Request, payment_id: PaymentId, principal: PaymentsRead, page: Paging
) -> Response:
    rows, has_more = await _service(request).events(principal, payment_id, checked_page(page, "evt"))
    return json_response(EventList(data=[event_out(e) for e in rows], has_more=has_more))
