"""Card numbers never enter the gateway: refused before anything is stored, never echoed."""

from __future__ import annotations

import uuid

import httpx
import pytest

from support import Gateway, Merchant


@pytest.mark.parametrize("provider", ["stripe", "sandbox", "paystack"])
@pytest.mark.parametrize("pan", ["4242424242424242", "4000 0025 0000 3155", "5555-5555-5555-4444"])
async def test_a_card_number_as_payment_method_is_422_and_not_stored(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, provider: str, pan: str
) -> None:
    r = await client.post(
        "/v1/payments",
        json={"amount": 5_000, "currency": "KES", "provider": provider, "payment_method": pan},
        headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert r.status_code == 422
    assert r.json()["code"] == "card_number_not_allowed"
    assert r.json()["errors"][0]["loc"] == ["body", "payment_method"]
    assert pan not in r.text
    assert pan.replace(" ", "").replace("-", "") not in r.text
    assert await gateway.scalar("SELECT count(*) FROM payments WHERE merchant_id = :m", m=merchant.id) == 0


async def test_tokens_and_short_digit_strings_pass(client: httpx.AsyncClient, merchant: Merchant) -> None:
    r = await client.post(
        "/v1/payments",
        json={"amount": 5_000, "currency": "KES", "provider": "sandbox", "payment_method": "pm_success"},
        headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert r.status_code == 201
