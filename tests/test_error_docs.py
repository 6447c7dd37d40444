"""docs/api.md's error table and the gateway's errors agree: every GatewayError's code is in the table
with its status, and every code in the table is one the gateway can answer with, at that status."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from fastapi import FastAPI

from gateway import errors
from gateway.api.boundary import ErrorBoundary
from gateway.errors import GatewayError
from gateway.problems import SPECIFIC_VALIDATION_CODES, install_error_handlers

ROOT = Path(__file__).resolve().parents[1]
API_MD = ROOT / "docs" / "api.md"

# Rendered by the handlers in problems.install_error_handlers and api.boundary, not by a GatewayError: each is
# answered by a real app below.
HANDLER_CODES = {"not_found": 404, "method_not_allowed": 405, "internal_error": 500}


def error_table() -> tuple[dict[str, int], list[str]]:
    """(code -> status, the 402 row's decline codes) from the table under "## Errors"."""
    section = API_MD.read_text().split("\n## Errors\n", 1)[1].split("\n## ", 1)[0]
    rows = [
        line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| status")
    ]
    assert rows, "no error table under ## Errors"
    documented: dict[str, int] = {}
    declines: list[str] = []
    for row in rows:
        status_cell, codes_cell = (c.strip() for c in row.strip("|").split("|")[:2])
        status = int(status_cell)
        if codes_cell.startswith("the provider's decline code"):
            declines = re.findall(r"`([a-z_]+)`", codes_cell)
            continue
        # A cell may name a second status before its code ("`not_found`, 405 `method_not_allowed`").
        found = re.findall(r"(?:(\d{3})\s+)?`([a-z_]+)`", codes_cell)
        assert found, f"a row without a code: {row}"
        for own_status, code in found:
            assert code not in documented, f"{code} is in the table twice"
            documented[code] = int(own_status) if own_status else status
    return documented, declines


def gateway_errors() -> dict[str, int]:
    """code -> status of every GatewayError subclass errors.py defines."""
    out: dict[str, int] = {}
    todo = list(GatewayError.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        assert out.get(cls.code, cls.status) == cls.status, f"{cls.code} has two statuses"
        out[cls.code] = cls.status
    return out


def test_every_gateway_error_is_in_the_table_with_its_status() -> None:
    documented, _ = error_table()
    classes = gateway_errors()
    # The tree as errors.py has it (a guard against a subclass defined elsewhere being missed).
    defined = {
        v.code
        for v in vars(errors).values()
        if isinstance(v, type) and issubclass(v, GatewayError) and v is not GatewayError
    }
    assert defined <= set(classes)
    missing = {code: status for code, status in classes.items() if code not in documented}
    assert missing == {}
    wrong = {
        code: (status, documented[code]) for code, status in classes.items() if documented[code] != status
    }
    assert wrong == {}


def test_every_specific_validation_code_is_in_the_table_as_422() -> None:
    documented, _ = error_table()
    assert {code: documented.get(code) for code in SPECIFIC_VALIDATION_CODES} == dict.fromkeys(
        SPECIFIC_VALIDATION_CODES, 422
    )


def test_every_code_in_the_table_exists_with_that_status() -> None:
    documented, declines = error_table()
    known = gateway_errors() | dict.fromkeys(SPECIFIC_VALIDATION_CODES, 422) | HANDLER_CODES
    unknown = {code: status for code, status in documented.items() if code not in known}
    assert unknown == {}
    wrong = {code: (status, known[code]) for code, status in documented.items() if known[code] != status}
    assert wrong == {}
    # The 402 row's examples are decline codes the providers' transformers really produce.
    assert declines == ["card_declined", "insufficient_funds", "authentication_failed"]
    sources = "\n".join(p.read_text() for p in (ROOT / "src" / "gateway" / "providers").rglob("*.py"))
    assert [c for c in declines if f'"{c}"' not in sources] == []


async def test_the_handler_codes_are_what_the_gateway_answers(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/no-such-route")
    assert (r.status_code, r.json()["code"]) == (404, "not_found")
    r = await client.put("/v1/payments")
    assert (r.status_code, r.json()["code"]) == (405, "method_not_allowed")
    # An unexpected exception, through the same handlers and boundary on an app of its own.
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(ErrorBoundary, max_body_bytes=1024, max_webhook_body_bytes=1024)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as c:
        r = await c.get("/boom")
    assert (r.status_code, r.json()["code"]) == (500, "internal_error")
    assert "a bug" not in r.text
