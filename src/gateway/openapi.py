"""The OpenAPI document the app serves: FastAPI's, made as true and as typed as the server.

FastAPI derives the operations, parameters and models from the routes. What it cannot know is
added here, once, for every operation (tests/test_openapi.py holds the result to it):
- errors are `application/problem+json` with the `Problem` schema (FastAPI puts a response model
  under the route's own media type), never FastAPI's `HTTPValidationError`;
- the errors every /v1 operation can answer whatever it does (400, 401, 403, 413, 415, 422, 503), and
  on the rate-limited ones (all of /v1 but the providers' webhooks) 429 and the RateLimit-* headers;
- `Idempotency-Key` is required where the route requires it (the dependency takes it as optional,
  so that a missing key is our 400 `idempotency_key_missing`, not a framework 422);
- list cursors carry the pattern of the ids they must be; an event's `data.object` is a payment or
  a refund, told apart by `object`; create_payment links to the operations on what it created.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

from gateway.api.ratelimit import limited
from gateway.api.schemas import RATE_LIMIT_HEADERS, documented_error
from gateway.idempotency.guard import requires_idempotency_key
from gateway.problems import PROBLEM_JSON

REF = "#/components/schemas/"
_PROBLEM_REF = REF + "Problem"
_ID_BODY = "[0-9a-hjkmnp-tv-z]{26}"  # gateway.kit.ids
# The id prefix each list's cursors must carry (the routes check them with checked_page).
CURSOR_PREFIXES = {
    "list_payments": "pay",
    "list_payment_events": "evt",
    "list_events": "evt",
    "list_refunds": "re",
    "list_payment_refunds": "re",
    "list_webhook_endpoints": "we",
    "list_webhook_deliveries": "whd",
    "list_api_keys": "key",
    "list_merchants": "mer",
    "list_payment_links": "plink",
    "list_payouts": "po",
    "list_cash_sessions": "cds",
}
_MUTATING = ("post", "put", "patch", "delete")
# gateway.idempotency.store.valid_key: 1-255 printable ASCII characters. Not starting or ending with a
# space, which HTTP strips from a header's value.
IDEMPOTENCY_KEY_SCHEMA = {
    "type": "string",
    "minLength": 1,
    "maxLength": 255,
    "pattern": "^[!-~]([ -~]{0,253}[!-~])?$",
}
_CREATED_PAYMENT_LINKS = {
    "retrieve_payment": "RetrievePayment",
    "create_refund": "RefundPayment",
    "cancel_payment": "CancelPayment",
    "sync_payment": "SyncPayment",
    "list_payment_events": "ListPaymentEvents",
}


def install_openapi(app: FastAPI) -> None:
    """`app.openapi()` returns the refined document (built once, on first use)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            refine(FastAPI.openapi(app), app)
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]


def refine(doc: dict[str, Any], app: FastAPI) -> dict[str, Any]:
    schemas: dict[str, Any] = doc["components"]["schemas"]
    required_key = {r.operation_id for r in _api_routes(app.routes) if requires_idempotency_key(r)}
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            responses: dict[str, Any] = op["responses"]
            if path.startswith("/v1/"):
                _shared_errors(method, op, responses)
                if limited(path):
                    _rate_limited(responses)
            for status, response in responses.items():
                if int(status) >= 400:
                    _problem_json(response)
            params = op.get("parameters", [])
            for param in params:
                param["schema"] = _not_null(param["schema"])
                if param["name"] == "Idempotency-Key":
                    param["required"] = op["operationId"] in required_key
                    param["description"] = (
                        "Required: a retry with the same key never moves money twice (docs/api.md)"
                        if param["required"]
                        else "Optional: a retry with the same key is answered from the first"
                    )
                    param["schema"] = IDEMPOTENCY_KEY_SCHEMA
                elif param["name"] in ("starting_after", "ending_before"):
                    prefix = CURSOR_PREFIXES[op["operationId"]]
                    param["schema"]["pattern"] = f"^{prefix}_{_ID_BODY}$"
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    _typed_event_object(schemas)
    _objects_always_sent(schemas)
    create = doc["paths"]["/v1/payments"]["post"]["responses"]["201"]
    create["links"] = {
        link: {"operationId": op, "parameters": {"payment_id": "$response.body#/id"}}
        for op, link in _CREATED_PAYMENT_LINKS.items()
    }
    app.openapi_schema = doc
    return doc


def _api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        # FastAPI 0.16x keeps an included router whole (its routes under `original_router`).
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _api_routes(included.routes)


def _shared_errors(method: str, op: dict[str, Any], responses: dict[str, Any]) -> None:
    has_input = bool(op.get("parameters") or op.get("requestBody"))
    shared = [400, 503]
    if op.get("security"):
        shared += [401, 403]
    if has_input:
        shared.append(422)
    if method in _MUTATING:
        shared.append(413)
    if "requestBody" in op:
        shared.append(415)
    for status in shared:
        if str(status) not in responses:
            response = documented_error(status)
            response.pop("model")
            response["content"] = {PROBLEM_JSON: {"schema": {"$ref": _PROBLEM_REF}}}
            responses[str(status)] = response


def _rate_limited(responses: dict[str, Any]) -> None:
    """429 and the RateLimit-* headers on success (gateway.api.ratelimit answers them all)."""
    for status, response in responses.items():
        if status.startswith("2"):
            response["headers"] = {**response.get("headers", {}), **RATE_LIMIT_HEADERS}
    if "429" not in responses:
        response = documented_error(429)
        response.pop("model")
        response["content"] = {PROBLEM_JSON: {"schema": {"$ref": _PROBLEM_REF}}}
        responses["429"] = response


def _problem_json(response: dict[str, Any]) -> None:
    """An error's schema under problem+json, the media type the server sends; 422s included, which
    FastAPI declares as its own HTTPValidationError."""
    content = response.get("content", {})
    plain = content.get("application/json", {}).get("schema", {})
    if plain.get("$ref", "").endswith("/HTTPValidationError"):
        response["description"] = "Validation failed: `errors` lists each field"
        plain = {"$ref": _PROBLEM_REF}
    if PROBLEM_JSON in content or plain == {"$ref": _PROBLEM_REF}:
        content.pop("application/json", None)
        content[PROBLEM_JSON] = {"schema": plain or content.get(PROBLEM_JSON, {}).get("schema")}


def _not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query or header value is absent or a string, never JSON null: `X | None` is just X."""
    options = schema.get("anyOf")
    if options and len(options) == 2 and {"type": "null"} in options:
        inner = next(o for o in options if o != {"type": "null"})
        rest = {k: v for k, v in schema.items() if k not in ("anyOf", "title")}
        return {**inner, **rest}
    return {k: v for k, v in schema.items() if k != "title"}


def _typed_event_object(schemas: dict[str, Any]) -> None:
    """An event's `data.object` is the payment, the refund, the payout or the cash session as the API
    showed it then."""
    data = schemas["EventData"]["properties"]
    objects = {
        "payment": "PaymentOut",
        "refund": "RefundOut",
        "payout": "PayoutOut",
        "cash_session": "CashSessionOut",
    }
    data["object"] = {
        "oneOf": [{"$ref": REF + name} for name in objects.values()],
        "discriminator": {
            "propertyName": "object",
            "mapping": {kind: REF + name for kind, name in objects.items()},
        },
        "description": "The object as the API showed it then; a `*.transition_rejected` event's also "
        "carries `rejected` {target_status, reason}",
    }


def _objects_always_sent(schemas: dict[str, Any]) -> None:
    """Response objects always carry their `object` (a default in the model, so FastAPI leaves it
    out of `required`); clients and the event discriminator rely on it."""
    for schema in schemas.values():
        props = schema.get("properties", {})
        if "const" in props.get("object", {}) and schema.get("additionalProperties") is not False:
            required = schema.setdefault("required", [])
            if "object" not in required:
                required.insert(0, "object")
