"""The merchant's own API keys, /v1/api-keys: list, create, roll, revoke (in the calling key's mode).

Only a secret key (or an access token made from one and not narrowed) manages keys: a restricted or
publishable key that could make itself a secret key would have no limits at all.

A key's secret is in the answer that made it and nowhere else: an idempotent replay of a create or
a roll answers the same key without it (`secret: null`), so neither Redis nor a second answer ever
holds it (docs/api.md, "API keys").
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from starlette.responses import Response

from gateway.api.deps import Ctx, SecretKey
from gateway.api.pagination import Paging, checked_page
from gateway.api.responses import json_response
from gateway.api.routing import GatewayRoute
from gateway.api.schemas import documented_error, error_responses
from gateway.errors import InvalidRequest
from gateway.idempotency.guard import OptionalIdempotency
from gateway.management.merchant_schemas import (
    ApiKeyCreate,
    ApiKeyList,
    ApiKeyOut,
    ApiKeyRoll,
    ApiKeyWithSecret,
    api_key_out,
    api_key_with_secret,
)
from gateway.merchants.keys import KeyManager, NewKey

router = APIRouter(prefix="/api-keys", tags=["api keys"], route_class=GatewayRoute)
KeyId = Annotated[str, Path(description="An API key id, `key_…`", max_length=40)]


# Managing keys is no scope: a secret key, or an access token made from one without narrowing.
Caller = SecretKey


async def _manager(ctx: Ctx) -> KeyManager:
    return KeyManager(ctx.db, ctx.redis, ctx.broadcast)


Manager = Annotated[KeyManager, Depends(_manager)]


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return error_responses(*statuses) | {
        403: documented_error(403, "Not a secret key: `insufficient_scope` (or the merchant is disabled)")
    }


async def _answer(status: int, made: NewKey, idem: OptionalIdempotency) -> Response:
    """The new key with its secret; what a replay gets: the same key without it."""
    once = api_key_with_secret(made.key, made.secret).model_dump_json().encode()
    later = api_key_with_secret(made.key, None).model_dump_json().encode()
    return await idem.respond(status, once, replay_body=later)


@router.get(
    "",
    operation_id="list_api_keys",
    response_model=ApiKeyList,
    summary="Your keys in this mode, newest first (prefix and last 4 only, never the key)",
    responses=_errors(401, 422),
)
async def list_api_keys(caller: Caller, manager: Manager, page: Paging) -> Response:
    rows, has_more = await manager.list_keys(caller.merchant_id, caller.livemode, checked_page(page, "key"))
    return json_response(ApiKeyList(data=[api_key_out(k) for k in rows], has_more=has_more))


@router.post(
    "",
    operation_id="create_api_key",
    status_code=201,
    response_model=ApiKeyWithSecret,
    summary="Create a key in this mode; the answer shows it once",
    responses=_errors(401, 409, 422),
)
async def create_api_key(
    body: ApiKeyCreate, caller: Caller, idem: OptionalIdempotency, manager: Manager
) -> Response:
    mode = "live" if caller.livemode else "test"
    if body.mode is not None and body.mode != mode:
        raise InvalidRequest(
            f"A {mode} key makes {mode} keys only.",
            errors=[{"loc": ["body", "mode"], "msg": f"must be {mode}, the caller's mode", "type": "mode"}],
        )
    made = await manager.create_key(caller.merchant_id, caller.livemode, body.type, body.scopes)
    return await _answer(201, made, idem)


@router.post(
    "/{key_id}/roll",
    operation_id="roll_api_key",
    response_model=ApiKeyWithSecret,
    summary="Replace a key: the answer is the new key (shown once); the old one works `expires_in` s more",
    responses=_errors(401, 404, 409, 422),
)
async def roll_api_key(
    key_id: KeyId, body: ApiKeyRoll, caller: Caller, idem: OptionalIdempotency, manager: Manager
) -> Response:
    rolled = await manager.roll_key(key_id, body.expires_in, caller)
    return await _answer(200, rolled.new, idem)


@router.post(
    "/{key_id}/revoke",
    operation_id="revoke_api_key",
    response_model=ApiKeyOut,
    summary="Revoke a key: refused everywhere within a second",
    responses=_errors(401, 404, 409),
)
async def revoke_api_key(
    key_id: KeyId, caller: Caller, idem: OptionalIdempotency, manager: Manager
) -> Response:
    key = await manager.revoke_key(key_id, caller)
    return await idem.respond(200, api_key_out(key).model_dump_json().encode())
