"""What the cash drawer tests share: opening and closing sessions, cash payments and refunds
through the API, as a till application would call it."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from support import Merchant


def key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


def drawer_name() -> str:
    """A drawer of its own per test: the session gateway's merchants are new per test anyway."""
    return f"till-{uuid.uuid4().hex[:8]}"


async def open_session(
    client: httpx.AsyncClient,
    merchant: Merchant,
    drawer: str,
    *,
    opening_float: int = 5_000,
    currency: str = "KES",
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> httpx.Response:
    return await client.post(
        f"/v1/cash-drawers/{drawer}/sessions",
        json={"opening_float": opening_float, "currency": currency, **extra},
        headers={**merchant.auth, **(headers or key())},
    )


async def opened(client: httpx.AsyncClient, merchant: Merchant, drawer: str, **kw: Any) -> dict[str, Any]:
    r = await open_session(client, merchant, drawer, **kw)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def close_session(
    client: httpx.AsyncClient,
    merchant: Merchant,
    drawer: str,
    session_id: str,
    counted: int,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> httpx.Response:
    return await client.post(
        f"/v1/cash-drawers/{drawer}/sessions/{session_id}/close",
        json={"counted": counted, **extra},
        headers={**merchant.auth, **(headers or key())},
    )


async def pay_cash(
    client: httpx.AsyncClient,
    merchant: Merchant,
    session_id: str | None,
    amount: int,
    *,
    currency: str = "KES",
    provider: str = "cash",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    body: dict[str, Any] = {"amount": amount, "currency": currency, "provider": provider}
    if provider == "sandbox":
        body["payment_method"] = "pm_success"
    if session_id is not None:
        body["cash_session"] = session_id
    return await client.post("/v1/payments", json=body, headers={**merchant.auth, **(headers or key())})


async def refund(
    client: httpx.AsyncClient, merchant: Merchant, payment_id: str, amount: int, **extra: Any
) -> httpx.Response:
    return await client.post(
        f"/v1/payments/{payment_id}/refunds",
        json={"amount": amount, **extra},
        headers={**merchant.auth, **key()},
    )
