"""The reconciler asks providers about what they never reported, expires what the customer abandoned,
and with several running at once asks about each object once per round."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from gateway.main import create_app
from gateway.provider_accounts.directory import Providers
from gateway.reconciler.service import Reconciler
from gateway.settings import ReconcilerSettings
from support import Gateway, Merchant


class Quiet:
    """A second gateway process whose sandbox sends no webhooks: callbacks that never come."""

    def __init__(self, client: httpx.AsyncClient, registry: Providers):
        self.client = client
        self.registry = registry


@pytest.fixture
async def quiet(gateway: Gateway) -> AsyncIterator[Quiet]:
    base = gateway.ctx.settings
    settings = base.model_copy(update={"sandbox": base.sandbox.model_copy(update={"send_webhooks": False})})
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://quiet") as c,
    ):
        yield Quiet(c, app.state.ctx.registry)


def reconciler(gateway: Gateway, registry: Providers, **settings: Any) -> Reconciler:
    return Reconciler(gateway.ctx.db, registry, ReconcilerSettings(run_in_process=False, **settings))


async def create(
    client: httpx.AsyncClient, merchant: Merchant, method: str, amount: int = 1500
) -> dict[str, Any]:
    r = await client.post(
        "/v1/payments",
        json={"amount": amount, "currency": "KES", "provider": "sandbox", "payment_method": method},
        headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())},
    )
    body = r.json()
    return dict(body if r.status_code == 201 else body["payment"])


async def make_due(gateway: Gateway, payment_ids: list[str], *, age_seconds: float = 0) -> None:
    """Time passes: the rows' next question is now, and (optionally) they were created long ago."""
    for table, column in (("payments", "id"), ("refunds", "payment_id")):
        await gateway.execute(
            f"UPDATE {table} SET next_reconcile_at = now(), "
            "created_at = created_at - make_interval(secs => :a) "
            f"WHERE {column} = ANY(:ids)",
            ids=payment_ids,
            a=float(age_seconds),
        )


async def trail(client: httpx.AsyncClient, merchant: Merchant, payment_id: str) -> list[tuple[str, str]]:
    r = await client.get(f"/v1/payments/{payment_id}/events", headers=merchant.auth, params={"limit": 100})
    return [(e["type"], e["source"]) for e in reversed(r.json()["data"])]


async def test_a_missing_callback_is_resolved_by_query(
    quiet: Quiet, client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    p = await create(quiet.client, merchant, "pm_action_success")
    assert p["status"] == "requires_action"
    await make_due(gateway, [p["id"]], age_seconds=60)  # the customer acted long ago; no callback came
    calls = quiet.registry.calls["sandbox.fetch_payment"]

    assert await reconciler(gateway, quiet.registry).run_once() >= 1

    assert quiet.registry.calls["sandbox.fetch_payment"] - calls == 1
    assert await trail(client, merchant, p["id"]) == [
        ("payment.created", "api"),
        ("payment.requires_action", "api"),
        ("payment.succeeded", "reconciler"),
    ]
    nxt = await gateway.scalar(
        "SELECT next_reconcile_at > now() + interval '50 seconds' FROM payments WHERE id = :i", i=p["id"]
    )
    assert nxt is True


async def test_a_payment_the_customer_never_completes_expires_after_a_last_query(
    quiet: Quiet, client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    p = await create(quiet.client, merchant, "pm_action_never")
    young = await create(quiet.client, merchant, "pm_action_never")
    await make_due(gateway, [p["id"]], age_seconds=901)  # the sandbox's TTL is 900 s
    await make_due(gateway, [young["id"]], age_seconds=10)
    calls = quiet.registry.calls["sandbox.fetch_payment"]

    await reconciler(gateway, quiet.registry).run_once()

    assert quiet.registry.calls["sandbox.fetch_payment"] - calls == 2
    assert await trail(client, merchant, p["id"]) == [
        ("payment.created", "api"),
        ("payment.requires_action", "api"),
        ("payment.expired", "reconciler"),
    ]
    got = (await client.get(f"/v1/payments/{p['id']}", headers=merchant.auth)).json()
    assert (got["status"], got["next_action"], got["completed_at"] is not None) == ("expired", None, True)
    still = (await client.get(f"/v1/payments/{young['id']}", headers=merchant.auth)).json()
    assert still["status"] == "requires_action"


async def test_two_reconcilers_at_once_ask_about_each_payment_once(
    quiet: Quiet, gateway: Gateway, merchant: Merchant
) -> None:
    ids = [(await create(quiet.client, merchant, "pm_action_never"))["id"] for _ in range(12)]
    await make_due(gateway, ids)
    calls = quiet.registry.calls["sandbox.fetch_payment"]

    a, b = (
        reconciler(gateway, quiet.registry, batch_size=5),
        reconciler(gateway, quiet.registry, batch_size=5),
    )
    for _ in range(3):
        await asyncio.gather(a.run_once(), b.run_once())

    assert quiet.registry.calls["sandbox.fetch_payment"] - calls == 12
    attempts = await gateway.scalar(
        "SELECT array_agg(DISTINCT reconcile_attempts) FROM payments WHERE id = ANY(:ids)", ids=ids
    )
    assert attempts == [1]


async def test_a_refund_whose_webhook_never_comes_is_resolved_by_query(
    quiet: Quiet, client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    p = await create(quiet.client, merchant, "pm_refund_async", amount=3_000)
    r = await quiet.client.post(
        f"/v1/payments/{p['id']}/refunds",
        json={"amount": 1_000},
        headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert (r.status_code, r.json()["status"]) == (201, "pending")
    await make_due(gateway, [p["id"]], age_seconds=60)
    calls = quiet.registry.calls["sandbox.fetch_refund"]

    await reconciler(gateway, quiet.registry).run_once()

    assert quiet.registry.calls["sandbox.fetch_refund"] - calls == 1
    refund = (await client.get(f"/v1/refunds/{r.json()['id']}", headers=merchant.auth)).json()
    assert refund["status"] == "succeeded"
    after = (await client.get(f"/v1/payments/{p['id']}", headers=merchant.auth)).json()
    assert (after["status"], after["amount_refunded"]) == ("partially_refunded", 1_000)
    assert ("refund.succeeded", "reconciler") in await trail(client, merchant, p["id"])
