"""Bad input to the payments API: RFC 9457 problem+json with the exact status and code, no row, no provider.

Every case runs against the real server; after each one the merchant still has no payment and no
provider's create_payment counter has moved.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
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
PROVIDER_COUNTERS = ("sandbox.create_payment", "cash.create_payment")
DROP = object()  # as a value in `body(...)`: leave the field out


def body(**changes: Any) -> dict[str, Any]:
    out = {**BASE, **changes}
    return {k: v for k, v in out.items() if v is not DROP}


@dataclass(frozen=True)
class Case:
    status: int
    code: str
    json: Any = None  # the request body (BASE when neither json nor content is given)
    content: bytes | None = None  # raw bytes instead of json
    auth: str | None = "merchant"  # "merchant": the merchant's key; None: no header; else the header value
    idempotency_key: str | None = "fresh"  # "fresh": a new UUID; None: no header; else the header value
    loc: list[str | int] | None = None  # for 422 validation: the loc of the (single) error
    error_type: str | None = None  # and its type
    param: str | None = None  # for errors about one parameter raised past validation


CREATE_CASES = [
    # The body is not JSON at all.
    pytest.param(Case(400, "malformed_json", content=b'{"amount": 15'), id="malformed-json"),
    pytest.param(Case(400, "malformed_json", content=b"amount=1500"), id="form-encoded-body"),
    # amount
    pytest.param(
        Case(422, "validation_error", body(amount="1500"), loc=["body", "amount"], error_type="int_type"),
        id="amount-string",
    ),
    pytest.param(
        Case(422, "validation_error", body(amount=15.5), loc=["body", "amount"], error_type="int_type"),
        id="amount-float",
    ),
    pytest.param(
        Case(422, "validation_error", body(amount=True), loc=["body", "amount"], error_type="int_type"),
        id="amount-bool",
    ),
    pytest.param(
        Case(422, "validation_error", body(amount=0), loc=["body", "amount"], error_type="greater_than"),
        id="amount-zero",
    ),
    pytest.param(
        Case(422, "validation_error", body(amount=-100), loc=["body", "amount"], error_type="greater_than"),
        id="amount-negative",
    ),
    pytest.param(
        Case(
            422,
            "amount_too_large",
            body(amount=10**12),
            loc=["body", "amount"],
            error_type="amount_too_large",
        ),
        id="amount-too-large",
    ),
    pytest.param(
        Case(422, "validation_error", body(amount=DROP), loc=["body", "amount"], error_type="missing"),
        id="amount-missing",
    ),
    # currency
    pytest.param(
        Case(
            422,
            "invalid_currency",
            body(currency="ABC"),
            loc=["body", "currency"],
            error_type="invalid_currency",
        ),
        id="currency-not-iso",
    ),
    pytest.param(
        Case(
            422,
            "invalid_currency",
            body(currency="kes"),
            loc=["body", "currency"],
            error_type="invalid_currency",
        ),
        id="currency-lower-case",
    ),
    # Four letters: the ISO check runs before the length limit, and "not an ISO 4217 code" is the
    # more useful answer, so this is invalid_currency rather than a generic string_too_long.
    pytest.param(
        Case(
            422,
            "invalid_currency",
            body(currency="KESS"),
            loc=["body", "currency"],
            error_type="invalid_currency",
        ),
        id="currency-too-long",
    ),
    pytest.param(
        Case(
            422,
            "currency_not_supported",
            body(currency="ISK"),
            param="currency",
        ),
        id="currency-valid-iso-not-taken-by-sandbox",
    ),
    # provider
    pytest.param(
        Case(422, "provider_unknown", body(provider="nope"), param="provider"), id="provider-unknown"
    ),
    pytest.param(
        Case(
            422,
            "validation_error",
            body(provider="Sandbox"),
            loc=["body", "provider"],
            error_type="string_pattern_mismatch",
        ),
        id="provider-bad-pattern",
    ),
    # payment_method
    pytest.param(
        Case(
            422,
            "validation_error",
            body(payment_method="pm_bogus"),
            loc=["body", "payment_method"],
            error_type="invalid_payment_method",
        ),
        id="payment-method-unknown-to-sandbox",
    ),
    # metadata
    pytest.param(
        Case(
            422,
            "invalid_metadata",
            body(metadata={f"k{i}": "v" for i in range(51)}),
            loc=["body", "metadata"],
            error_type="invalid_metadata",
        ),
        id="metadata-51-keys",
    ),
    pytest.param(
        Case(
            422,
            "invalid_metadata",
            body(metadata={"k" * 41: "v"}),
            loc=["body", "metadata"],
            error_type="invalid_metadata",
        ),
        id="metadata-key-41-chars",
    ),
    pytest.param(
        Case(
            422,
            "invalid_metadata",
            body(metadata={"k": "v" * 501}),
            loc=["body", "metadata"],
            error_type="invalid_metadata",
        ),
        id="metadata-value-501-chars",
    ),
    pytest.param(
        Case(
            422,
            "validation_error",
            body(metadata={"a": 1}),
            loc=["body", "metadata", "a"],
            error_type="string_type",
        ),
        id="metadata-non-string-value",
    ),
    # customer
    pytest.param(
        Case(
            422,
            "invalid_email",
            body(customer={"email": "not-an-email"}),
            loc=["body", "customer", "email"],
            error_type="invalid_email",
        ),
        id="customer-email-invalid",
    ),
    pytest.param(
        Case(
            422,
            "invalid_phone",
            body(customer={"phone": "12345"}),
            loc=["body", "customer", "phone"],
            error_type="invalid_phone",
        ),
        id="customer-phone-invalid",
    ),
    pytest.param(
        Case(
            422,
            "validation_error",
            body(customer={"nickname": "x"}),
            loc=["body", "customer", "nickname"],
            error_type="extra_forbidden",
        ),
        id="customer-unknown-field",
    ),
    pytest.param(
        Case(
            422,
            "validation_error",
            body(colour="blue"),
            loc=["body", "colour"],
            error_type="extra_forbidden",
        ),
        id="unknown-top-level-field",
    ),
    # return_url
    pytest.param(
        Case(
            422,
            "validation_error",
            body(return_url="ftp://x"),
            loc=["body", "return_url"],
            error_type="invalid_url",
        ),
        id="return-url-not-http",
    ),
    # Idempotency-Key
    pytest.param(Case(400, "idempotency_key_missing", idempotency_key=None), id="idempotency-key-missing"),
    pytest.param(
        Case(400, "idempotency_key_invalid", idempotency_key="k" * 256), id="idempotency-key-256-chars"
    ),
    # Authentication
    pytest.param(Case(401, "authentication_required", auth=None), id="no-authorization"),
    pytest.param(Case(401, "invalid_api_key", auth="Bearer sk_test_doesnotexist"), id="unknown-secret-key"),
    pytest.param(Case(401, "invalid_api_key", auth="Bearer pk_test_x"), id="publishable-key"),
    # Further edges of the same rules.
    pytest.param(
        Case(422, "validation_error", content=b"", loc=["body"], error_type="missing"), id="empty-body"
    ),
    pytest.param(
        Case(422, "validation_error", [], loc=["body"], error_type="model_attributes_type"), id="array-body"
    ),
    pytest.param(
        Case(422, "validation_error", body(amount=1500.0), loc=["body", "amount"], error_type="int_type"),
        id="amount-integral-float",
    ),
    pytest.param(
        Case(
            422,
            "amount_too_large",
            body(amount=10**30),
            loc=["body", "amount"],
            error_type="amount_too_large",
        ),
        id="amount-beyond-64-bits",
    ),
    pytest.param(
        Case(
            422, "validation_error", body(currency=None), loc=["body", "currency"], error_type="string_type"
        ),
        id="currency-null",
    ),
    pytest.param(
        Case(
            422,
            "invalid_metadata",
            body(metadata={"": "v"}),
            loc=["body", "metadata"],
            error_type="invalid_metadata",
        ),
        id="metadata-empty-key",
    ),
    pytest.param(
        Case(
            422,
            "validation_error",
            body(customer={"email": "a" * 310 + "@example.com"}),
            loc=["body", "customer", "email"],
            error_type="string_too_long",
        ),
        id="customer-email-too-long",
    ),
    pytest.param(
        Case(
            422,
            "validation_error",
            body(reference=""),
            loc=["body", "reference"],
            error_type="string_too_short",
        ),
        id="reference-empty",
    ),
    pytest.param(
        Case(
            422,
            "validation_error",
            body(description="d" * 1001),
            loc=["body", "description"],
            error_type="string_too_long",
        ),
        id="description-too-long",
    ),
    pytest.param(
        Case(
            422,
            "validation_error",
            body(return_url="javascript:alert(1)"),
            loc=["body", "return_url"],
            error_type="invalid_url",
        ),
        id="return-url-javascript",
    ),
    pytest.param(
        Case(
            422,
            "validation_error",
            body(return_url="https://"),
            loc=["body", "return_url"],
            error_type="invalid_url",
        ),
        id="return-url-no-host",
    ),
    pytest.param(Case(400, "idempotency_key_invalid", idempotency_key=""), id="idempotency-key-empty"),
    pytest.param(Case(401, "authentication_required", auth="Basic dXNlcjpwYXNz"), id="basic-auth"),
    pytest.param(Case(401, "authentication_required", auth="Bearer"), id="bearer-without-key"),
    pytest.param(Case(401, "invalid_api_key", auth="Bearer sk_live_doesnotexist"), id="unknown-live-key"),
    # Authentication comes before the body is judged: no information for anonymous callers.
    pytest.param(Case(401, "authentication_required", body(amount="x"), auth=None), id="no-auth-bad-body"),
]


def assert_case_details(problem: dict[str, Any], case: Case) -> None:
    if case.loc is not None:
        errors = problem["errors"]
        assert isinstance(errors, list)
        assert len(errors) == 1, errors
        assert errors[0]["loc"] == case.loc
        assert errors[0]["msg"]
        if case.error_type is not None:
            assert errors[0]["type"] == case.error_type
    if case.param is not None:
        assert problem["param"] == case.param


def provider_calls(gateway: Gateway) -> dict[str, int]:
    return {name: gateway.calls(name) for name in PROVIDER_COUNTERS}


async def payment_rows(gateway: Gateway, merchant: Merchant) -> int:
    n: int = await gateway.scalar("SELECT count(*) FROM payments WHERE merchant_id = :m", m=merchant.id)
    return n


@pytest.mark.parametrize("case", CREATE_CASES)
async def test_bad_create_is_a_problem_and_changes_nothing(
    client: httpx.AsyncClient, merchant: Merchant, gateway: Gateway, case: Case
) -> None:
    headers: dict[str, str] = {}
    if case.auth == "merchant":
        headers.update(merchant.auth)
    elif case.auth is not None:
        headers["Authorization"] = case.auth
    if case.idempotency_key == "fresh":
        headers["Idempotency-Key"] = str(uuid.uuid4())
    elif case.idempotency_key is not None:
        headers["Idempotency-Key"] = case.idempotency_key
    before = provider_calls(gateway)

    if case.content is not None:
        headers["Content-Type"] = "application/json"
        r = await client.post("/v1/payments", content=case.content, headers=headers)
    else:
        r = await client.post(
            "/v1/payments", json=case.json if case.json is not None else BASE, headers=headers
        )

    problem = assert_problem(r, case.status, case.code)
    assert_case_details(problem, case)
    if case.code == "currency_not_supported":
        assert "KES" in problem["supported"]
        assert "ISK" not in problem["supported"]
    if case.code == "authentication_required":
        assert r.headers["www-authenticate"] == "Bearer"
    assert await payment_rows(gateway, merchant) == 0
    assert provider_calls(gateway) == before


async def test_the_base_body_is_valid(
    client: httpx.AsyncClient, merchant: Merchant, gateway: Gateway
) -> None:
    """The control for the table above: unmodified, the base body creates a payment."""
    r = await client.post(
        "/v1/payments", json=BASE, headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())}
    )
    assert r.status_code == 201, r.text
    assert await payment_rows(gateway, merchant) == 1


@pytest.mark.parametrize(
    ("fields", "headers"),
    [
        pytest.param({"amount": 999_999_999_999}, {}, id="largest-amount"),
        pytest.param({"amount": 1}, {}, id="smallest-amount"),
        pytest.param({"metadata": {f"k{i}": "v" for i in range(50)}}, {}, id="metadata-50-keys"),
        pytest.param({"metadata": {"k" * 40: "v" * 500}}, {}, id="metadata-longest-key-and-value"),
        pytest.param({"return_url": "https://shop.example/done?o=1"}, {}, id="https-return-url"),
        pytest.param({"customer": {"phone": "+254 712 345678"}}, {}, id="phone-with-spaces"),
        pytest.param({}, {"Idempotency-Key": "k" * 255}, id="idempotency-key-255-chars"),
    ],
)
async def test_values_at_the_limits_are_accepted(
    client: httpx.AsyncClient,
    merchant: Merchant,
    gateway: Gateway,
    fields: dict[str, Any],
    headers: dict[str, str],
) -> None:
    """The other side of each limit in the table above: the last accepted value creates a payment."""
    r = await client.post(
        "/v1/payments",
        json=body(**fields),
        headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4()), **headers},
    )
    assert r.status_code == 201, r.text
    assert await payment_rows(gateway, merchant) == 1


@pytest.mark.parametrize(
    ("bad", "status", "code"),
    [
        pytest.param({"content": b'{"amount": 15'}, 400, "malformed_json", id="malformed-json"),
        pytest.param({"json": body(amount="1500")}, 422, "validation_error", id="schema"),
        pytest.param({"json": body(currency="kes")}, 422, "invalid_currency", id="schema-specific-code"),
        pytest.param({"json": body(provider="nope")}, 422, "provider_unknown", id="service-provider"),
        pytest.param({"json": body(currency="ISK")}, 422, "currency_not_supported", id="service-currency"),
        pytest.param(
            {"json": body(payment_method="pm_bogus")}, 422, "validation_error", id="service-payment-method"
        ),
    ],
)
async def test_a_rejected_request_does_not_use_up_its_idempotency_key(
    client: httpx.AsyncClient,
    merchant: Merchant,
    gateway: Gateway,
    bad: dict[str, Any],
    status: int,
    code: str,
) -> None:
    headers = {**merchant.auth, "Idempotency-Key": str(uuid.uuid4())}
    before = provider_calls(gateway)
    if "content" in bad:
        r = await client.post(
            "/v1/payments", content=bad["content"], headers={**headers, "Content-Type": "application/json"}
        )
    else:
        r = await client.post("/v1/payments", json=bad["json"], headers=headers)
    assert_problem(r, status, code)
    assert "idempotent-replayed" not in r.headers
    assert provider_calls(gateway) == before

    fixed = await client.post("/v1/payments", json=BASE, headers=headers)
    assert fixed.status_code == 201, fixed.text
    assert "idempotent-replayed" not in fixed.headers
    assert await payment_rows(gateway, merchant) == 1
    assert gateway.calls("sandbox.create_payment") == before["sandbox.create_payment"] + 1

    # The key now belongs to the corrected request: a retry replays it and makes nothing new.
    again = await client.post("/v1/payments", json=BASE, headers=headers)
    assert again.status_code == 201
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.json()["id"] == fixed.json()["id"]
    assert await payment_rows(gateway, merchant) == 1
    assert gateway.calls("sandbox.create_payment") == before["sandbox.create_payment"] + 1


LIST_CASES = [
    pytest.param({"limit": 0}, 422, "validation_error", ["query", "limit"], None, id="limit-0"),
    pytest.param({"limit": 101}, 422, "validation_error", ["query", "limit"], None, id="limit-101"),
    pytest.param({"limit": -1}, 422, "validation_error", ["query", "limit"], None, id="limit-negative"),
    pytest.param({"limit": "ten"}, 422, "validation_error", ["query", "limit"], None, id="limit-not-int"),
    pytest.param(
        {"starting_after": "garbage"},
        422,
        "invalid_cursor",
        None,
        "starting_after",
        id="starting-after-garbage",
    ),
    pytest.param(
        {"ending_before": "garbage"}, 422, "invalid_cursor", None, "ending_before", id="ending-before-garbage"
    ),
    pytest.param(
        {"starting_after": "evt_" + new_id("pay").split("_", 1)[1]},
        422,
        "invalid_cursor",
        None,
        "starting_after",
        id="starting-after-wrong-prefix",
    ),
    pytest.param(
        {"ending_before": new_id("re")},
        422,
        "invalid_cursor",
        None,
        "ending_before",
        id="ending-before-refund-id",
    ),
    pytest.param(
        {"starting_after": new_id("evt")},
        422,
        "invalid_cursor",
        None,
        "starting_after",
        id="starting-after-event-id",
    ),
    pytest.param(
        {"starting_after": new_id("pay"), "ending_before": new_id("pay")},
        422,
        "invalid_cursor",
        None,
        None,
        id="both-cursors",
    ),
    pytest.param(
        {"starting_after": "pay_" + "0" * 40},
        422,
        "validation_error",
        ["query", "starting_after"],
        None,
        id="cursor-too-long",
    ),
    pytest.param({"status": "bogus"}, 422, "validation_error", ["query", "status"], None, id="status-bogus"),
    pytest.param(
        {"created_gte": "2026-01-01T00:00:00"},
        422,
        "validation_error",
        ["query", "created_gte"],
        None,
        id="created-gte-no-time-zone",
    ),
    pytest.param(
        {"created_lt": "2026-01-01T00:00:00"},
        422,
        "validation_error",
        ["query", "created_lt"],
        None,
        id="created-lt-no-time-zone",
    ),
    pytest.param(
        {"created_gte": "yesterday"},
        422,
        "validation_error",
        ["query", "created_gte"],
        None,
        id="created-gte-not-a-date",
    ),
    pytest.param(
        {"customer_email": "not-an-email"},
        422,
        "invalid_email",
        ["query", "customer_email"],
        None,
        id="customer-email-invalid",
    ),
]


@pytest.mark.parametrize(("params", "status", "code", "loc", "param"), LIST_CASES)
async def test_bad_list_parameters_are_problems(
    client: httpx.AsyncClient,
    merchant: Merchant,
    params: dict[str, Any],
    status: int,
    code: str,
    loc: list[str] | None,
    param: str | None,
) -> None:
    r = await client.get("/v1/payments", params=params, headers=merchant.auth)
    problem = assert_problem(r, status, code)
    if loc is not None:
        assert [e["loc"] for e in problem["errors"]] == [loc]
    if param is not None:
        assert problem["param"] == param


async def test_list_without_a_key_is_401(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/payments")
    assert_problem(r, 401, "authentication_required")


@pytest.mark.parametrize(
    "payment_id",
    [
        pytest.param("pay_doesnotexist", id="not-an-id"),
        pytest.param(new_id("pay"), id="well-formed-unknown-id"),
    ],
)
async def test_retrieving_a_missing_payment_is_404(
    client: httpx.AsyncClient, merchant: Merchant, payment_id: str
) -> None:
    r = await client.get(f"/v1/payments/{payment_id}", headers=merchant.auth)
    problem = assert_problem(r, 404, "resource_missing")
    assert problem["param"] == "id"
