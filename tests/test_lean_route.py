"""LeanRoute reads plain optional headers itself: its answers must be FastAPI's own handler's."""

from __future__ import annotations

from typing import Annotated

import httpx
import pytest
from fastapi import Depends, FastAPI, Header
from fastapi.routing import APIRoute
from starlette.responses import JSONResponse

from gateway.api.lean import LeanRoute, _plain_headers


async def _key(idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None) -> str | None:
    return idempotency_key


async def _trace(x_trace: Annotated[str | None, Header()] = None) -> str | None:
    return x_trace


async def _bounded(x_short: Annotated[str | None, Header(max_length=3)] = None) -> str | None:
    return x_short


async def endpoint(
    key: Annotated[str | None, Depends(_key)],
    trace: Annotated[str | None, Depends(_trace)],
    short: Annotated[str | None, Depends(_bounded)],
    x_own: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    return JSONResponse({"key": key, "trace": trace, "short": short, "own": x_own})


def _app() -> FastAPI:
    app = FastAPI()
    app.router.add_api_route("/lean", endpoint, methods=["GET"], route_class_override=LeanRoute)
    app.router.add_api_route("/framework", endpoint, methods=["GET"], route_class_override=APIRoute)
    return app


def test_only_unconstrained_optional_string_headers_are_plain() -> None:
    route = next(r for r in _app().routes if getattr(r, "path", "") == "/lean")
    assert isinstance(route, LeanRoute)
    deps = {d.call: d for d in route.dependant.dependencies}
    assert _plain_headers(deps[_key].header_params) == (("idempotency_key", "Idempotency-Key"),)
    assert _plain_headers(deps[_trace].header_params) == (("x_trace", "x-trace"),)
    assert _plain_headers(deps[_bounded].header_params) is None  # its max_length is FastAPI's to check
    assert _plain_headers(route.dependant.header_params) == (("x_own", "x-own"),)


@pytest.mark.parametrize(
    "headers",
    [
        [],
        [("Idempotency-Key", "k1")],
        [("idempotency-key", "")],
        [("IDEMPOTENCY-KEY", "first"), ("Idempotency-Key", "second")],
        [("x-trace", "t"), ("x_trace", "underscored")],
        [("x_own", "o"), ("x-own", "dashed")],
        [("x-short", "abc"), ("x_short", "abcd")],
        [("x-short", "abcd")],  # too long: a 422 either way
        [("Idempotency-Key", "caf\xe9".encode("latin-1"))],  # latin-1, as HTTP carries it
    ],
)
async def test_lean_headers_are_what_fastapi_gives(headers: list[tuple[str, str | bytes]]) -> None:
    raw = [(k.encode(), v if isinstance(v, bytes) else v.encode()) for k, v in headers]
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        lean = await client.get("/lean", headers=raw)
        framework = await client.get("/framework", headers=raw)
    assert (lean.status_code, lean.json()) == (framework.status_code, framework.json())
    assert lean.status_code == (422 if ("x-short", "abcd") in headers else 200)
