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
from starlette.requests import Request
from starlette.responses import Response

from gateway.api.routing import GatewayRoute, Handler


class LeanRoute(GatewayRoute):
    def inner_handler(self) -> Handler:
        dependant = self.dependant
        extra = (
            dependant.query_params,
            dependant.header_params,
            dependant.cookie_params,
            dependant.body_params,
        )
        if any(extra) or dependant.background_tasks_param_name or dependant.response_param_name:
            raise TypeError(f"{self.path}: a LeanRoute takes only the request and path parameters")
        calls: list[tuple[str, str, Callable[..., Any]]] = []
        for sub in dependant.dependencies:
            plain = not (
                sub.dependencies
                or sub.path_params
                or sub.query_params
                or sub.header_params
                or sub.body_params
            )
            if not plain or sub.request_param_name is None or sub.name is None or sub.call is None:
                raise TypeError(f"{self.path}: a LeanRoute's dependencies take the request alone")
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
