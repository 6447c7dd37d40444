"""A route class for the hot endpoints: FastAPI documents them, a lean handler runs them.

FastAPI's general request handler (its dependency solver, exit stacks, parameter machinery) cost
a GET of a payment more than the database query, and a quarter of a create (bench/README.md).
`LeanRoute` keeps everything FastAPI derives from the endpoint's signature (the OpenAPI operation,
the parameters' validation) and replaces only the per-request handler (GatewayRoute's checks still
run first). It runs what the hot endpoints take: the request, path and header parameters, one JSON
body model, and coroutine dependencies of the request and headers (the principal, the
Idempotency-Key), in FastAPI's order (dependencies, then path, header and body errors together)
and with FastAPI's own validation functions, so the answers are FastAPI's. Anything else is
refused when the route is built, not at request time.
"""

from __future__ import annotations

import email.message
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from types import UnionType
from typing import Any, Union, get_args, get_origin

import annotated_types
from fastapi import params
from fastapi._compat import ModelField, Undefined
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import _get_param_aliases, request_body_to_args, request_params_to_args
from fastapi.exceptions import HTTPException, RequestValidationError
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.api.routing import GatewayRoute, Handler


class LeanRoute(GatewayRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        framework_app = self.app
        self.app = lean_app(self.get_route_handler(), framework_app, kwargs.get("max_body_size"))
        # The app's edge may run it without the framework's layers (gateway/edge.py).
        self.edge_ready = self.app is not framework_app

    def inner_handler(self) -> Handler:
        return lean_handler(self)


class BareLeanRoute(APIRoute):
    """A lean handler without GatewayRoute's checks of the bytes (which are about /v1's bodies and
    inputs): for the health probes, which take nothing and must stay the cheapest answer there is."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        framework_app = self.app
        self.app = lean_app(self.get_route_handler(), framework_app, kwargs.get("max_body_size"))
        self.edge_ready = self.app is not framework_app

    def get_route_handler(self) -> Handler:
        return lean_handler(self)


def lean_app(handler: Handler, framework_app: ASGIApp, max_body_size: int | None) -> ASGIApp:
    """The route's ASGI app: FastAPI's `request_response` less what a lean handler never uses, its
    two exit stacks (for dependencies with `yield`, which a lean route refuses) and its exception
    boundary (the app's edge, or its ExceptionMiddleware just outside the router, renders what the
    handler raises with the same handlers). A route with a body limit of its own keeps FastAPI's app."""
    if max_body_size is not None:
        return framework_app

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        response = await handler(Request(scope, receive, send))
        await response(scope, receive, send)

    return app


_FAILED = object()  # a dependency not called: its parameters had errors


def _within(value: Any, shortest: int, longest: int | None) -> bool:
    return type(value) is str and shortest <= len(value) and (longest is None or len(value) <= longest)


def _plain_str_params(fields: list[ModelField]) -> tuple[tuple[str, str, int, int | None], ...] | None:
    """(name, alias, min length, max length) of each path parameter when every one is a plain `str`
    bounded at most by its length (`PaymentId`); None when any is not (FastAPI validates them)."""
    plain = []
    for field in fields:
        info = field.field_info
        if info.annotation is not str or info.validation_alias is not None:
            return None
        shortest, longest = 0, None
        for constraint in info.metadata:
            if isinstance(constraint, annotated_types.MinLen):
                shortest = constraint.min_length
            elif isinstance(constraint, annotated_types.MaxLen):
                longest = constraint.max_length
            else:  # a pattern, strictness, a validator: FastAPI's
                return None
        plain.append((field.name, field.alias, shortest, longest))
    return tuple(plain)


def _plain_headers(fields: list[ModelField]) -> tuple[tuple[str, str], ...] | None:
    """(name, header) of each header parameter when every one is an optional `str` with no default
    but None and no constraint (`Idempotency-Key`): FastAPI's validation gives such a header's value
    as it came, or None. None when any is not (FastAPI validates them)."""
    plain = []
    for field in fields:
        info = field.field_info
        aliases = _get_param_aliases(field)
        if (
            not isinstance(info, params.Header)
            or get_origin(info.annotation) not in (Union, UnionType)
            or set(get_args(info.annotation)) != {str, type(None)}
            or info.metadata
            or info.default is not None
            or info.default_factory is not None
            or len(aliases) != 1
        ):
            return None
        plain.append((field.name, aliases[0][1]))
    return tuple(plain)


def _header_values(
    fields: list[ModelField], plain: tuple[tuple[str, str], ...] | None, request: Request, errors: list[Any]
) -> dict[str, Any]:
    """FastAPI's request_params_to_args for headers; plain ones read as they are (its per-parameter
    work, run on every request, was ~5% of a create's CPU in process)."""
    if plain is not None:
        headers = request.headers
        return {name: headers.get(header) for name, header in plain}
    values, header_errors = request_params_to_args(fields, request.headers)
    errors.extend(header_errors)
    return values


@dataclass(frozen=True)
class _Dep:
    """A dependency as FastAPI resolves it: its own dependencies first, then its headers."""

    name: str | None
    call: Callable[..., Any]
    request_name: str | None
    headers: list[ModelField]
    plain_headers: tuple[tuple[str, str], ...] | None
    subs: tuple[_Dep, ...]
    cached: bool


def _dep(sub: Dependant, path: str) -> _Dep:
    unsupported = (
        sub.path_params
        or sub.query_params
        or sub.cookie_params
        or sub.body_params
        or sub.websocket_param_name
        or sub.http_connection_param_name
        or sub.response_param_name
        or sub.background_tasks_param_name
        or sub.security_scopes_param_name
        or sub.concurrency is not None
    )
    if unsupported or sub.call is None or not inspect.iscoroutinefunction(_function(sub.call)):
        raise TypeError(f"{path}: a LeanRoute's dependencies are coroutines of the request and headers")
    return _Dep(
        sub.name,
        sub.call,
        sub.request_param_name,
        list(sub.header_params),
        _plain_headers(sub.header_params),
        tuple(_dep(s, path) for s in sub.dependencies),
        sub.use_cache,
    )


def _function(call: Callable[..., Any]) -> Any:
    return call if inspect.isfunction(call) or inspect.ismethod(call) else getattr(call, "__call__", None)  # noqa: B004


async def _solve(
    subs: tuple[_Dep, ...], request: Request, cache: dict[Any, Any], errors: list[Any]
) -> dict[str, Any]:
    """FastAPI's solve_dependencies for these dependencies: in order, each after its own, each not
    called when its parameters had errors (collected), each called once per request when cached."""
    values: dict[str, Any] = {}
    for dep in subs:
        solved = await _call(dep, request, cache, errors)
        if solved is not _FAILED and dep.name is not None:
            values[dep.name] = solved
    return values


async def _call(dep: _Dep, request: Request, cache: dict[Any, Any], errors: list[Any]) -> Any:
    before = len(errors)
    values = await _solve(dep.subs, request, cache, errors)
    if dep.headers:
        values.update(_header_values(dep.headers, dep.plain_headers, request, errors))
    if len(errors) > before:
        return _FAILED
    if dep.cached and dep.call in cache:
        return cache[dep.call]
    if dep.request_name is not None:
        values[dep.request_name] = request
    solved = await dep.call(**values)
    cache.setdefault(dep.call, solved)
    return solved


async def _json_body(request: Request, strict: bool) -> Any:
    """The body as FastAPI's request handler reads it for a JSON body parameter."""
    try:
        body_bytes = await request.body()
        if not body_bytes:
            return Undefined
        content_type = request.headers.get("content-type")
        if content_type == "application/json":  # the usual case, without parsing the header
            return await request.json()
        if not content_type:
            return await request.json() if not strict else body_bytes
        message = email.message.Message()
        message["content-type"] = content_type
        if message.get_content_maintype() == "application":
            subtype = message.get_content_subtype()
            if subtype == "json" or subtype.endswith("+json"):
                return await request.json()
        return body_bytes
    except json.JSONDecodeError as e:
        error = {"type": "json_invalid", "loc": ("body", e.pos), "msg": "JSON decode error", "input": {}}
        raise RequestValidationError([{**error, "ctx": {"error": e.msg}}], body=e.doc) from e
    except HTTPException:
        raise
    except Exception as e:
        raise HTTPException(status_code=400, detail="There was an error parsing the body") from e


def lean_handler(route: APIRoute) -> Handler:
    """The route's endpoint called with what FastAPI would give it (the request, path and header
    parameters, a JSON body model, coroutine dependencies of the request and headers), in FastAPI's
    order and with its own validation and error shapes; refuses at build time what it cannot run."""
    dependant = route.dependant
    unsupported = (
        dependant.query_params
        or dependant.cookie_params
        or dependant.background_tasks_param_name
        or dependant.response_param_name
        or dependant.websocket_param_name
        or dependant.http_connection_param_name
        or dependant.security_scopes_param_name
        or len(dependant.body_params) > 1
        or (route.body_field is not None and isinstance(route.body_field.field_info, params.Form))
    )
    if unsupported:
        raise TypeError(
            f"{route.path}: a LeanRoute takes only the request and path parameters, headers, one JSON body"
        )
    subs = tuple(_dep(sub, route.path) for sub in dependant.dependencies)
    path_params = dependant.path_params
    plain_path = _plain_str_params(path_params)
    header_params = dependant.header_params
    plain_headers = _plain_headers(header_params)
    body_params = dependant.body_params
    embed = route._embed_body_fields
    strict = bool(route.strict_content_type)
    request_name = dependant.request_param_name
    endpoint = dependant.call
    assert endpoint is not None

    async def handler(request: Request) -> Response:
        body = await _json_body(request, strict) if body_params else Undefined
        errors: list[Any] = []
        cache: dict[Any, Any] = {}
        values = await _solve(subs, request, cache, errors)  # dependencies first, as FastAPI (401 before 422)
        # FastAPI's own validation of each parameter: the same coercions and error shapes.
        if path_params:
            # A path's strings within their lengths are what FastAPI's validation would give (the
            # same str) at a fraction of its per-parameter cost; anything else, and every error, is
            # FastAPI's own.
            received = request.path_params
            if plain_path is not None and all(
                _within(received.get(alias), shortest, longest) for _, alias, shortest, longest in plain_path
            ):
                for name, alias, _, _ in plain_path:
                    values[name] = received[alias]
            else:
                path_values, path_errors = request_params_to_args(path_params, received)
                values.update(path_values)
                errors += path_errors
        if header_params:
            values.update(_header_values(header_params, plain_headers, request, errors))
        if body_params:
            body_values, body_errors = await request_body_to_args(body_params, body, embed)
            values.update(body_values)
            errors += body_errors
        if errors:
            raise RequestValidationError(errors, body=body if body is not Undefined else None)
        if request_name is not None:
            values[request_name] = request
        response: Response = await endpoint(**values)
        return response

    return handler
