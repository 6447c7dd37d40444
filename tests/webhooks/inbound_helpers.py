"""The sandbox's webhooks as tests send them, and what tests read back about a payment."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from gateway.kit.ids import new_id
from support import Gateway, Merchant


async def create_waiting(client: httpx.AsyncClient, merchant: Merchant) -> dict[str, Any]:
    r = await client.post(
        "/v1/payments",
        json={"amount": 1500, "currency": "KES", "provider": "sandbox", "payment_method": "pm_action_never"},
        headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert r.status_code == 201
    assert r.json()["status"] == "requires_action"
    return dict(r.json())


def sandbox_event(payment: dict[str, Any], status: str, event_id: str | None = None, **data: Any) -> bytes:
    body = {
        "id": event_id or f"sbevt_{uuid.uuid4().hex}",
        "type": f"payment.{status}",
        "created": int(datetime.now(UTC).timestamp()),
        "data": {
            "object": "payment",
            "reference": payment["provider_reference"],
            "payment_id": payment["id"],
            "status": status,
            "amount": payment["amount"],
            "currency": payment["currency"],
            "failure_code": "card_declined" if status == "failed" else None,
            "failure_message": None,
            **data,
        },
    }
    return json.dumps(body).encode()


async def payment_state(client: httpx.AsyncClient, merchant: Merchant, payment_id: str) -> tuple[str, int]:
    p = (await client.get(f"/v1/payments/{payment_id}", headers=merchant.auth)).json()
    trail = (await client.get(f"/v1/payments/{payment_id}/events", headers=merchant.auth)).json()["data"]
    return p["status"], len(trail)


async def inbox_count(gateway: Gateway, payment_id: str) -> int:
    return int(
        await gateway.scalar(
            "SELECT count(*) FROM inbound_webhooks WHERE payload->'data'->>'payment_id' = :p", p=payment_id
        )
    )


async def outcomes(gateway: Gateway, payment_id: str) -> list[str]:
    rows = await gateway.ctx.db.fetch(
        "SELECT outcome FROM inbound_webhooks WHERE payload->'data'->>'payment_id' = $1 ORDER BY outcome",
        payment_id,
    )
    return [r[0] for r in rows]


async def store_unprocessed(gateway: Gateway, payload: dict[str, Any]) -> None:
    """The sandbox event `payload` in the inbox, never processed (a crash between store and process)."""
    await gateway.execute(
        "INSERT INTO inbound_webhooks (id, provider, provider_event_id, event_type, payload) "
        "VALUES (:id, 'sandbox', :eid, 'payment.succeeded', CAST(:payload AS text)::jsonb)",
        id=new_id("iwh"),
        eid=payload["id"],
        payload=json.dumps(payload),
    )
