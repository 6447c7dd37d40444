"""Payments through the sandbox and cash: every scenario, the event trail, cancel, sync, tenancy."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from support import ACTION_DELAY, Gateway, Merchant, wait_for


async def create(client: httpx.AsyncClient, merchant: Merchant, **fields: Any) -> httpx.Response:
    body = {"amount": 1500, "currency": "KES", "provider": "sandbox", **fields}
    return await client.post(
        "/v1/payments", json=body, headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())}
    )


async def events(client: httpx.AsyncClient, merchant: Merchant, payment_id: str) -> list[dict[str, Any]]:
    r = await client.get(f"/v1/payments/{payment_id}/events", headers=merchant.auth, params={"limit": 100})
    assert r.status_code == 200
    return list(reversed(r.json()["data"]))  # oldest first


async def status_of(client: httpx.AsyncClient, merchant: Merchant, payment_id: str) -> str:
    r = await client.get(f"/v1/payments/{payment_id}", headers=merchant.auth)
    return str(r.json()["status"])


async def test_immediate_success_has_the_full_payment_shape(
    client: httpx.AsyncClient, merchant: Merchant
) -> None:
    r = await create(
        client,
        merchant,
        payment_method="pm_success",
        description="Two mangoes",
        reference="order_1",
        metadata={"cart": "42"},
        customer={
            "name": "Amina",
            "email": "amina@Example.com",
            "phone": "+254 712 345678",
            "location": "Nairobi",
        },
    )
    assert r.status_code == 201
    p = r.json()
    assert p["id"].startswith("pay_")
    expected = {
        "object": "payment",
        "amount": 1500,
        "amount_refunded": 0,
        "currency": "KES",
        "status": "succeeded",
        "provider": "sandbox",
        "payment_method": "pm_success",
        "description": "Two mangoes",
        "reference": "order_1",
        "metadata": {"cart": "42"},
        "livemode": False,
        "provider_reference": "sbx_" + p["id"][4:],
        "next_action": None,
        "failure_code": None,
        "failure_message": None,
        "return_url": None,
        "customer": {
            "name": "Amina",
            "email": "amina@example.com",
            "phone": "+254712345678",
            "location": "Nairobi",
        },
    }
    assert {k: p[k] for k in expected} == expected
    assert p["completed_at"] is not None
    got = await client.get(f"/v1/payments/{p['id']}", headers=merchant.auth)
    assert got.json() == p
    trail = await events(client, merchant, p["id"])
    assert [(e["type"], e["data"]["previous_status"]) for e in trail] == [
        ("payment.created", None),
        ("payment.succeeded", "pending"),
    ]
    assert trail[-1]["data"]["object"]["status"] == "succeeded"


async def test_cash_succeeds_at_once_in_any_iso_currency(
    client: httpx.AsyncClient, merchant: Merchant, gateway: Gateway
) -> None:
    r = await create(client, merchant, provider="cash", currency="UGX", amount=50_000)
    assert r.status_code == 201
    assert r.json()["status"] == "succeeded"
    assert r.json()["provider_reference"] == "cash_" + r.json()["id"][4:]


@pytest.mark.parametrize(
    ("method", "code"),
    [("pm_insufficient_funds", "insufficient_funds"), ("pm_card_declined", "card_declined")],
)
async def test_decline_is_402_with_the_failed_payment(
    client: httpx.AsyncClient, merchant: Merchant, gateway: Gateway, method: str, code: str
) -> None:
    r = await create(client, merchant, payment_method=method)
    assert r.status_code == 402
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["code"] == code
    assert body["status"] == 402
    assert body["payment"]["status"] == "failed"
    assert body["payment"]["failure_code"] == code
    row = await gateway.scalar("SELECT status FROM payments WHERE id = :i", i=body["payment"]["id"])
    assert row == "failed"


async def test_customer_action_then_success_by_signed_webhook(
    client: httpx.AsyncClient, merchant: Merchant, gateway: Gateway
) -> None:
    r = await create(
        client, merchant, payment_method="pm_action_success", return_url="https://shop.example/done"
    )
    assert r.status_code == 201
    p = r.json()
    assert p["status"] == "requires_action"
    assert p["next_action"] == {
        "type": "redirect_to_url",
        "redirect_to_url": {
            "url": f"https://sandbox.gateway.invalid/authorize/sbx_{p['id'][4:]}",
            "return_url": "https://shop.example/done",
        },
    }

    async def done() -> bool:
        return await status_of(client, merchant, p["id"]) == "succeeded"

    await wait_for(done, timeout=ACTION_DELAY + 10)
    trail = await events(client, merchant, p["id"])
    assert [(e["type"], e["source"]) for e in trail] == [
        ("payment.created", "api"),
        ("payment.requires_action", "api"),
        ("payment.succeeded", "webhook"),
    ]
    stored = await gateway.scalar(
        "SELECT outcome FROM inbound_webhooks WHERE provider_event_id = :e",
        e=f"sbevt_sbx_{p['id'][4:]}_succeeded",
    )
    assert stored == "processed"


async def test_customer_action_then_failure(client: httpx.AsyncClient, merchant: Merchant) -> None:
    p = (await create(client, merchant, payment_method="pm_action_failure")).json()

    async def failed() -> bool:
        return await status_of(client, merchant, p["id"]) == "failed"

    await wait_for(failed, timeout=ACTION_DELAY + 10)
    got = (await client.get(f"/v1/payments/{p['id']}", headers=merchant.auth)).json()
    assert got["failure_code"] == "authentication_failed"
    assert got["next_action"] is None


@pytest.mark.parametrize(
    ("method", "status", "code"),
    [("pm_provider_timeout", 504, "provider_timeout"), ("pm_provider_error", 502, "provider_error")],
)
async def test_provider_outage_leaves_a_pending_payment_that_sync_resolves(
    client: httpx.AsyncClient, merchant: Merchant, gateway: Gateway, method: str, status: int, code: str
) -> None:
    key = str(uuid.uuid4())
    headers = {**merchant.auth, "Idempotency-Key": key}
    body = {"amount": 1500, "currency": "KES", "provider": "sandbox", "payment_method": method}
    calls = gateway.calls("sandbox.create_payment")
    r = await client.post("/v1/payments", json=body, headers=headers)
    assert r.status_code == status
    assert r.json()["code"] == code
    payment_id = r.json()["payment"]["id"]
    assert await status_of(client, merchant, payment_id) == "pending"

    # A retry with the same key resumes the same payment: same provider reference, no second row.
    retry = await client.post("/v1/payments", json=body, headers=headers)
    assert retry.status_code == status
    assert retry.json()["payment"]["id"] == payment_id
    assert gateway.calls("sandbox.create_payment") - calls == 2
    assert await gateway.scalar("SELECT count(*) FROM payments WHERE merchant_id = :m", m=merchant.id) == 1

    synced = await client.post(f"/v1/payments/{payment_id}/sync", headers=merchant.auth)
    assert synced.status_code == 200
    assert synced.json()["status"] == "succeeded"
    trail = await events(client, merchant, payment_id)
    assert [(e["type"], e["source"]) for e in trail] == [
        ("payment.created", "api"),
        ("payment.succeeded", "sync"),
    ]


async def test_sync_of_a_waiting_payment_changes_nothing(
    client: httpx.AsyncClient, merchant: Merchant
) -> None:
    p = (await create(client, merchant, payment_method="pm_action_never")).json()
    r = await client.post(f"/v1/payments/{p['id']}/sync", headers=merchant.auth)
    assert r.status_code == 200
    assert r.json()["status"] == "requires_action"
    assert len(await events(client, merchant, p["id"])) == 2


async def test_cancel_a_waiting_payment(
    client: httpx.AsyncClient, merchant: Merchant, gateway: Gateway
) -> None:
    p = (await create(client, merchant, payment_method="pm_action_never")).json()
    headers = {**merchant.auth, "Idempotency-Key": str(uuid.uuid4())}
    r = await client.post(f"/v1/payments/{p['id']}/cancel", headers=headers)
    assert r.status_code == 200
    assert r.json()["status"] == "canceled"
    assert r.json()["next_action"] is None
    replay = await client.post(f"/v1/payments/{p['id']}/cancel", headers=headers)
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.content == r.content

    again = await client.post(
        f"/v1/payments/{p['id']}/cancel", headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())}
    )
    assert again.status_code == 409
    assert again.json()["code"] == "payment_not_cancelable"
    trail = await events(client, merchant, p["id"])
    assert [e["type"] for e in trail] == ["payment.created", "payment.requires_action", "payment.canceled"]
    # The sandbox remembers the cancellation: a sync does not resurrect the payment.
    synced = await client.post(f"/v1/payments/{p['id']}/sync", headers=merchant.auth)
    assert synced.json()["status"] == "canceled"


async def test_cancel_needs_an_idempotency_key(client: httpx.AsyncClient, merchant: Merchant) -> None:
    p = (await create(client, merchant, payment_method="pm_action_never")).json()
    r = await client.post(f"/v1/payments/{p['id']}/cancel", headers=merchant.auth)
    assert r.status_code == 400
    assert r.json()["code"] == "idempotency_key_missing"
    assert await status_of(client, merchant, p["id"]) == "requires_action"


async def test_a_succeeded_payment_cannot_be_canceled(client: httpx.AsyncClient, merchant: Merchant) -> None:
    p = (await create(client, merchant, payment_method="pm_success")).json()
    r = await client.post(
        f"/v1/payments/{p['id']}/cancel", headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())}
    )
    assert r.status_code == 409
    assert r.json()["code"] == "payment_not_cancelable"
    assert await status_of(client, merchant, p["id"]) == "succeeded"


async def test_merchants_never_see_each_others_payments(
    client: httpx.AsyncClient, merchant: Merchant, other_merchant: Merchant
) -> None:
    mine = (await create(client, merchant, payment_method="pm_action_never")).json()
    theirs = (await create(client, other_merchant, payment_method="pm_success")).json()
    b = other_merchant.auth
    key = {"Idempotency-Key": str(uuid.uuid4())}
    for r in (
        await client.get(f"/v1/payments/{mine['id']}", headers=b),
        await client.get(f"/v1/payments/{mine['id']}/events", headers=b),
        await client.post(f"/v1/payments/{mine['id']}/cancel", headers={**b, **key}),
        await client.post(f"/v1/payments/{mine['id']}/sync", headers=b),
    ):
        assert r.status_code == 404, r.text
        assert r.json()["code"] == "resource_missing"
    assert [p["id"] for p in (await client.get("/v1/payments", headers=b)).json()["data"]] == [theirs["id"]]
    assert [p["id"] for p in (await client.get("/v1/payments", headers=merchant.auth)).json()["data"]] == [
        mine["id"]
    ]
    assert await status_of(client, merchant, mine["id"]) == "requires_action"
