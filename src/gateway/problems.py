"""The one place that renders RFC 9457 problem+json: the GatewayError tree (gateway/errors.py),
request validation, and what FastAPI and Starlette raise themselves."""

from __future__ import annotations

from typing import Any

import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match

from gateway.errors import GatewayError, InvalidRequest, MalformedJson, PayloadTooLarge

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://docs.gateway.dev/errors/"

log = structlog.get_logger("gateway.errors")


def _request_id(request: Request) -> str | None:
    rid: str | None = getattr(request.state, "request_id", None)
    return rid


def problem_body(
    *, status: int, code: str, title: str, detail: str, request_id: str | None, **extra: Any
) -> bytes:
    body: dict[str, Any] = {
        "type": TYPE_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "request_id": request_id,
    }
    body.update(extra)
    return orjson.dumps(body, option=orjson.OPT_UTC_Z)


def problem_response(
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    request_id: str | None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    return Response(
        problem_body(status=status, code=code, title=title, detail=detail, request_id=request_id, **extra),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def render_gateway_error(exc: GatewayError, request_id: str | None) -> Response:
    headers = exc.headers
    if exc.status == 401 and "WWW-Authenticate" not in headers:
        headers = {**headers, "WWW-Authenticate": "Bearer"}  # RFC 9110: a 401 names its scheme
    return problem_response(
        status=exc.status,
        code=exc.code,
        title=exc.title,
        detail=exc.detail,
        request_id=request_id,
        headers=headers,
        **exc.extra,
    )


# Error kinds of our own validators that deserve their own top-level code (see docs/api.md).
SPECIFIC_VALIDATION_CODES = frozenset(
    {
        "invalid_currency",
        "invalid_phone",
        "invalid_email",
        "amount_too_large",
        "invalid_metadata",
        "card_number_not_allowed",
        "invalid_destination",
    }
)


def _validation_response(request: Request, exc: RequestValidationError) -> Response:
    errors = []
    for e in exc.errors():
        if e.get("type") == "json_invalid":
            return render_gateway_error(MalformedJson(), _request_id(request))
        errors.append({"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")})
    kinds = {e["type"] for e in errors}
    code = kinds.pop() if len(kinds) == 1 and next(iter(kinds)) in SPECIFIC_VALIDATION_CODES else None
    fields = ", ".join(".".join(str(p) for p in e["loc"][1:]) or str(e["loc"][0]) for e in errors)
    return problem_response(
        status=422,
        code=code or InvalidRequest.code,
        title=InvalidRequest.title,
        detail=f"Invalid value for: {fields}" if fields else InvalidRequest.title,
        request_id=_request_id(request),
        errors=errors,
    )


def install_error_handlers(app: FastAPI) -> None:
    async def gateway_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, GatewayError)
        return render_gateway_error(exc, _request_id(request))

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return _validation_response(request, exc)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        status = exc.status_code
        headers = dict(exc.headers or {})
        code, title, detail = _HTTP_ERRORS.get(status, ("http_error", str(exc.detail), str(exc.detail)))
        if status == 405:
            headers["Allow"] = _allowed_methods(request)
            detail = f"{request.method} is not allowed here; use {headers['Allow']}."
        return problem_response(
            status=status,
            code=code,
            title=title,
            detail=detail,
            request_id=_request_id(request),
            headers=headers,
        )

    app.add_exception_handler(GatewayError, gateway_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    # Every other exception (outages, bugs) is answered by the error boundary (api/boundary.py, at the edge).


# What FastAPI and Starlette raise themselves. FastAPI's only 400 is a body it could not decode
# (not UTF-8, or an integer of more than 4300 digits, Python's limit); it is as malformed as bad JSON.
_HTTP_ERRORS = {
    400: (
        MalformedJson.code,
        MalformedJson.title,
        "The body could not be read as JSON: it is not UTF-8, or a number in it has more than 4300 digits.",
    ),
    404: ("not_found", "Not found", "No such route. The API lives under /v1 (see /docs)."),
    405: ("method_not_allowed", "Method not allowed", ""),
    413: (PayloadTooLarge.code, PayloadTooLarge.title, PayloadTooLarge.title),
}


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def _allowed_methods(request: Request) -> str:
    """Every method some route takes at this path (Starlette names only the first route's)."""
    routes = request.app.router.routes
    allowed = [
        m for m in _METHODS if any(r.matches({**request.scope, "method": m})[0] == Match.FULL for r in routes)
    ]
    return ", ".join(allowed)
