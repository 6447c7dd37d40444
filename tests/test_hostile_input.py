"""Input no schema can fix, sent exactly as observed: each gets its documented problem, writes nothing
and calls no provider.

NUL characters (PostgreSQL stores none), bodies of the wrong media type or too large, bytes that are
not UTF-8 or numbers beyond Python's 4300 digits, methods a path does not take, missing credentials,
and cursors that name no object of the caller's list.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from gateway.kit.ids import new_id
from support import Gateway, Merchant, assert_problem

BASE: dict[str, Any] = {
    "amount": 1500,
    "currency": "KES",
    "provider": "sandbox",
    "payment_method": "pm_success",
}


def provider_calls(gateway: Gateway) -> dict[str, int]:
    return {name: gateway.calls(name) for name in ("sandbox.create_payment", "cash.create_payment")}


async def payment_rows(gateway: Gateway, merchant: Merchant) -> int:
    n: int = await gateway.scalar("SELECT count(*) FROM payments WHERE merchant_id = :m", m=merchant.id)
    return n


def headers(merchant: Merchant, **extra: str) -> dict[str, str]:
    return {**merchant.auth, "Idempotency-Key": str(uuid.uuid4()), **extra}


async def nothing_written(gateway: Gateway, merchant: Merchant, calls_before: dict[str, int]) -> None:
    assert await payment_rows(gateway, merchant) == 0
    assert provider_calls(gateway) == calls_before


NUL_BODIES = [
    pytest.param({"reference": "ord\u00001"}, ["body", "reference"], id="reference"),
    pytest.param({"description": "\u0000"}, ["body", "description"], id="description"),
    pytest.param({"metadata": {"k\u0000": "v"}}, ["body", "metadata", "k\u0000"], id="metadata-key"),
    pytest.param({"metadata": {"k": "v\u0000"}}, ["body", "metadata", "k"], id="metadata-value"),
    pytest.param({"customer": {"name": "A\u0000"}}, ["body", "customer", "name"], id="customer-name"),
    pytest.param(
        {"customer": {"email": "a\u0000@example.com"}}, ["body", "customer", "email"], id="customer-email"
    ),
    pytest.param({"payment_method": "pm_\u0000"}, ["body", "payment_method"], id="payment-method"),
]


@pytest.mark.parametrize(("change", "loc"), NUL_BODIES)
async def test_nul_in_a_body_string_is_a_validation_error_naming_the_field(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, change: dict[str, Any], loc: list[str]
) -> None:
    before = provider_calls(gateway)
    r = await client.post("/v1/payments", json={**BASE, **change}, headers=headers(merchant))
    problem = assert_problem(r, 422, "validation_error")
    assert problem["errors"] == [
        {"loc": loc, "msg": "must not contain the NUL character (\\u0000)", "type": "string_nul_character"}
    ]
    assert problem["detail"] == "Invalid value for: " + ".".join(loc[1:])
    await nothing_written(gateway, merchant, before)


async def test_an_escaped_backslash_before_u0000_is_text_not_nul(
    client: httpx.AsyncClient, merchant: Merchant
) -> None:
    raw = b'{"amount": 1500, "currency": "KES", "provider": "sandbox", "payment_method": "pm_success", '
    raw += b'"reference": "a\\\\u0000b"}'  # the JSON text "a\\u0000b": a backslash, then "u0000b"
    r = await client.post(
        "/v1/payments", content=raw, headers=headers(merchant, **{"Content-Type": "application/json"})
    )
    assert r.status_code == 201, r.text
    assert r.json()["reference"] == "a\\u0000b"


@pytest.mark.parametrize(
    ("path", "loc"),
    [
        pytest.param("/v1/payments/pay_%00", ["path", "payment_id"], id="payment-id"),
        pytest.param("/v1/payments?reference=%00", ["query", "reference"], id="list-query"),
        pytest.param("/v1/payments/pay_%00/refunds", ["path", "payment_id"], id="refunds-path"),
        pytest.param("/v1/events?type=payment.%00", ["query", "type"], id="events-query"),
        pytest.param("/v1/refunds?payment=pay_%00", ["query", "payment"], id="refunds-query"),
    ],
)
async def test_nul_in_a_path_or_query_value_is_a_validation_error(
    client: httpx.AsyncClient, merchant: Merchant, path: str, loc: list[str]
) -> None:
    r = await client.get(path, headers=merchant.auth)
    problem = assert_problem(r, 422, "validation_error")
    assert [e["loc"] for e in problem["errors"]] == [loc]


async def test_nul_in_a_refund_and_an_endpoint_body(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    r = await client.post(
        "/v1/payments", json={**BASE, "provider": "cash", "payment_method": None}, headers=headers(merchant)
    )
    assert r.status_code == 201, r.text
    payment_id = r.json()["id"]
    before = provider_calls(gateway)
    r = await client.post(
        f"/v1/payments/{payment_id}/refunds", json={"metadata": {"why": "\u0000"}}, headers=headers(merchant)
    )
    problem = assert_problem(r, 422, "validation_error")
    assert problem["errors"][0]["loc"] == ["body", "metadata", "why"]
    assert await gateway.scalar("SELECT count(*) FROM refunds WHERE payment_id = :p", p=payment_id) == 0
    assert provider_calls(gateway) == before

    r = await client.post(
        "/v1/webhook-endpoints",
        json={"url": "https://example.com/hooks", "enabled_events": ["payment.*"], "description": "a\u0000"},
        headers=merchant.auth,
    )
    problem = assert_problem(r, 422, "validation_error")
    assert problem["errors"][0]["loc"] == ["body", "description"]
    rows = "SELECT count(*) FROM webhook_endpoints WHERE merchant_id = :m"
    assert await gateway.scalar(rows, m=merchant.id) == 0


@pytest.mark.parametrize(
    ("content_type", "content"),
    [
        pytest.param("text/plain", b'{"amount": 1500}', id="text-plain"),
        pytest.param("application/x-www-form-urlencoded", b"amount=1500&currency=KES", id="form"),
        pytest.param("multipart/form-data; boundary=x", b"--x--", id="multipart"),
    ],
)
async def test_a_body_that_is_not_json_is_415(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, content_type: str, content: bytes
) -> None:
    before = provider_calls(gateway)
    r = await client.post(
        "/v1/payments", content=content, headers=headers(merchant, **{"Content-Type": content_type})
    )
    problem = assert_problem(r, 415, "unsupported_media_type")
    assert problem["supported"] == ["application/json"]
    await nothing_written(gateway, merchant, before)


async def test_json_media_types_with_parameters_or_suffixes_are_json(
    client: httpx.AsyncClient, merchant: Merchant
) -> None:
    for content_type in ("application/json; charset=utf-8", "application/merge-patch+json"):
        r = await client.post(
            "/v1/payments",
            content=httpx.Request("POST", "/", json=BASE).content,
            headers=headers(merchant, **{"Content-Type": content_type}),
        )
        assert r.status_code == 201, (content_type, r.text)


async def test_a_body_over_the_limit_is_413_before_it_is_read(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    before = provider_calls(gateway)
    big = b'{"amount": 1500, "description": "' + b"x" * (1024 * 1024) + b'"}'
    r = await client.post(
        "/v1/payments", content=big, headers=headers(merchant, **{"Content-Type": "application/json"})
    )
    problem = assert_problem(r, 413, "payload_too_large")
    assert problem["limit"] == 1024 * 1024

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(40):
            yield b" " * 65536

    r = await client.post(
        "/v1/payments", content=chunks(), headers=headers(merchant, **{"Content-Type": "application/json"})
    )
    assert "content-length" not in r.request.headers
    assert_problem(r, 413, "payload_too_large")
    await nothing_written(gateway, merchant, before)

    # Provider webhooks have their own, smaller limit.
    stored = "SELECT count(*) FROM inbound_webhooks"
    webhooks_before = await gateway.scalar(stored)
    r = await client.post(
        "/v1/webhooks/sandbox",
        content=b"{}" + b" " * (256 * 1024),
        headers={"Content-Type": "application/json"},
    )
    assert_problem(r, 413, "payload_too_large")
    assert await gateway.scalar(stored) == webhooks_before


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b'{"amount": ' + b"9" * 5000 + b', "currency": "KES"}', id="5000-digit-amount"),
        pytest.param(b'{"amount": 1500, "currency": "KES", "reference": "\xff\xfe"}', id="invalid-utf8"),
    ],
)
async def test_undecodable_bodies_are_malformed_json(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, content: bytes
) -> None:
    before = provider_calls(gateway)
    r = await client.post(
        "/v1/payments", content=content, headers=headers(merchant, **{"Content-Type": "application/json"})
    )
    problem = assert_problem(r, 400, "malformed_json")
    assert "UTF-8" in problem["detail"]
    await nothing_written(gateway, merchant, before)


async def test_405_names_every_method_the_path_takes(client: httpx.AsyncClient, merchant: Merchant) -> None:
    r = await client.delete("/v1/payments", headers=merchant.auth)
    assert_problem(r, 405, "method_not_allowed")
    assert r.headers["allow"] == "GET, POST"
    r = await client.put("/v1/payments/pay_x/refunds", headers=merchant.auth)
    assert_problem(r, 405, "method_not_allowed")
    assert r.headers["allow"] == "GET, POST"


@pytest.mark.parametrize(
    "authorization",
    [None, "Basic dXNlcjpwYXNz", "Bearer sk_test_doesnotexist", "Bearer pk_test_x"],
)
async def test_every_401_names_the_bearer_scheme(
    client: httpx.AsyncClient, authorization: str | None
) -> None:
    extra = {"Authorization": authorization} if authorization else {}
    r = await client.get("/v1/payments", headers=extra)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    r = await client.post("/v1/payments", json=BASE, headers={**extra, "Idempotency-Key": "k1"})
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    ("path", "prefix"),
    [("/v1/payments", "pay"), ("/v1/refunds", "re"), ("/v1/events", "evt"), ("/v1/webhook-endpoints", "we")],
)
async def test_a_cursor_that_names_no_object_of_the_list_is_invalid(
    client: httpx.AsyncClient, merchant: Merchant, path: str, prefix: str
) -> None:
    missing = new_id(prefix)  # well formed, but no object has it
    for name in ("starting_after", "ending_before"):
        r = await client.get(path, params={name: missing}, headers=merchant.auth)
        problem = assert_problem(r, 422, "invalid_cursor")
        assert problem["param"] == name


async def test_an_unpaired_surrogate_is_a_validation_error_naming_the_field(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    """Python's JSON parser lets `\\ud800` through, but no encoder can write it: refused up front."""
    before = provider_calls(gateway)
    raw = b'{"amount": 1500, "currency": "KES", "provider": "sandbox", "payment_method": "pm_success", '
    raw += b'"description": "a\\u0000", "reference": "\\ud800"}'
    r = await client.post(
        "/v1/payments", content=raw, headers=headers(merchant, **{"Content-Type": "application/json"})
    )
    problem = assert_problem(r, 422, "validation_error")
    assert [(e["loc"], e["type"]) for e in problem["errors"]] == [
        (["body", "description"], "string_nul_character"),
        (["body", "reference"], "string_unicode"),
    ]
    await nothing_written(gateway, merchant, before)
    # A surrogate pair is one character (an emoji here): fine.
    raw = raw.replace(b'"a\\u0000"', b'"ok"').replace(b'"\\ud800"', b'"\\ud83d\\ude00"')
    r = await client.post(
        "/v1/payments", content=raw, headers=headers(merchant, **{"Content-Type": "application/json"})
    )
    assert r.status_code == 201, r.text
    assert r.json()["reference"] == "\U0001f600"


async def test_a_body_without_a_content_type_is_415(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    before = provider_calls(gateway)
    content = httpx.Request("POST", "/", json=BASE).content
    for extra in ({}, {"Content-Type": ""}):
        r = await client.post("/v1/payments", content=content, headers=headers(merchant, **extra))
        assert_problem(r, 415, "unsupported_media_type")
    await nothing_written(gateway, merchant, before)
