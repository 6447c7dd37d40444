"""`GatewayRoute`, the route class of every /v1 endpoint: it refuses, before FastAPI parses anything,
the bytes no schema could fix.

- A JSON endpoint sent a body of another media type (`text/plain`, a form) or of none is 415
  `unsupported_media_type`, not a 422 about the body's shape (FastAPI's strict content type: a
  browser's cross-site "simple request" cannot send `application/json`).
- A NUL character (`\\u0000`) in any string of the body, the path or the query is 422
  `validation_error` naming where it is: PostgreSQL cannot store it in text or JSONB, so letting it
  through would end in a 500 after part of the work was done. So is an unpaired surrogate escape
  (`\\ud800`), which is not Unicode at all.

Both run before authentication, like FastAPI's own malformed-JSON check: they judge the bytes, not
the caller's data. The scan costs one substring search of the body on the hot path.
"""

from __future__ import annotations

import json
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
_SURROGATE_MSG = "must be valid Unicode: an unpaired surrogate (\\ud800-\\udfff) is not"
_NUL_TYPE = "string_nul_character"


def _json_media_type(content_type: str) -> bool:
    media = content_type.partition(";")[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def _unstorable(text: str) -> bool:
    """A NUL, or a lone surrogate (`\\ud800`-`\\udfff` unpaired: not Unicode, not encodable)."""
    return "\x00" in text or any("\ud800" <= c <= "\udfff" for c in text)


def _bad_paths(value: Any, loc: tuple[str | int, ...]) -> Iterator[tuple[str | int, ...]]:
    """Where in a parsed JSON document a string (or an object key) cannot be stored."""
    if isinstance(value, str):
        if _unstorable(value):
            yield loc
    elif isinstance(value, dict):
        for k, v in value.items():
            if _unstorable(k):
                yield (*loc, k)
            else:
                yield from _bad_paths(v, (*loc, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _bad_paths(v, (*loc, i))


def _nul_error(loc: tuple[str | int, ...]) -> dict[str, Any]:
    return {"loc": loc, "msg": _NUL_MSG, "type": _NUL_TYPE, "input": None}


def _body_errors(body: bytes) -> list[dict[str, Any]]:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        # orjson refuses lone surrogates, which Python's json (FastAPI's parser) lets through.
        try:
            document = json.loads(body)
        except ValueError:
            return []  # FastAPI answers malformed_json
    errors = []
    for loc in _bad_paths(document, ("body",)):
        text = loc[-1] if isinstance(loc[-1], str) and _unstorable(loc[-1]) else _at(document, loc[1:])
        if isinstance(text, str) and "\x00" not in text:
            errors.append({"loc": loc, "msg": _SURROGATE_MSG, "type": "string_unicode", "input": None})
        else:
            errors.append(_nul_error(loc))
    return errors


def _at(document: Any, path: tuple[str | int, ...]) -> Any:
    for step in path:
        document = document[step]
    return document


async def refuse_unusable(request: Request, json_body: bool) -> None:
    """Raises what is wrong with the request's bytes (see the module's docstring), if anything."""
    errors = [_nul_error(("path", k)) for k, v in request.path_params.items() if "\x00" in str(v)]
    # The raw query string (Starlette's `url.query` is these bytes as latin-1, but builds the URL).
    query: bytes = request.scope.get("query_string", b"")
    if b"\x00" in query or b"%00" in query:
        errors += [_nul_error(("query", k)) for k, v in request.query_params.multi_items() if "\x00" in k + v]
    if json_body:
        content_type = request.headers.get("content-type")
        body = await request.body()
        if body and not (content_type and _json_media_type(content_type)):
            raise UnsupportedMediaType(
                "Send the body as JSON with `Content-Type: application/json` "
                f"(got {(content_type or 'none')[:80]!r}).",
                supported=["application/json"],
            )
        # JSON carries a NUL or a surrogate only as an escape (a raw NUL is malformed anyway); the
        # searches run at C speed, and only a hit costs a parse.
        if b"\\u0000" in body or b"\x00" in body or b"\\ud" in body or b"\\uD" in body:
            errors += _body_errors(body)
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
