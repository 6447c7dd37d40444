"""List filters the OpenAPI document types strictly are refused as strictly (schemathesis found the
server taking what the document forbids): created_gte/created_lt are RFC 3339 timestamps, not a
number of seconds; customer_email is an address, and an empty one is not."""

from __future__ import annotations

import httpx
import pytest

from support import Merchant


@pytest.mark.parametrize("path", ["/v1/payments", "/v1/refunds", "/v1/events"])
@pytest.mark.parametrize("value", ["0.5", "1700000000", "2026-01-31", "tomorrow"])
async def test_created_filters_take_only_rfc3339(
    client: httpx.AsyncClient, merchant: Merchant, path: str, value: str
) -> None:
    for name in ("created_gte", "created_lt"):
        r = await client.get(path, params={name: value}, headers=merchant.auth)
        assert r.status_code == 422, (name, value, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["code"] == "validation_error"
        assert [e["loc"] for e in r.json()["errors"]] == [["query", name]]


@pytest.mark.parametrize("path", ["/v1/payments", "/v1/refunds", "/v1/events"])
async def test_created_filters_take_an_rfc3339_timestamp(
    client: httpx.AsyncClient, merchant: Merchant, path: str
) -> None:
    r = await client.get(
        path,
        params={"created_gte": "2000-01-01T00:00:00Z", "created_lt": "2100-01-01T00:00:00+03:00"},
        headers=merchant.auth,
    )
    assert r.status_code == 200, r.text
    assert r.json()["data"] == []


async def test_an_empty_customer_email_filter_is_refused(
    client: httpx.AsyncClient, merchant: Merchant
) -> None:
    r = await client.get("/v1/payments", params={"customer_email": ""}, headers=merchant.auth)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "invalid_email"
