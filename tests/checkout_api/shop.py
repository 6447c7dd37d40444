"""A merchant with every kind of key, and the calls a browser and a merchant back end make."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from auth.credentials import Key, add_key, new_merchant
from support import Gateway


@dataclass
class Shop:
    """One merchant: its secret key (the back end) and its publishable key (the browser)."""

    id: str
    secret: Key
    publishable: Key


async def new_shop(gateway: Gateway, *, livemode: bool = False) -> Shop:
    merchant = await new_merchant(gateway, "Checkout shop")
    return Shop(
        merchant,
        await add_key(gateway, merchant, livemode=livemode),
        await add_key(gateway, merchant, "publishable", livemode=livemode),
    )


def idem(key: str | None = None) -> dict[str, str]:
    return {"Idempotency-Key": key or str(uuid.uuid4())}


async def create(client: httpx.AsyncClient, shop: Shop, **over: Any) -> dict[str, Any]:
    """A payment without a rail (requires_payment_method), as a merchant's back end makes one."""
    body = {"amount": 1500, "currency": "KES", "description": "Two coffees", **over}
    r = await client.post("/v1/payments", json=body, headers=shop.secret.auth | idem())
    assert r.status_code == 201, r.text
    payment: dict[str, Any] = r.json()
    return payment


async def confirm(
    client: httpx.AsyncClient,
    key: Key,
    payment: dict[str, Any],
    body: dict[str, Any],
    *,
    secret: str | None = None,
    idempotency_key: str | None = None,
) -> httpx.Response:
    """POST /v1/payments/{id}/confirm; a publishable key sends the payment's client secret."""
    if key.secret.startswith("pk_"):
        body = {"client_secret": secret or payment["client_secret"], **body}
    return await client.post(
        f"/v1/payments/{payment['id']}/confirm", json=body, headers=key.auth | idem(idempotency_key)
    )


async def row(gateway: Gateway, payment_id: str) -> dict[str, Any]:
    found = await gateway.ctx.db.fetchrow(
        "SELECT status, provider, attempt, provider_lease_until, next_reconcile_at, provider_reference"
        " FROM payments WHERE id = $1",
        payment_id,
    )
    assert found is not None
    return dict(found)


async def attempts(gateway: Gateway, payment_id: str) -> list[tuple[int, str, str, str | None]]:
    """(number, provider, status, provider_reference) of each attempt, oldest first."""
    rows = await gateway.ctx.db.fetch(
        "SELECT number, provider, status, provider_reference FROM payment_attempts"
        " WHERE payment_id = $1 ORDER BY number",
        payment_id,
    )
    return [(r["number"], r["provider"], r["status"], r["provider_reference"]) for r in rows]
