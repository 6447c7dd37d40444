"""Schemas shared by every endpoint: the problem document, for the OpenAPI error responses."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    """RFC 9457 problem details, with a stable machine `code` and the request's id."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    request_id: str | None = None
    errors: list[FieldError] | None = None


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    descriptions = {
        400: "Malformed request or missing Idempotency-Key",
        401: "Missing or invalid API key",
        402: "The provider declined the payment",
        404: "No such object (or it belongs to another merchant)",
        409: "Conflict: a request with this key is in progress, or the object's state forbids it",
        422: "Validation failed",
        502: "The payment provider failed",
        504: "The payment provider did not answer in time",
    }
    return {
        s: {"model": Problem, "description": descriptions[s], "content": {"application/problem+json": {}}}
        for s in statuses
    }


def query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """OpenAPI parameters for a query string a handler validates itself with `model`."""
    schema = model.model_json_schema()
    required = set(schema.get("required", ()))
    return [
        {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": {k: v for k, v in prop.items() if k != "description"},
            **({"description": prop["description"]} if "description" in prop else {}),
        }
        for name, prop in schema["properties"].items()
    ]
