"""The operator's admin API, /v1/admin: merchants, their first keys and their payout limits.

Authenticated with `Authorization: Bearer <GATEWAY_ADMIN_TOKEN>`. Without that setting the API does
not exist: create_app registers this router only when `enabled(settings)`, so every /v1/admin path
is the plain 404 of an unknown route (no 405, 415 or 401 that would betray it).
"""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.security import HTTPBearer
from starlette.exceptions import HTTPException
from starlette.responses import Response

from gateway.api.deps import Ctx
from gateway.api.pagination import Paging, checked_page
from gateway.api.responses import json_response
from gateway.api.routing import GatewayRoute
from gateway.api.schemas import error_responses
from gateway.context import AppContext
from gateway.errors import InvalidAdminToken
from gateway.kit.signing import constant_time_equal
from gateway.management.merchant_schemas import (
    ApiKeyCreate,
    ApiKeyWithSecret,
    MerchantCreate,
    MerchantList,
    MerchantOut,
    MerchantStatus,
    MerchantUpdate,
    api_key_with_secret,
    merchant_out,
)
from gateway.management.payout_limits_schemas import PayoutLimits, PayoutLimitsIn, limits_out
from gateway.merchants.keys import KeyManager
from gateway.payouts import limits
from gateway.settings import Settings


def admin_token(settings: Settings) -> str | None:
    """The operator's token; None (the admin API is off) when unset or blank."""
    token = settings.admin_token.get_secret_value().strip() if settings.admin_token is not None else ""
    return token or None


def enabled(settings: Settings) -> bool:
    return admin_token(settings) is not None


def _digest(text: str) -> bytes:
    # Compared as digests: equal lengths, so the comparison's time says nothing about the token's.
    return hashlib.sha256(text.encode()).digest()


class _AdminBearer(HTTPBearer):
    """Checks `Authorization: Bearer <GATEWAY_ADMIN_TOKEN>` in constant time; a security scheme of its
    own in the OpenAPI document (AdminToken), apart from merchants' keys."""

    async def __call__(self, request: Request) -> None:  # type: ignore[override]
        ctx: AppContext = request.app.state.ctx
        expected = admin_token(ctx.settings)
        if expected is None:  # not registered then; kept so the router is safe on any app
            raise HTTPException(404)
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not constant_time_equal(_digest(expected), _digest(given.strip())):
            raise InvalidAdminToken(
                "Send the operator's token as `Authorization: Bearer <GATEWAY_ADMIN_TOKEN>`.",
                headers={"WWW-Authenticate": 'Bearer realm="gateway-admin"'},
            )


_admin = _AdminBearer(
    auto_error=False, scheme_name="AdminToken", description="The operator's token: GATEWAY_ADMIN_TOKEN"
)
router = APIRouter(prefix="/admin", tags=["admin"], route_class=GatewayRoute, dependencies=[Depends(_admin)])
MerchantId = Annotated[str, Path(description="A merchant id, `mer_…`", max_length=40)]


async def _manager(ctx: Ctx) -> KeyManager:
    return KeyManager(ctx.db, ctx.redis, ctx.broadcast)


Manager = Annotated[KeyManager, Depends(_manager)]


@router.post(
    "/merchants",
    operation_id="create_merchant",
    status_code=201,
    response_model=MerchantOut,
    summary="Create a merchant (then give it keys)",
    responses=error_responses(401, 422),
)
async def create_merchant(body: MerchantCreate, manager: Manager) -> Response:
    return json_response(merchant_out(await manager.create_merchant(body.name, body.rate_limit)), 201)


@router.get(
    "/merchants",
    operation_id="list_merchants",
    response_model=MerchantList,
    summary="List merchants, newest first",
    responses=error_responses(401, 422),
)
async def list_merchants(manager: Manager, page: Paging, status: MerchantStatus | None = None) -> Response:
    rows, has_more = await manager.list_merchants(checked_page(page, "mer"), status)
    return json_response(MerchantList(data=[merchant_out(m) for m in rows], has_more=has_more))


@router.get(
    "/merchants/{merchant_id}",
    operation_id="retrieve_merchant",
    response_model=MerchantOut,
    summary="Retrieve a merchant",
    responses=error_responses(401, 404),
)
async def retrieve_merchant(merchant_id: MerchantId, manager: Manager) -> Response:
    return json_response(merchant_out(await manager.get_merchant(merchant_id)))


@router.patch(
    "/merchants/{merchant_id}",
    operation_id="update_merchant",
    response_model=MerchantOut,
    summary="Rename a merchant, disable or enable it, or change its rate limit",
    responses=error_responses(401, 404, 422),
)
async def update_merchant(merchant_id: MerchantId, body: MerchantUpdate, manager: Manager) -> Response:
    given = body.model_dump(exclude_unset=True)
    # null is "no change" for name and status; for rate_limit it is "the mode's default".
    changes = {k: v for k, v in given.items() if v is not None or k == "rate_limit"}
    return json_response(merchant_out(await manager.update_merchant(merchant_id, changes)))


@router.post(
    "/merchants/{merchant_id}/api-keys",
    operation_id="create_merchant_api_key",
    status_code=201,
    response_model=ApiKeyWithSecret,
    summary="Give a merchant a key; the answer shows it once",
    responses=error_responses(401, 404, 422),
)
async def create_merchant_api_key(merchant_id: MerchantId, body: ApiKeyCreate, manager: Manager) -> Response:
    made = await manager.create_key(merchant_id, body.mode == "live", body.type, body.scopes)
    return json_response(api_key_with_secret(made.key, made.secret), 201)


@router.get(
    "/merchants/{merchant_id}/payout-limits",
    operation_id="get_merchant_payout_limits",
    response_model=PayoutLimits,
    summary="A merchant's own payout limits and the limits in force, per mode and currency",
    responses=error_responses(401, 404),
)
async def get_merchant_payout_limits(merchant_id: MerchantId, ctx: Ctx) -> Response:
    return json_response(limits_out(await limits.show(ctx.db, ctx.settings.payouts, merchant_id)))


@router.put(
    "/merchants/{merchant_id}/payout-limits",
    operation_id="put_merchant_payout_limits",
    response_model=PayoutLimits,
    summary="Replace a merchant's own payout limits in one mode (an empty list: the defaults again)",
    responses=error_responses(401, 404, 422),
)
async def put_merchant_payout_limits(merchant_id: MerchantId, body: PayoutLimitsIn, ctx: Ctx) -> Response:
    shown = await limits.replace(ctx.db, ctx.settings.payouts, merchant_id, body.livemode, body.drafts())
    return json_response(limits_out(shown))
