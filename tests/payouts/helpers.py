"""What the payout tests share: a payout body, its create call, its status, the reconciler's question
and the payout's event trail."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import orjson

from gateway.idempotency.store import fingerprint
from gateway.merchants.service import Principal
from gateway.payouts.models import Payout
from gateway.payouts.schemas import PayoutCreate
from gateway.payouts.service import PayoutService
from support import Gateway, Merchant

# The sandbox's payout test values (docs/providers/sandbox.md): the destination's last four digits.
SUCCEEDS = "+254700000000"
PENDING_THEN_SUCCEEDS = "+254700001111"
FAILS = "+254700002222"
PENDING_THEN_FAILS = "+254700003333"
STAYS_PENDING = "+254700004444"
TIMES_OUT = "+254700005555"
PROVIDER_ERROR = "+254700006666"


def body(phone: str = SUCCEEDS, amount: int = 5_000, currency: str = "KES", **extra: Any) -> dict[str, Any]:
    return {
        "amount": amount,
        "currency": currency,
        "provider": "sandbox",
        "destination": {"type": "mobile_money", "phone": phone, "name": "Amina"},
        "reference": "rider-42",
        "metadata": {"rider": "42"},
        **extra,
    }


def key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


async def create(
    client: httpx.AsyncClient,
    merchant: Merchant,
    payload: dict[str, Any],
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return await client.post("/v1/payouts", json=payload, headers={**merchant.auth, **(headers or key())})


async def created(client: httpx.AsyncClient, merchant: Merchant, payload: dict[str, Any]) -> dict[str, Any]:
    r = await create(client, merchant, payload)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def status_of(client: httpx.AsyncClient, merchant: Merchant, payout_id: str) -> str:
    r = await client.get(f"/v1/payouts/{payout_id}", headers=merchant.auth)
    assert r.status_code == 200, r.text
    return str(r.json()["status"])


async def reconcile(gateway: Gateway, payout_id: str) -> None:
    """What the reconciler does for a due payout (its status query, applied)."""
    ctx = gateway.ctx
    await PayoutService(ctx.db, ctx.registry, ctx.settings.payouts).reconcile(payout_id)


async def forget_tokens(gateway: Gateway, prefix: str) -> None:
    """Empties a rail's shared token cache (keys under `prefix`), as on a fresh deployment."""
    keys = [k async for k in gateway.ctx.redis.scan_iter(match=prefix + "*")]
    if keys:
        await gateway.ctx.redis.delete(*keys)


async def payout_events(gateway: Gateway, payout_id: str) -> list[tuple[str, str]]:
    """(type, source) of the payout's events, oldest first, from the event log itself."""
    rows = await gateway.ctx.db.fetch(
        "SELECT type, source FROM events WHERE payout_id = $1 ORDER BY id", payout_id
    )
    return [(r["type"], r["source"]) for r in rows]


async def unsubmitted(
    gateway: Gateway,
    merchant: Merchant,
    payload: dict[str, Any],
    idempotency_key: str,
    livemode: bool = False,
) -> Payout:
    """A payout whose request died after its insert and before its submission: the service's own
    first step (the committed insert) run alone, as a crash between the two would leave it."""
    ctx = gateway.ctx
    service = PayoutService(ctx.db, ctx.registry, ctx.settings.payouts)
    provider, account_id = await ctx.registry.for_new_payout(merchant.id, payload["provider"], livemode)
    assert provider is not None
    principal = Principal(merchant_id=merchant.id, livemode=livemode, key_id="key_test")
    return await service.prepare(
        principal,
        PayoutCreate.model_validate(payload),
        provider,
        account_id,
        idempotency_key,
        fingerprint("POST", "/v1/payouts", orjson.dumps(payload)),  # as the guard computes it
    )
