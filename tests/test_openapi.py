"""The OpenAPI document as generated clients read it: errors typed as problem+json, required keys
required, schemas as strict as the server, every schema named (no `…Type0` classes in clients)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from gateway.main import create_app
from gateway.payments.fields import MAX_AMOUNT

PROBLEM = {"$ref": "#/components/schemas/Problem"}
ID_PATTERN = re.compile(r"^\^([a-z]+)_\[0-9a-hjkmnp-tv-z\]\{26\}\$$")


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    document: dict[str, Any] = create_app().openapi()
    return document


def operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            yield path, method, op


def by_id(doc: dict[str, Any], operation_id: str) -> dict[str, Any]:
    return next(op for _, _, op in operations(doc) if op["operationId"] == operation_id)


def walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def test_every_error_response_is_problem_json_with_the_problem_schema(doc: dict[str, Any]) -> None:
    errors = 0
    for path, method, op in operations(doc):
        for status, response in op["responses"].items():
            if int(status) < 400 or path == "/readyz":  # readyz's 503 is its JSON health report
                continue
            errors += 1
            assert response["content"] == {"application/problem+json": {"schema": PROBLEM}}, (
                method,
                path,
                status,
            )
    assert errors > 150


def test_no_operation_documents_fastapis_validation_error(doc: dict[str, Any]) -> None:
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    assert "ValidationError" not in doc["components"]["schemas"]
    assert not [n for n in walk(doc) if n.get("$ref", "").endswith("ValidationError")]


def test_every_reference_resolves(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    refs = {n["$ref"] for n in walk(doc) if isinstance(n.get("$ref"), str)}
    assert "#/components/schemas/PaymentOut" in refs
    for ref in refs:
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.removeprefix("#/components/schemas/") in schemas, ref


def test_problem_schema_has_every_member_the_server_sends(doc: dict[str, Any]) -> None:
    problem = doc["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail", "code"}
    assert set(problem["properties"]) == {
        "type",
        "title",
        "status",
        "detail",
        "code",
        "request_id",
        "errors",
        "param",
        "supported",
        "limit",
        "remaining",
        "currency",
        "status_now",
        "payment",
        "refund",
        "required_scope",
        "error",
        "refused",
        "cash_session",
    }
    # One type everywhere: the payment object, in a 402 decline as in a 502/504.
    assert problem["properties"]["payment"]["anyOf"] == [
        {"$ref": "#/components/schemas/PaymentOut"},
        {"type": "null"},
    ]


@pytest.mark.parametrize(
    ("operation_id", "required"),
    [
        ("create_payment", True),
        ("cancel_payment", True),
        ("create_refund", True),
        ("sync_payment", False),
        ("create_webhook_endpoint", False),
        ("rotate_webhook_endpoint_secret", False),
        ("retry_webhook_delivery", False),
        ("open_cash_session", True),
        ("close_cash_session", True),
    ],
)
def test_idempotency_key_is_required_where_the_server_requires_it(
    doc: dict[str, Any], operation_id: str, required: bool
) -> None:
    op = by_id(doc, operation_id)
    [key] = [p for p in op["parameters"] if p["name"] == "Idempotency-Key"]
    assert (key["in"], key["required"]) == ("header", required)
    assert key["schema"]["maxLength"] == 255
    pattern = re.compile(key["schema"]["pattern"])
    assert [bool(pattern.match(k)) for k in ("a", "order 1042/retry:2", "~" * 255)] == [True] * 3
    assert [bool(pattern.match(k)) for k in (" a", "a ", "ключ", "")] == [False] * 4
    assert "400" in op["responses"]  # idempotency_key_missing / idempotency_key_invalid


def test_every_v1_operation_documents_the_shared_errors(doc: dict[str, Any]) -> None:
    for path, method, op in operations(doc):
        if not path.startswith("/v1/"):
            continue
        statuses = set(op["responses"])
        assert {"400", "503"} <= statuses, (method, path)
        assert op["responses"]["503"]["headers"]["Retry-After"]["schema"] == {"type": "integer"}
        if op.get("security"):
            assert "401" in statuses, (method, path)
        if op.get("parameters") or op.get("requestBody"):
            assert "422" in statuses, (method, path)
        if method in ("post", "put", "patch", "delete"):
            assert "413" in statuses, (method, path)
        if "requestBody" in op:
            assert "415" in statuses, (method, path)


def test_money_operations_document_what_they_answer(doc: dict[str, Any]) -> None:
    create = by_id(doc, "create_payment")["responses"]
    assert {"201", "402", "409", "422", "502", "504"} <= set(create)
    assert create["409"]["headers"]["Retry-After"]
    assert {"201", "404", "409", "422", "502", "504"} <= set(by_id(doc, "create_refund")["responses"])
    assert {"200", "404", "409", "502", "504"} <= set(by_id(doc, "cancel_payment")["responses"])
    # create links to what a client does next with the payment (schemathesis follows these).
    links = create["201"]["links"]
    assert {link["operationId"] for link in links.values()} >= {
        "retrieve_payment",
        "create_refund",
        "cancel_payment",
    }
    assert all(link["parameters"] == {"payment_id": "$response.body#/id"} for link in links.values())


def test_inputs_are_as_strict_as_the_server(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    create = schemas["PaymentCreate"]["properties"]
    assert create["amount"]["maximum"] == MAX_AMOUNT
    assert create["amount"]["exclusiveMinimum"] == 0
    assert create["currency"] == {"$ref": "#/components/schemas/Currency"}
    currency = schemas["Currency"]
    assert currency["pattern"] == "^[A-Z]{3}$"
    assert {"KES", "XOF", "USD", "BHD"} <= set(currency["enum"])
    assert "kes" not in currency["enum"]
    assert {"type": "string", "maxLength": 320, "format": "email"} in schemas["Customer"]["properties"][
        "email"
    ]["anyOf"]
    refund_amount = schemas["RefundCreate"]["properties"]["amount"]["anyOf"][0]
    assert refund_amount["maximum"] == MAX_AMOUNT
    email = next(p for p in by_id(doc, "list_payments")["parameters"] if p["name"] == "customer_email")
    assert email["schema"]["format"] == "email"


@pytest.mark.parametrize(
    ("operation_id", "prefix"),
    [
        ("list_payments", "pay"),
        ("list_payment_events", "evt"),
        ("list_events", "evt"),
        ("list_refunds", "re"),
        ("list_payment_refunds", "re"),
        ("list_webhook_endpoints", "we"),
        ("list_webhook_deliveries", "whd"),
        ("list_cash_sessions", "cds"),
    ],
)
def test_cursors_carry_the_pattern_of_the_listed_ids(
    doc: dict[str, Any], operation_id: str, prefix: str
) -> None:
    params = {p["name"]: p for p in by_id(doc, operation_id)["parameters"]}
    for name in ("starting_after", "ending_before"):
        match = ID_PATTERN.match(params[name]["schema"]["pattern"])
        assert match is not None, params[name]
        assert match.group(1) == prefix
    # The pattern is the one the server's ids have (gateway.kit.ids).
    from gateway.kit.ids import new_id

    assert re.match(params["starting_after"]["schema"]["pattern"], new_id(prefix))


def test_next_action_and_event_object_are_typed(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    assert schemas["PaymentOut"]["properties"]["next_action"]["anyOf"][0] == {
        "$ref": "#/components/schemas/NextAction"
    }
    assert set(schemas["NextAction"]["properties"]) == {
        "type",
        "redirect_to_url",
        "mobile_money_prompt",
        "use_client_secret",
        "collect_cash",
    }
    obj = schemas["EventData"]["properties"]["object"]
    assert obj["oneOf"] == [
        {"$ref": "#/components/schemas/PaymentOut"},
        {"$ref": "#/components/schemas/RefundOut"},
        {"$ref": "#/components/schemas/PayoutOut"},
        {"$ref": "#/components/schemas/CashSessionOut"},
    ]
    assert obj["discriminator"]["propertyName"] == "object"
    for name, value in (
        ("PaymentOut", "payment"),
        ("RefundOut", "refund"),
        ("PayoutOut", "payout"),
        ("CashSessionOut", "cash_session"),
    ):
        assert schemas[name]["properties"]["object"]["const"] == value
        assert "object" in schemas[name]["required"]


def test_every_schema_is_named_so_generated_clients_need_no_made_up_names(doc: dict[str, Any]) -> None:
    """openapi-python-client invents `<Parent><Field>Type0` for an enum or object inlined in an
    anyOf/oneOf, and `<Operation><Param>` for an enum inlined in a parameter: both must be refs."""
    inlined = []
    for node in walk(doc):
        for key in ("anyOf", "oneOf"):
            for member in node.get(key, []):
                if "$ref" not in member and ("enum" in member or member.get("type") == "object"):
                    inlined.append(member)
    assert inlined == []
    for path, method, op in operations(doc):
        for param in op.get("parameters", []):
            assert "enum" not in param["schema"], (method, path, param["name"])
            assert "anyOf" not in param["schema"], (method, path, param["name"])  # never null
    schemas = doc["components"]["schemas"]
    assert schemas["PaymentStatus"]["enum"][:2] == ["requires_payment_method", "pending"]
    assert {"RefundStatus", "RefundReason", "DeliveryStatus", "NextActionType"} <= set(schemas)
