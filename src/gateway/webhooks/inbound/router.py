"""POST /v1/webhooks/{provider}: raw bytes in, verified, stored, acknowledged; processed after the reply."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Path, Request
from starlette.responses import Response

from gateway.api.deps import Ctx, Session
from gateway.api.schemas import error_responses
from gateway.context import AppContext
from gateway.webhooks.inbound import service

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


async def _process_all(ctx: AppContext, inbox_ids: list[str]) -> None:
    for inbox_id in inbox_ids:
        await service.process(ctx.sessionmaker, ctx.registry, inbox_id)


@router.post(
    "/{provider}",
    operation_id="receive_provider_webhook",
    summary="Receive a payment provider's webhook",
    responses=error_responses(400, 401, 404),
    include_in_schema=True,
)
async def receive_provider_webhook(
    provider: Annotated[str, Path(max_length=32)],
    request: Request,
    session: Session,
    ctx: Ctx,
    background: BackgroundTasks,
) -> Response:
    body = await request.body()
    stored = await service.receive(session, ctx.registry, provider, request.headers, body)
    if stored:
        background.add_task(_process_all, ctx, stored)
    return Response(b'{"received":true}', media_type="application/json")
