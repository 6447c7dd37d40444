"""Confirm on M-Pesa from the browser: the exact STK push, the prompt, the callback; a retry after
the customer canceled, and the late callback of that earlier attempt, which moves nothing. Daraja is
answered by respx (tests/drivers/mpesa.py), with bodies as /work/shared/providers.md shows them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import respx

from checkout_api.shop import Shop, attempts, confirm, create, new_shop
from drivers.mpesa import PHONE, FakeDaraja, callback_headers, receipt, stk_callback
from gateway.providers.mpesa.adapter import MpesaProvider
from gateway.providers.registry import _Instrumented
from support import MPESA_CALLBACK_TOKEN, Gateway, wait_for

# The official sample's Timestamp and the Password it makes with the sandbox shortcode and passkey
# (as tests/providers/test_mpesa.py): 09:24:08 in Nairobi (EAT, UTC+3) is 06:24:08 UTC.
SAMPLE_TIMESTAMP = "20210628092408"
SAMPLE_PASSWORD = (
    "MTc0Mzc5YmZiMjc5ZjlhYTliZGJjZjE1OGU5N2RkNzFhNDY3Y2QyZTBjODkzMDU5YjEwZjc4"
    "ZTZiNzJhZGExZWQyYzkxOTIwMjEwNjI4MDkyNDA4"
)
FROZEN = datetime(2021, 6, 28, 6, 24, 8, tzinfo=UTC)


def adapter_of(gateway: Gateway) -> MpesaProvider:
    wrapped = gateway.ctx.registry.get("mpesa")
    assert isinstance(wrapped, _Instrumented)
    inner = wrapped._inner
    assert isinstance(inner, MpesaProvider)
    return inner


@pytest.fixture
def daraja(provider_http: respx.Router) -> FakeDaraja:
    fake = FakeDaraja()
    fake.install(provider_http)
    return fake


@pytest.fixture
def frozen(gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(adapter_of(gateway), "clock", lambda: FROZEN)


@pytest.fixture
async def shop(gateway: Gateway) -> Shop:
    return await new_shop(gateway)


async def callback(client: httpx.AsyncClient, content: bytes) -> None:
    r = await client.post(
        f"/v1/webhooks/mpesa/{MPESA_CALLBACK_TOKEN}", content=content, headers=callback_headers()
    )
    assert r.status_code == 200, r.text


async def public(client: httpx.AsyncClient, shop: Shop, p: dict[str, Any]) -> dict[str, Any]:
    r = await client.get(
        f"/v1/payments/{p['id']}", params={"client_secret": p["client_secret"]}, headers=shop.publishable.auth
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_confirm_pushes_the_prompt_then_the_callback_settles_it(
    gateway: Gateway, client: httpx.AsyncClient, shop: Shop, daraja: FakeDaraja, frozen: None
) -> None:
    p = await create(
        client, shop, amount=5_000, reference="INV-2024-00042", description="Order 42 at the shop"
    )
    r = await confirm(client, shop.publishable, p, {"provider": "mpesa", "customer": {"phone": "0708374149"}})
    # A national number is no E.164 number: refused before anything is sent.
    assert r.status_code == 422
    assert daraja.pushes == []
    r = await confirm(client, shop.publishable, p, {"provider": "mpesa", "customer": {"phone": PHONE}})
    assert r.status_code == 200, r.text
    assert daraja.pushes == [
        {
            "BusinessShortCode": 174379,
            "Password": SAMPLE_PASSWORD,
            "Timestamp": SAMPLE_TIMESTAMP,
            "TransactionType": "CustomerPayBillOnline",
            "Amount": 50,
            "PartyA": "254708374149",
            "PartyB": "174379",
            "PhoneNumber": "254708374149",
            "CallBackURL": f"{client.base_url}/v1/webhooks/mpesa/{MPESA_CALLBACK_TOKEN}",
            "AccountReference": "INV202400042",
            "TransactionDesc": "Order 42 at t",
        }
    ]
    shown = r.json()
    assert shown["status"] == "requires_action"
    assert shown["next_action"] == {
        "type": "mobile_money_prompt",
        "mobile_money_prompt": {
            "phone": PHONE,
            "message": f"Enter your M-Pesa PIN on the prompt sent to {PHONE} to pay KES 50.",
        },
    }
    [(number, provider, status, checkout)] = await attempts(gateway, p["id"])
    assert (number, provider, status) == (1, "mpesa", "requires_action")
    assert checkout is not None
    assert checkout.startswith("ws_CO_")
    full = (await client.get(f"/v1/payments/{p['id']}", headers=shop.secret.auth)).json()
    assert (full["customer"]["phone"], full["provider_reference"]) == (PHONE, checkout)

    # The customer enters the PIN; Daraja calls back; the gateway asks STK Query and applies it.
    mpesa_receipt = daraja.pay(full)
    await callback(
        client,
        stk_callback(
            checkout, daraja.merchant_request_of[checkout], 0, amount=5_000, mpesa_receipt=mpesa_receipt
        ),
    )

    async def settled() -> bool:
        return bool((await public(client, shop, p))["status"] == "succeeded")

    await wait_for(settled)
    assert await attempts(gateway, p["id"]) == [(1, "mpesa", "succeeded", checkout)]


async def test_a_retry_after_a_cancel_is_a_new_push_and_the_old_callback_moves_nothing(
    gateway: Gateway, client: httpx.AsyncClient, shop: Shop, daraja: FakeDaraja
) -> None:
    p = await create(client, shop, amount=5_000, reference="ORDER77")
    body = {"provider": "mpesa", "customer": {"phone": PHONE}}
    first = await confirm(client, shop.publishable, p, body)
    assert first.json()["status"] == "requires_action"
    [(_, _, _, old)] = await attempts(gateway, p["id"])
    assert old is not None
    # The customer cancels the prompt: Daraja says so, STK Query confirms it.
    daraja.outcomes[old] = "1032"
    await callback(client, stk_callback(old, daraja.merchant_request_of[old], 1032))

    async def failed() -> bool:
        return bool((await public(client, shop, p))["status"] == "failed")

    await wait_for(failed)
    assert (await public(client, shop, p))["last_payment_error"]["code"] == "customer_canceled"

    # The customer tries again: a second push, a second attempt, a new CheckoutRequestID.
    second = await confirm(client, shop.publishable, p, body)
    assert second.status_code == 200, second.text
    assert second.json()["status"] == "requires_action"
    assert len(daraja.pushes) == 2
    recorded = await attempts(gateway, p["id"])
    assert [(n, s) for n, _, s, _ in recorded] == [(1, "failed"), (2, "requires_action")]
    new = recorded[1][3]
    assert new is not None
    assert new != old

    # Late news of the first attempt (Daraja's STK Query now even says it was paid): stale, not applied.
    daraja.outcomes[old] = "0"
    queries = gateway.calls("mpesa.fetch_payment")
    await callback(
        client,
        stk_callback(old, daraja.merchant_request_of[old], 0, amount=5_000, mpesa_receipt=receipt()),
    )

    async def judged() -> bool:
        stale: int = await gateway.scalar(
            "SELECT count(*) FROM inbound_webhooks WHERE provider = 'mpesa' AND outcome = 'stale'"
            " AND payload::text LIKE :c",
            c=f"%{old}%",
        )
        return stale == 1

    await wait_for(judged)
    assert (await public(client, shop, p))["status"] == "requires_action"
    assert gateway.calls("mpesa.fetch_payment") == queries  # nothing was even asked about it
    events = (await client.get(f"/v1/payments/{p['id']}/events", headers=shop.secret.auth)).json()["data"]
    assert [e["type"] for e in reversed(events)] == [
        "payment.created",
        "payment.pending",
        "payment.requires_action",
        "payment.failed",
        "payment.pending",
        "payment.requires_action",
    ]

    # The current attempt's own callback still settles the payment.
    daraja.outcomes[new] = "0"
    daraja.receipts[new] = receipt()
    await callback(
        client,
        stk_callback(
            new, daraja.merchant_request_of[new], 0, amount=5_000, mpesa_receipt=daraja.receipts[new]
        ),
    )

    async def paid() -> bool:
        return bool((await public(client, shop, p))["status"] == "succeeded")

    await wait_for(paid)
    assert [s for _, _, s, _ in await attempts(gateway, p["id"])] == ["failed", "succeeded"]
