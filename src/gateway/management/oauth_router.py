"""POST /v1/oauth/token: a secret or restricted key exchanged for a short-lived access token (RFC
6749 §4.4, client credentials).

As the RFC has it, and unlike every other /v1 operation: the body is a form
(`application/x-www-form-urlencoded`, read here: the route declares no JSON body, so the shared
route class does not refuse it with 415) and the key is the HTTP Basic user name (empty password).
Errors are the gateway's problem+json; the RFC's error name rides along as `error`, for OAuth
client libraries. Off (404 `access_tokens_disabled`) while GATEWAY_JWT_KEYS is unset, like the
admin API without its token: a route that cannot work is better absent than failing; a request
without Basic credentials is still 401 first, as on every secured operation (the OpenAPI contract).
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Request
from fastapi.security import HTTPBasic
from pydantic import BaseModel, Field
from starlette.responses import Response

from gateway.api.deps import Ctx
from gateway.api.responses import json_response
from gateway.api.routing import GatewayRoute
from gateway.api.schemas import documented_error, error_responses
from gateway.errors import (
    AccessTokensDisabled,
    InvalidApiKey,
    InvalidClient,
    InvalidScope,
    InvalidTokenRequest,
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedMediaType,
)
from gateway.merchants.scopes import KNOWN_SCOPES, SCOPES
from gateway.merchants.service import Principal
from gateway.merchants.tokens import TOKEN_SECONDS

router = APIRouter(prefix="/oauth", tags=["access tokens"], route_class=GatewayRoute)

FORM = "application/x-www-form-urlencoded"
_BASIC = {"WWW-Authenticate": 'Basic realm="gateway"'}
# No-store: a token answer must not sit in any cache (RFC 6749 §5.1).
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_MAX_FIELDS = 8


class AccessToken(BaseModel):
    access_token: str = Field(description="A JWT: send it as `Authorization: Bearer <access_token>`")
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int = Field(
        description=f"Seconds it stays valid: {TOKEN_SECONDS}, or less when the key expires sooner"
    )
    scope: str = Field(description="The scopes it carries, space separated")


class _BasicKey(HTTPBasic):
    """The key from `Authorization: Basic base64(<key>:)` (the client credentials of RFC 6749 §2.3.1)."""

    async def __call__(self, request: Request) -> str:  # type: ignore[override]
        scheme, _, param = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic" or not param:
            raise InvalidClient(
                "Send your secret or restricted key as HTTP Basic credentials: the key as user name, "
                "an empty password.",
                headers=_BASIC,
                error="invalid_client",
            )
        try:
            user, sep, _password = base64.b64decode(param.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            user, sep = "", ""
        if not sep or not user:
            raise InvalidClient(
                "The Basic credentials are not base64 of `<key>:`.", headers=_BASIC, error="invalid_client"
            )
        return user


BasicKey = Annotated[str, Depends(_BasicKey(auto_error=False, scheme_name="HTTPBasic", realm="gateway"))]

_FORM_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        FORM: {
            "schema": {
                "type": "object",
                "required": ["grant_type"],
                "properties": {
                    "grant_type": {"type": "string", "enum": ["client_credentials"]},
                    "scope": {
                        "type": "string",
                        "description": "Space separated scopes to narrow the token to (each one the "
                        f"key holds): {', '.join(SCOPES)}. Left out: the key's own.",
                    },
                },
            }
        }
    },
}


@router.post(
    "/token",
    operation_id="create_access_token",
    response_model=AccessToken,
    summary="Exchange a secret or restricted key for an access token (OAuth 2.0 client credentials)",
    responses={
        **error_responses(400, 401, 403),
        404: documented_error(404, "Access tokens are off: GATEWAY_JWT_KEYS is unset"),
    },
    openapi_extra={"requestBody": _FORM_BODY},
)
async def create_access_token(request: Request, ctx: Ctx, key: BasicKey) -> Response:
    auth = ctx.authenticator
    # After the credentials' shape (a request without them is 401, as for every secured operation),
    # before anything is looked up or parsed.
    if auth.tokens is None:
        raise AccessTokensDisabled("This gateway issues no access tokens: GATEWAY_JWT_KEYS is unset.")
    form = await _form(request)
    try:
        principal = await auth.authenticate_key(key)
    except InvalidApiKey as e:
        raise InvalidApiKey(e.detail, headers=_BASIC, error="invalid_client") from None
    if principal.key_type == "publishable":
        raise UnauthorizedClient(
            "A publishable key cannot be exchanged for an access token; use a secret or restricted key.",
            error="unauthorized_client",
        )
    grant = form.get("grant_type")
    if grant is None:
        raise InvalidTokenRequest("Send `grant_type=client_credentials`.", error="invalid_request")
    if grant != "client_credentials":
        raise UnsupportedGrantType(
            "Send `grant_type=client_credentials` (the only grant this gateway issues tokens for).",
            error="unsupported_grant_type",
        )
    issued = auth.issue_token(principal, _narrowed(principal, form.get("scope")))
    body = AccessToken(access_token=issued.token, expires_in=issued.expires_in, scope=issued.scope)
    response = json_response(body)
    response.headers.update(_NO_STORE)
    return response


async def _form(request: Request) -> dict[str, str]:
    media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    body = await request.body()
    if body and media != FORM:  # no body at all: an empty form (grant_type is then missing)
        raise UnsupportedMediaType(
            f"Send the body as `Content-Type: {FORM}` (RFC 6749 §4.4).", supported=[FORM]
        )
    try:
        pairs = parse_qsl(body.decode(), keep_blank_values=True, max_num_fields=_MAX_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise InvalidTokenRequest(
            f"The body is not a form of at most {_MAX_FIELDS} UTF-8 fields.", error="invalid_request"
        ) from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:  # RFC 6749 §3.2: no parameter more than once
            raise InvalidTokenRequest(f"`{name}` is sent more than once.", error="invalid_request")
        if "\x00" in value:
            raise InvalidTokenRequest(f"`{name}` holds a NUL character.", error="invalid_request")
        form[name] = value
    return form


def _narrowed(principal: Principal, scope: str | None) -> frozenset[str] | None:
    """The token's scopes: the key's own, or `scope` if every one of them is the key's."""
    if scope is None:
        return principal.scopes
    asked = frozenset(scope.split(" ")) - {""}
    if not asked:
        raise InvalidScope(
            "`scope` names no scope; leave it out to get the key's own.", error="invalid_scope"
        )
    unknown = sorted(asked - KNOWN_SCOPES)
    if unknown:
        raise InvalidScope(
            f"No such scope: {', '.join(unknown)[:200]} (scopes: {', '.join(SCOPES)}).", error="invalid_scope"
        )
    beyond = sorted(asked - principal.scopes) if principal.scopes is not None else []
    if beyond:
        raise InvalidScope(f"The key does not hold: {', '.join(beyond)}.", error="invalid_scope")
    return asked
