"""The app's routes, kept flat and found without trying each one in turn.

FastAPI 0.16x keeps an included router whole: to route a request the app walks every included
router, and for each of its routes sets and restores per-request context in the scope before the
route's own regex is tried. That walk was half of a /healthz's CPU (bench/README.md, issue #15).
Two changes, neither of which changes what a request reaches:

- `include_flat(app, router, prefix)` copies a router's routes onto the app as plain routes, as
  `include_router` did before FastAPI 0.16x (same paths, names, operations: the OpenAPI document is
  the same, tests/test_openapi.py holds it).
- `RouteIndex`, the app router's dispatch: only the routes whose literal start fits the path are
  tried, in the router's order, and the first full match is handled as Starlette's `Router.app`
  handles it. Whatever else may happen (no full match: a 404, a 405, a slash redirect; a route
  kind it does not know; FastAPI's telemetry, which records the route chosen) goes to the router's
  own walk, so the answers are the router's.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute, APIRouter, APIWebSocketRoute
from starlette.routing import Match, Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send


def include_flat(app: FastAPI, router: APIRouter, prefix: str = "") -> None:
    """`app.include_router(router, prefix=prefix)` for routers of HTTP and WebSocket routes (their
    own settings, tags and dependencies are already in each route: APIRouter merged them)."""
    for r in router.routes:
        if isinstance(r, APIRoute):
            app.router.add_api_route(
                prefix + r.path,
                r.endpoint,
                response_model=r.response_model,
                status_code=r.status_code,
                tags=r.tags,
                dependencies=r.dependencies,
                summary=r.summary,
                description=r.description,
                response_description=r.response_description,
                responses=r.responses,
                deprecated=r.deprecated,
                methods=r.methods,
                operation_id=r.operation_id,
                response_model_include=r.response_model_include,
                response_model_exclude=r.response_model_exclude,
                response_model_by_alias=r.response_model_by_alias,
                response_model_exclude_unset=r.response_model_exclude_unset,
                response_model_exclude_defaults=r.response_model_exclude_defaults,
                response_model_exclude_none=r.response_model_exclude_none,
                include_in_schema=r.include_in_schema,
                response_class=r.response_class,
                name=r.name,
                route_class_override=type(r),
                callbacks=r.callbacks,
                openapi_extra=r.openapi_extra,
                generate_unique_id_function=r.generate_unique_id_function,
                strict_content_type=r.strict_content_type,
                max_body_size=r.max_body_size,
                form_limits=r.form_limits or None,
            )
        elif isinstance(r, APIWebSocketRoute):
            app.router.add_api_websocket_route(
                prefix + r.path, r.endpoint, name=r.name, dependencies=r.dependencies
            )
        else:
            raise TypeError(
                f"include_flat: {type(r).__name__} {getattr(r, 'path', '')!r} is not an API route"
            )


def _literal(route: Any) -> tuple[str, bool] | None:
    """The part of a route's path before its first parameter, and whether that is the whole path;
    None for a route the index does not know (it is then tried for every path)."""
    if type(route) not in _KNOWN and not isinstance(route, APIRoute | APIWebSocketRoute):
        return None
    path: str = route.path
    at = path.find("{")
    return (path, True) if at < 0 else (path[:at], False)


_KNOWN = (Route, WebSocketRoute)
FOUND = "gateway.route"  # the scope's key for a match the edge found and left to the router


def _first_segment(path: str) -> str:
    return path[1:].partition("/")[0]


class RouteIndex:
    """Wraps the app router's dispatch (`app.router.middleware_stack`); built from its routes on
    first use, and again whenever a route is added."""

    def __init__(self, app: FastAPI) -> None:
        self.router = app.router
        self.fallback: ASGIApp = app.router.middleware_stack
        self._count = -1
        self._buckets: dict[str, list[tuple[Any, str, bool]]] = {}
        self._anywhere: list[tuple[Any, str, bool]] = []
        self._usable = False

    def _build(self) -> None:
        routes = list(self.router.routes)
        self._count = len(routes)
        # Form limits or nested routers: Router.app does more than the index repeats; let it route.
        self._usable = not getattr(self.router, "form_limits", None) and all(
            not hasattr(r, "original_router") for r in routes
        )
        entries: list[tuple[Any, str | None, str, bool]] = []
        for r in routes:
            literal = _literal(r)
            if literal is None:
                entries.append((r, None, "", False))
                continue
            text, exact = literal
            # A parameter inside the first segment (`/{x}`): the route may fit any first segment.
            complete = exact or "/" in text[1:]
            entries.append((r, _first_segment(text) if complete else None, text, exact))
        segments = {seg for _, seg, _, _ in entries if seg is not None}
        self._buckets = {
            seg: [(r, text, exact) for r, s, text, exact in entries if s is None or s == seg]
            for seg in segments
        }
        self._anywhere = [(r, text, exact) for r, s, text, exact in entries if s is None]

    def match(self, scope: Scope) -> tuple[Any, Scope] | None:
        """The route a request reaches and the scope it adds (Starlette's first full match), or None
        when the router's own walk must decide."""
        if len(self.router.routes) != self._count:
            self._build()
        kind = scope["type"]
        if (
            not self._usable
            or (kind != "http" and kind != "websocket")
            or scope.get("root_path")
            or "fastapi.telemetry" in scope
        ):
            return None
        path: str = scope["path"]
        for route, text, exact in self._buckets.get(_first_segment(path), self._anywhere):
            if (path != text) if exact else not path.startswith(text):
                continue  # its regex cannot match: the literal start differs
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                return route, child_scope
            # Partial (the path fits, the method does not: GET /v1/payments before its POST): as
            # Router.app, a later full match wins; with none, the router answers from the partial.
        return None

    def enter(self, scope: Scope, child_scope: Scope) -> None:
        """As Starlette's Router.app does with the first full match, before handling it."""
        scope.setdefault("router", self.router)
        scope.update(child_scope)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Found already by the app's edge (gateway/edge.py), which routes its lean routes itself.
        found = scope.pop(FOUND, None) or self.match(scope)
        if found is None:
            await self.fallback(scope, receive, send)
            return
        route, child_scope = found
        self.enter(scope, child_scope)
        await route.handle(scope, receive, send)


def install_route_index(app: FastAPI) -> None:
    app.router.middleware_stack = RouteIndex(app)
