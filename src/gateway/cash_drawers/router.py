"""HTTP layer of cash drawer sessions: /v1/cash-drawers/{drawer}/sessions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path
from starlette.responses import Response

from gateway.api.deps import Ctx, PaymentsRead, PaymentsWrite
from gateway.api.pagination import Paging, Timestamp, checked_page, require_timezone
from gateway.api.responses import json_response
from gateway.api.routing import GatewayRoute
from gateway.api.schemas import error_responses
from gateway.cash_drawers.schemas import (
    DRAWER_MAX,
    DRAWER_PATTERN,
    CashSessionClose,
    CashSessionFilters,
    CashSessionList,
    CashSessionOpen,
    CashSessionOut,
    CashSessionStatus,
    session_out,
)
from gateway.cash_drawers.service import PREFIX, CashDrawerService
from gateway.idempotency.guard import RequiredIdempotency

router = APIRouter(prefix="/cash-drawers/{drawer}/sessions", tags=["cash_drawers"], route_class=GatewayRoute)

Drawer = Annotated[
    str,
    Path(
        description="Your name for the drawer (till, counter): letters, digits, `.`, `_`, `-`, starting "
        "with a letter or digit, at most 64 characters; case matters",
        pattern=DRAWER_PATTERN,
        max_length=DRAWER_MAX,
    ),
]
SessionId = Annotated[str, Path(description="A cash session id, `cds_…`", max_length=40)]


async def _service(ctx: Ctx) -> CashDrawerService:
    return CashDrawerService(ctx.db)


Service = Annotated[CashDrawerService, Depends(_service)]


@router.post(
    "",
    operation_id="open_cash_session",
    status_code=201,
    response_model=CashSessionOut,
    summary="Open a session on a drawer with its opening float (one open session per drawer)",
    responses=error_responses(400, 401, 409, 422),
)
async def open_cash_session(
    drawer: Drawer,
    body: CashSessionOpen,
    principal: PaymentsWrite,
    idem: RequiredIdempotency,
    service: Service,
) -> Response:
    assert idem.key is not None
    session, replayed = await service.open(
        principal, drawer, body, idempotency_key=idem.key, fingerprint=idem.fingerprint
    )
    return await idem.respond(201, session_out(session).model_dump_json().encode(), replayed=replayed)


@router.get(
    "",
    operation_id="list_cash_sessions",
    response_model=CashSessionList,
    summary="A drawer's sessions, newest first",
    responses=error_responses(401, 422),
)
async def list_cash_sessions(
    drawer: Drawer,
    principal: PaymentsRead,
    service: Service,
    page: Paging,
    status: CashSessionStatus | None = None,
    created_gte: Timestamp | None = None,
    created_lt: Timestamp | None = None,
) -> Response:
    filters = CashSessionFilters(
        drawer=drawer,
        status=status,
        created_gte=require_timezone("created_gte", created_gte),
        created_lt=require_timezone("created_lt", created_lt),
    )
    rows, has_more = await service.list(principal, filters, checked_page(page, PREFIX))
    return json_response(CashSessionList(data=[session_out(s) for s in rows], has_more=has_more))


@router.get(
    "/{session_id}",
    operation_id="retrieve_cash_session",
    response_model=CashSessionOut,
    summary="Retrieve a drawer's session",
    responses=error_responses(401, 404),
)
async def retrieve_cash_session(
    drawer: Drawer, session_id: SessionId, principal: PaymentsRead, service: Service
) -> Response:
    return json_response(session_out(await service.get(principal, drawer, session_id)))


@router.post(
    "/{session_id}/close",
    operation_id="close_cash_session",
    response_model=CashSessionOut,
    summary="Close a session with the cash counted: records expected, the difference and who closed it",
    responses=error_responses(400, 401, 404, 409, 422),
)
async def close_cash_session(
    drawer: Drawer,
    session_id: SessionId,
    body: CashSessionClose,
    principal: PaymentsWrite,
    idem: RequiredIdempotency,
    service: Service,
) -> Response:
    assert idem.key is not None
    session, replayed = await service.close(
        principal, drawer, session_id, body, idempotency_key=idem.key, fingerprint=idem.fingerprint
    )
    return await idem.respond(200, session_out(session).model_dump_json().encode(), replayed=replayed)
