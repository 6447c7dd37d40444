"""A route class for the hot read endpoints: FastAPI documents them, a lean handler runs them.

FastAPI's general request handler (its dependency solver, exit stacks, parameter machinery) cost
a GET of a payment more than the database query (bench/README.md). `LeanRoute` keeps everything
FastAPI derives from the endpoint's signature (the OpenAPI operation, the path's validation) and
replaces only the per-request handler (GatewayRoute's checks still run first), for endpoints whose
parameters are the request, path parameters, and dependencies that take the request alone (the
principal). Anything else is refused when the route is built, not at request time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.dependencies.utils import request_params_to_args
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.api.routing import GatewayRoute, Handler


class LeanRoute(GatewayRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        self.app = lean_app(self.get_route_handler(), self.app, kwargs.get("max_body_size"))

    def inner_handler(self) -> Handler:
        return lean_handler(self)


class BareLeanRoute(APIRoute):
    """A lean handler without GatewayRoute's checks of the bytes (which are about /v1's bodies and
    inputs): for the health probes, which take nothing and must stay the cheapest answer there is."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        self.app = lean_app(self.get_route_handler(), self.app, kwargs.get("max_body_size"))

    def get_route_handler(self) -> Handler:
        return lean_handler(self)


def lean_app(handler: Handler, framework_app: ASGIApp, max_body_size: int | None) -> ASGIApp:
    """The route's ASGI app: FastAPI's `request_response` less what a lean handler never uses, its
    two exit stacks (for dependencies with `yield`, which a lean route refuses) and its exception
    boundary (the app's ExceptionMiddleware, just outside the router, renders what the handler
    raises with the same handlers). A route with a body limit of its own keeps FastAPI's app."""
    if max_body_size is not None:
        return framework_app

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        response = await handler(Request(scope, receive, send))
        await response(scope, receive, send)

    return app


def lean_handler(route: APIRoute) -> Handler:
    """The route's endpoint called with its request, path parameters and principal-like
    dependencies, FastAPI's own checks of them kept; refuses at build time what it cannot run."""
    dependant = route.dependant
    extra = (
        dependant.query_params,
        dependant.header_params,
        dependant.cookie_params,
        dependant.body_params,
    )
    if any(extra) or dependant.background_tasks_param_name or dependant.response_param_name:
        raise TypeError(f"{route.path}: a LeanRoute takes only the request and path parameters")
    calls: list[tuple[str, str, Callable[..., Any]]] = []
    for sub in dependant.dependencies:
        plain = not (
            sub.dependencies or sub.path_params or sub.query_params or sub.header_params or sub.body_params
        )
        if not plain or sub.request_param_name is None or sub.name is None or sub.call is None:
            raise TypeError(f"{route.path}: a LeanRoute's dependencies take the request alone")
        calls.append((sub.name, sub.request_param_name, sub.call))
    path_params = dependant.path_params
    request_name = dependant.request_param_name
    endpoint = dependant.call
    assert endpoint is not None

    async def handler(request: Request) -> Response:
        values: dict[str, Any] = {}
        for name, request_param, call in calls:  # dependencies first, as FastAPI (401 before 422)
            values[name] = await call(**{request_param: request})
        # FastAPI's own validation of path parameters: the same coercions and error shapes.
        path_values, errors = request_params_to_args(path_params, request.path_params)
        if errors:
            raise RequestValidationError(errors)
        values.update(path_values)
        if request_name is not None:
            values[request_name] = request
        response: Response = await endpoint(**values)
        return response

    return handler
