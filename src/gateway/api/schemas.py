"""Schemas shared by every endpoint: the problem document, for the OpenAPI error responses."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field, WithJsonSchema

from gateway.problems import PROBLEM_JSON

# The payment as `GET /v1/payments/{id}` shows it. By reference, not by import: the payments package
# sits above this one (gateway.openapi and tests/test_openapi.py check that the reference resolves).
_PAYMENT_OR_NULL = {"anyOf": [{"$ref": "#/components/schemas/PaymentOut"}, {"type": "null"}]}


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    """RFC 9457 problem details, with a stable machine `code` and the request's id.

    The members after `request_id` appear only where the `code` has them (docs/api.md)."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    request_id: str | None = None
    errors: list[FieldError] | None = Field(None, description="Validation: every field that failed")
    param: str | None = Field(None, description="The parameter or field the error is about")
    supported: list[str] | None = Field(
        None,
        description="`currency_not_supported`: the provider's currencies; `unsupported_media_type`: "
        "the media types the server reads",
    )
    limit: int | None = Field(None, description="`payload_too_large`: the largest body taken, in bytes")
    remaining: int | None = Field(
        None, description="`refund_exceeds_remaining`: minor units still refundable"
    )
    currency: str | None = Field(
        None,
        description="`refund_exceeds_remaining`: the payment's currency; `cash_session_currency_mismatch`: "
        "the session's",
    )
    status_now: str | None = Field(
        None, description="`payment_not_cancelable`, `payment_not_refundable`: the payment's status"
    )
    payment: Annotated[dict[str, Any] | None, WithJsonSchema(_PAYMENT_OR_NULL)] = Field(
        None,
        description="A decline (402) or a provider failure (502, 504): the payment as it stands now",
    )
    refund: str | None = Field(
        None, description="A provider failure while refunding: the id of the refund left pending"
    )
    required_scope: str | None = Field(
        None, description="`insufficient_scope`: the scope the request needs (null: a secret key)"
    )
    error: str | None = Field(
        None,
        description="POST /v1/oauth/token: RFC 6749's error name (`invalid_client`, `invalid_scope`, ...)",
    )
    refused: list[dict[str, str]] | None = Field(
        None,
        description="`no_route`: the providers whose routing rules held but which cannot take the "
        "payment (`provider`, `code`, `detail`)",
    )
    cash_session: str | None = Field(
        None, description="`cash_session_already_open`: the id of the drawer's open session"
    )


_DESCRIPTIONS = {
    400: "Malformed request: the body is not JSON, or the Idempotency-Key is missing or not valid",
    401: "Missing or invalid API key or access token",
    403: "The key may not do this (a restricted key outside its scopes, a publishable key), or the "
    "merchant is disabled",
    402: "The provider declined the payment: `payment` is the failed payment",
    404: "No such object (or it belongs to another merchant)",
    409: "Conflict: a request with this key is in progress, or the object's state forbids it",
    413: "The request body is larger than the server takes",
    415: "The request body is not `application/json`",
    422: "Validation failed",
    429: "Too many requests for this key (or failed authentications from this address): retry after "
    "`Retry-After` seconds",
    502: "The payment provider failed: `payment` is the payment, still pending",
    503: "A backing service (PostgreSQL, Redis) is unavailable: retry after `Retry-After` seconds",
    504: "The payment provider did not answer in time: `payment` is the payment, still pending",
}
_RETRY_AFTER = {
    "Retry-After": {"description": "Seconds to wait before retrying", "schema": {"type": "integer"}}
}
# The IETF RateLimit fields on every answer of a rate-limited operation (docs/api.md, "Rate limits").
RATE_LIMIT_HEADERS = {
    "RateLimit-Limit": {
        "description": "Requests allowed in the window (per key; per address on /v1/admin)",
        "schema": {"type": "integer"},
    },
    "RateLimit-Remaining": {"description": "Requests left in the window", "schema": {"type": "integer"}},
    "RateLimit-Reset": {
        "description": "Seconds until the oldest request counted leaves the window",
        "schema": {"type": "integer"},
    },
}


def documented_error(status: int, description: str | None = None) -> dict[str, Any]:
    """One error response as OpenAPI declares it: the Problem schema under problem+json
    (gateway.openapi moves the model's schema there from FastAPI's default media type)."""
    response: dict[str, Any] = {
        "model": Problem,
        "description": description or _DESCRIPTIONS[status],
        "content": {PROBLEM_JSON: {}},
    }
    if status in (409, 503):  # idempotency_key_in_use; an outage
        response["headers"] = _RETRY_AFTER
    elif status == 429:
        response["headers"] = {**_RETRY_AFTER, **RATE_LIMIT_HEADERS}
    return response


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The errors particular to an operation; those every /v1 operation shares (400, 401, 413, 415,
    422, 503) are added to all of them by gateway.openapi."""
    return {s: documented_error(s) for s in statuses}


def query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """OpenAPI parameters for a query string a handler validates itself with `model` (named types
    referenced from the document's components, where gateway.openapi puts them)."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    required = set(schema.get("required", ()))
    return [
        {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": {k: v for k, v in prop.items() if k not in ("description", "title")},
            **({"description": prop["description"]} if "description" in prop else {}),
        }
        for name, prop in schema["properties"].items()
    ]
