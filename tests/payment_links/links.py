"""Helpers of the payment links tests."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from support import Gateway, Merchant


def key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


async def create_link(client: httpx.AsyncClient, merchant: Merchant, **body: Any) -> dict[str, Any]:
    body = {"amount": 1500, "currency": "KES", "description": "Yoga class", "reusable": True} | body
    r = await client.post("/v1/payment-links", json=body, headers=merchant.auth | key())
    assert r.status_code == 201, r.text
    return dict(r.json())


def slug_of(link: dict[str, Any]) -> str:
    return str(link["url"].rsplit("/l/", 1)[1])


async def link_payments(gateway: Gateway, link_id: str) -> int:
    return int(await gateway.scalar("SELECT count(*) FROM payments WHERE payment_link_id = :l", l=link_id))
