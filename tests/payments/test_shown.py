"""Retrieve and list read only the columns a payment's answer shows (schemas.SHOWN) and render the
records as they come (payment_view). Their answers must be the bytes payment_json gives for the whole
row: the same payments, stored in PostgreSQL and read back through the API."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from gateway.kit.ids import new_id
from gateway.payments import repository
from gateway.payments.models import Payment
from gateway.payments.schemas import SHOWN, dump, payment_json
from support import Gateway, Merchant

T0 = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)  # whole seconds: no fraction rendered

# What the rails store: every kind of next action (with a key a provider added), of method details
# (JSONB keeps its own key order), a route, and text PostgreSQL holds as it is given.
VARIANTS: list[dict[str, Any]] = [
    {},
    {
        "status": "requires_action",
        "provider": "sandbox",
        "next_action": {
            "type": "redirect_to_url",
            "redirect_to_url": {"url": "https://pay.example/x?a=1&b=é", "return_url": None, "extra": 1},
        },
        "created_at": T0 + timedelta(microseconds=600),
        "updated_at": T0 + timedelta(microseconds=999_999),
    },
    {
        "status": "requires_action",
        "provider": "mpesa",
        "next_action": {"type": "mobile_money_prompt", "mobile_money_prompt": {"message": "Enter your PIN"}},
        "payment_method_details": {
            "type": "mobile_money",
            "receipt": "QK12AB34CD",
            "operator": "mpesa",
            "phone_last4": "5678",
        },
        "routing": {
            "route": ["mpesa", "airtel"],
            "attempts": [
                {"outcome": "provider_unavailable", "provider": "airtel", "number": 1},
                {"number": 2, "provider": "mpesa", "outcome": "current"},
            ],
        },
    },
    {
        "status": "succeeded",
        "provider": "sandbox",
        "payment_method": "pm_success",
        "payment_method_details": {
            "funding": "credit",
            "type": "card",
            "brand": "visa",
            "last4": "4242",
            "exp_month": 12,
            "exp_year": 2030,
            "country": "KE",
        },
        "customer_name": 'Wanjiku "Shiku" Kamau\n\t\u2028😀',
        "customer_email": "wanjiku@example.com",
        "customer_phone": "+254712345678",
        "customer_location": "Nairobi",
        "description": "\\ back\u0001slash </script>",
        "reference": "order_1042",
        "metadata_": {"order_id": "1042", "a": "", "ключ": "значение", "long key name": "x" * 300},
        "provider_reference": "ws_CO_123",
        "completed_at": T0 + timedelta(seconds=3, microseconds=1),
        "locale": "fr",
        "allow_retries": False,
        "amount_refunded": 500,
    },
    {
        "status": "failed",
        "provider": "cash",
        "failure_code": "insufficient_funds",
        "failure_message": "The customer's balance is too low.",
        "next_action": {"type": "collect_cash", "collect_cash": {}},
        "payment_method_details": {"type": "cash", "till": None},
        "return_url": "https://shop.example/done",
        "completed_at": T0,
    },
]


def _row(merchant_id: str, i: int, changes: dict[str, Any]) -> Payment:
    pid = new_id("pay")
    row = Payment(
        id=pid,
        merchant_id=merchant_id,
        livemode=False,
        amount=2500 + i,
        amount_refunded=0,
        currency="KES",
        # Settled and never due: the reconciler of a later test must not find these rows (made
        # months ago, an unconfirmed one would be expired under it; a due one asked about).
        status="canceled",
        provider=None,
        payment_method=None,
        customer_name=None,
        customer_email=None,
        customer_phone=None,
        customer_location=None,
        description=None,
        reference=None,
        metadata_={},
        return_url=None,
        provider_reference=None,
        next_action=None,
        failure_code=None,
        failure_message=None,
        idempotency_key=f"shown-{pid}",
        request_fingerprint="f" * 64,
        provider_lease_until=T0,
        next_reconcile_at=None,
        reconcile_attempts=2,
        created_at=T0 + timedelta(seconds=i),
        updated_at=T0 + timedelta(seconds=i, microseconds=123_456),
        completed_at=None,
        payment_method_details=None,
        provider_receipt="R123",
        provider_account_id=None,
        client_secret=f"{pid}_secret_abc",
        checkout_id=new_id("cs"),
        attempt=1,
        attempted_at=T0,
        provider_private={"pay_token": "never shown"},
    )
    return dataclasses.replace(row, **changes)


async def _stored(gateway: Gateway, merchant: Merchant) -> list[Payment]:
    """The variants inserted for the merchant, as `repository.get` reads them back (whole rows)."""
    db = gateway.ctx.db
    async with db.transaction() as tx:
        for i, changes in enumerate(VARIANTS):
            assert await repository.insert(tx, _row(merchant.id, i, changes)) is not None
    listed = await db.fetch("SELECT id FROM payments WHERE merchant_id = $1 ORDER BY id", merchant.id)
    rows = [await repository.get(db, merchant.id, False, r["id"]) for r in listed]
    return [r for r in rows if r is not None]


async def test_retrieve_answers_payment_json_of_the_whole_row(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    rows = await _stored(gateway, merchant)
    assert len(rows) == len(VARIANTS)
    for row in rows:
        got = await client.get(f"/v1/payments/{row.id}", headers=merchant.auth)
        assert got.status_code == 200
        assert got.content == dump(payment_json(row, client_secret=True))
        assert got.json()["client_secret"] == row.client_secret
        assert b"never shown" not in got.content


async def test_list_pages_answer_payment_json_of_the_whole_rows(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    rows = await _stored(gateway, merchant)
    newest_first = sorted(rows, key=lambda r: r.id, reverse=True)

    def page(shown: list[Payment], has_more: bool) -> bytes:
        data = [payment_json(r, client_secret=True) for r in shown]
        return dump({"object": "list", "data": data, "has_more": has_more})

    whole = await client.get("/v1/payments", headers=merchant.auth)
    assert (whole.status_code, whole.content) == (200, page(newest_first, False))

    first = await client.get("/v1/payments", params={"limit": 2}, headers=merchant.auth)
    assert first.content == page(newest_first[:2], True)
    after = await client.get(
        "/v1/payments", params={"limit": 2, "starting_after": newest_first[1].id}, headers=merchant.auth
    )
    assert after.content == page(newest_first[2:4], True)
    before = await client.get(
        "/v1/payments", params={"limit": 2, "ending_before": newest_first[4].id}, headers=merchant.auth
    )
    assert before.content == page(newest_first[2:4], True)
    last = await client.get(
        "/v1/payments", params={"limit": 2, "starting_after": newest_first[3].id}, headers=merchant.auth
    )
    assert last.content == page(newest_first[4:], False)

    failed = await client.get("/v1/payments", params={"status": "failed"}, headers=merchant.auth)
    assert failed.content == page([r for r in newest_first if r.status == "failed"], False)


def test_shown_names_every_field_payment_json_reads_and_no_secret_column() -> None:
    fields = {f.name for f in dataclasses.fields(Payment)}
    assert set(SHOWN) <= fields
    assert len(set(SHOWN)) == len(SHOWN)
    # What answers never hold stays out of the SELECT: it cannot leak into one by mistake.
    assert not {"provider_private", "idempotency_key", "request_fingerprint", "merchant_id"} & set(SHOWN)
