"""Retrieve and list run on LeanRoute: the same answers FastAPI's own handler gave, in the same order
of checks (authentication before the path's validation)."""

from __future__ import annotations

from typing import Annotated

import httpx
import pytest
from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from gateway.api.lean import LeanRoute
from support import Merchant

LONG_ID = "pay_" + "x" * 37  # 41 characters: over PaymentId's max_length
BODY = {"amount": 2500, "currency": "KES", "provider": "sandbox", "payment_method": "pm_success"}


async def test_retrieve_answers_the_payment_and_404_for_another(
    client: httpx.AsyncClient, merchant: Merchant, other_merchant: Merchant
) -> None:
    created = await client.post("/v1/payments", json=BODY, headers={**merchant.auth, "Idempotency-Key": "r1"})
    got = await client.get(f"/v1/payments/{created.json()['id']}", headers=merchant.auth)
    assert (got.status_code, got.content) == (200, created.content)
    assert got.headers["content-type"] == "application/json"

    theirs = await client.get(f"/v1/payments/{created.json()['id']}", headers=other_merchant.auth)
    assert theirs.status_code == 404
    assert theirs.json()["code"] == "resource_missing"


@pytest.mark.parametrize("path", ["/v1/payments/pay_x", "/v1/payments", f"/v1/payments/{LONG_ID}"])
async def test_reads_without_a_key_are_401_before_anything_else(client: httpx.AsyncClient, path: str) -> None:
    r = await client.get(path)
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "authentication_required"
    assert r.headers["www-authenticate"] == "Bearer"

    wrong = await client.get(path, headers={"Authorization": "Bearer sk_test_doesnotexist"})
    assert (wrong.status_code, wrong.json()["code"]) == (401, "invalid_api_key")


async def test_an_overlong_id_is_a_422_on_the_path(client: httpx.AsyncClient, merchant: Merchant) -> None:
    r = await client.get(f"/v1/payments/{LONG_ID}", headers=merchant.auth)
    assert r.status_code == 422
    assert r.json()["code"] == "validation_error"
    errors = [(e["loc"], e["type"]) for e in r.json()["errors"]]
    assert errors == [(["path", "payment_id"], "string_too_long")]


def test_a_lean_route_refuses_what_its_handler_would_skip() -> None:
    router = APIRouter(route_class=LeanRoute)

    async def with_query(request: Request, q: Annotated[str, Query()]) -> Response:
        return Response()

    with pytest.raises(TypeError, match="only the request and path parameters"):
        router.add_api_route("/x", with_query)
