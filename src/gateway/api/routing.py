"""`GatewayRoute`, the route class of every /v1 endpoint: it refuses, before FastAPI parses anything,
the bytes no schema could fix.

- A JSON endpoint sent a body of another media type (`text/plain`, a form) is 415
  `unsupported_media_type`, not a 422 about the body's shape. A body without a Content-Type is read
  as JSON, as FastAPI does.
- A NUL character (`\\u0000`) in any string of the body, the path or the query is 422
  `validation_error` naming where it is: PostgreSQL cannot store it in text or JSONB, so letting it
  through would end in a 500 after part of the work was done.

Both run before authentication, like FastAPI's own malformed-JSON check: they judge the bytes, not
the caller's data. The scan costs one substring search of the body on the hot path.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import orjson
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from gateway.errors import UnsupportedMediaType

Handler = Callable[[Request], Coroutine[Any, Any, Response]]
_NUL_MSG = "must not contain the NUL character (\\u0000)"
_NUL_TYPE = "string_nul_character"


def _json_media_type(content_type: str) -> bool:
    media = content_type.partition(";")[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def _nul_paths(value: Any, loc: tuple[str | int, ...]) -> Iterator[tuple[str | int, ...]]:
    """Where in a parsed JSON document a string (or an object key) holds a NUL."""
    if isinstance(value, str):
        if "\x00" in value:
            yield loc
    elif isinstance(value, dict):
        for k, v in value.items():
            if "\x00" in k:
                yield (*loc, k)
            else:
                yield from _nul_paths(v, (*loc, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _nul_paths(v, (*loc, i))


def _nul_error(loc: tuple[str | int, ...]) -> dict[str, Any]:
    return {"loc": loc, "msg": _NUL_MSG, "type": _NUL_TYPE, "input": None}


async def refuse_unusable(request: Request, json_body: bool) -> None:
    """Raises what is wrong with the request's bytes (see the module's docstring), if anything."""
    errors = [_nul_error(("path", k)) for k, v in request.path_params.items() if "\x00" in str(v)]
    if "\x00" in request.url.query or "%00" in request.url.query:
        errors += [_nul_error(("query", k)) for k, v in request.query_params.multi_items() if "\x00" in k + v]
    if json_body:
        content_type = request.headers.get("content-type")
        body = await request.body()
        if body and content_type is not None and not _json_media_type(content_type):
            raise UnsupportedMediaType(
                f"Send the body as JSON with `Content-Type: application/json` (got {content_type[:80]!r}).",
                supported=["application/json"],
            )
        # JSON cannot carry a raw NUL, only its escape; the search finds both at C speed.
        if b"\\u0000" in body or b"\x00" in body:
            with contextlib.suppress(orjson.JSONDecodeError):  # FastAPI answers malformed_json
                errors += [_nul_error(loc) for loc in _nul_paths(orjson.loads(body), ("body",))]
    if errors:
        raise RequestValidationError(errors)


class GatewayRoute(APIRoute):
    def get_route_handler(self) -> Handler:
        inner = self.inner_handler()
        json_body = self.body_field is not None

        async def handler(request: Request) -> Response:
            await refuse_unusable(request, json_body)
            return await inner(request)

        return handler

    def inner_handler(self) -> Handler:
        """The handler proper (FastAPI's, unless a subclass brings its own)."""
        return super().get_route_handler()
