"""Probes, request ids, the OpenAPI document and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import httpx

from gateway.embedded import EmbeddedServers
from support import Gateway


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}
    r = await client.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "checks": {"postgres": "ok", "redis": "ok"}}


async def test_every_response_has_a_request_id(client: httpx.AsyncClient) -> None:
    generated = await client.get("/v1/payments")
    assert generated.status_code == 401
    assert generated.headers["x-request-id"].startswith("req_")
    assert generated.json()["request_id"] == generated.headers["x-request-id"]
    echoed = await client.get("/healthz", headers={"X-Request-Id": "lb-1234"})
    assert echoed.headers["x-request-id"] == "lb-1234"
    unsafe = await client.get("/healthz", headers={"X-Request-Id": "a b\tc"})
    assert unsafe.headers["x-request-id"].startswith("req_")


async def test_unknown_route_is_problem_json(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/nothing-here")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "not_found"


async def test_openapi_names_every_operation(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/openapi.json")).json()
    assert doc["openapi"].startswith("3.1")
    ops = {op["operationId"] for path in doc["paths"].values() for op in path.values()}
    assert {
        "create_payment",
        "list_payments",
        "retrieve_payment",
        "cancel_payment",
        "sync_payment",
        "list_payment_events",
        "receive_provider_webhook",
        "healthz",
        "readyz",
    } <= ops
    create = doc["paths"]["/v1/payments"]["post"]
    assert {"400", "401", "402", "409", "422", "502", "504"} <= set(create["responses"])
    assert any(p["name"] == "Idempotency-Key" for p in create["parameters"])
    assert "HTTPBearer" in doc["components"]["securitySchemes"]
    assert create["security"] == [{"HTTPBearer": []}]
    # The list validates its query string itself; the document still lists every parameter.
    listing = {p["name"]: p for p in doc["paths"]["/v1/payments"]["get"]["parameters"]}
    assert list(listing) == [
        "limit",
        "starting_after",
        "ending_before",
        "status",
        "provider",
        "reference",
        "customer_email",
        "payment_link",
        "created_gte",
        "created_lt",
    ]
    assert listing["limit"]["in"] == "query"
    assert (listing["limit"]["schema"]["minimum"], listing["limit"]["schema"]["maximum"]) == (1, 100)
    assert listing["status"]["schema"] == {"$ref": "#/components/schemas/PaymentStatus"}
    assert "succeeded" in doc["components"]["schemas"]["PaymentStatus"]["enum"]


async def test_cli_creates_a_merchant_whose_key_works(
    client: httpx.AsyncClient, gateway: Gateway, servers: EmbeddedServers
) -> None:
    env = {**os.environ, "GATEWAY_DATABASE_URL": servers.postgres.url, "GATEWAY_LOG_LEVEL": "WARNING"}
    out = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "merchants", "create", "Duka Ltd", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    created = json.loads(out.stdout)
    assert created["name"] == "Duka Ltd"
    assert created["merchant_id"].startswith("mer_")
    assert created["secret_key"].startswith("sk_test_")
    assert await gateway.scalar(
        "SELECT key_hash <> :k FROM api_keys WHERE merchant_id = :m",
        k=created["secret_key"],
        m=created["merchant_id"],
    )
    r = await client.post(
        "/v1/payments",
        json={"amount": 100, "currency": "XOF", "provider": "cash"},
        headers={"Authorization": f"Bearer {created['secret_key']}", "Idempotency-Key": str(uuid.uuid4())},
    )
    assert r.status_code == 201
    assert r.json()["currency"] == "XOF"


def test_callback_tokens_never_reach_the_access_log() -> None:
    from gateway.middleware import _loggable

    assert _loggable("/v1/webhooks/mpesa/s3cr3t-t0ken") == "/v1/webhooks/mpesa/[redacted]"
    assert _loggable("/v1/webhooks/momo/abc") == "/v1/webhooks/momo/[redacted]"
    assert _loggable("/v1/webhooks/stripe") == "/v1/webhooks/stripe"
    assert _loggable("/v1/payments/pay_1/events") == "/v1/payments/pay_1/events"
