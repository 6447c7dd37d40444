from __future__ import annotations

import uuid

import httpx

from support import Gateway, Merchant


async def test_create_cash_payment(client: httpx.AsyncClient, merchant: Merchant, gateway: Gateway) -> None:
    r = await client.post(
        "/v1/payments",
        json={"amount": 1000, "currency": "KES", "provider": "cash"},
        headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "succeeded"
