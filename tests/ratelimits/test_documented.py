"""The OpenAPI document says what the limiter answers: 429 with Retry-After and the RateLimit-*
headers on every limited operation, the RateLimit-* headers on their successes; none on webhooks."""

from __future__ import annotations

from typing import Any

from gateway.main import create_app
from gateway.settings import Settings

RATE_LIMIT = {"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"}


def test_limited_operations_document_429_and_the_headers() -> None:
    doc: dict[str, Any] = create_app(Settings(_env_file=None)).openapi()
    limited = webhooks = 0
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            responses = op["responses"]
            successes = [r for status, r in responses.items() if status.startswith("2")]
            if path.startswith("/v1/webhooks/"):
                webhooks += 1
                assert "429" not in responses, (method, path)
                assert all(not RATE_LIMIT & set(r.get("headers", {})) for r in successes), (method, path)
            elif path.startswith("/v1/"):
                limited += 1
                assert set(responses["429"]["headers"]) == RATE_LIMIT | {"Retry-After"}, (method, path)
                assert responses["429"]["content"]["application/problem+json"]["schema"] == {
                    "$ref": "#/components/schemas/Problem"
                }
                assert successes, (method, path)
                assert all(set(r["headers"]) >= RATE_LIMIT for r in successes), (method, path)
            else:
                assert "429" not in responses, (method, path)
    assert limited > 10
    assert webhooks >= 1
