"""Each merchant's payments go through its own provider accounts, and its webhooks are verified with
its own secrets (issue #13). Provider HTTP is answered by respx as docs/providers/ shows it; the
accounts are made through the API, exactly as a merchant would."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import httpx
import respx

from drivers.mpesa import PHONE, FakeDaraja, stk_callback
from drivers.paystack import EMAIL, initialize_answer, reference, sign, transaction
from support import (
    PAYSTACK_API,
    PAYSTACK_SECRET_KEY,
    Gateway,
    Merchant,
    assert_problem,
    configured_app,
    wait_for,
)

INITIALIZE = f"{PAYSTACK_API}/transaction/initialize"
KEY_A = "sk_test_" + "a1" * 20
KEY_B = "sk_test_" + "b2" * 20


def mpesa_credentials(tag: str, shortcode: str) -> dict[str, str]:
    return {
        "consumer_key": f"consumer-key-of-{tag}-0123456789",
        "consumer_secret": f"consumer-secret-of-{tag}-987654",
        "shortcode": shortcode,
        "passkey": f"passkey-of-{tag}-" + "f" * 40,
    }


async def put_account(
    client: httpx.AsyncClient, merchant: Merchant, provider: str, credentials: dict[str, str]
) -> dict[str, Any]:
    r = await client.put(
        f"/v1/provider-accounts/{provider}", json={"credentials": credentials}, headers=merchant.auth
    )
    assert r.status_code == 200, r.text
    account: dict[str, Any] = r.json()
    assert account["id"].startswith("acct_")
    return account


async def create(client: httpx.AsyncClient, merchant: Merchant, body: dict[str, Any]) -> dict[str, Any]:
    r = await client.post(
        "/v1/payments", json=body, headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())}
    )
    assert r.status_code == 201, r.text
    payment: dict[str, Any] = r.json()
    return payment


async def status(client: httpx.AsyncClient, merchant: Merchant, payment_id: str) -> str:
    r = await client.get(f"/v1/payments/{payment_id}", headers=merchant.auth)
    assert r.status_code == 200, r.text
    return str(r.json()["status"])


def paystack_payment(amount: int = 10_050) -> dict[str, Any]:
    return {"amount": amount, "currency": "NGN", "provider": "paystack", "customer": {"email": EMAIL}}


async def test_each_merchants_paystack_payments_use_its_own_key_and_its_own_webhook_secret(
    gateway: Gateway,
    client: httpx.AsyncClient,
    merchant: Merchant,
    other_merchant: Merchant,
    provider_http: respx.Router,
) -> None:
    account_a = await put_account(client, merchant, "paystack", {"secret_key": KEY_A})
    account_b = await put_account(client, other_merchant, "paystack", {"secret_key": KEY_B})
    route = provider_http.post(INITIALIZE).mock(
        side_effect=lambda req: httpx.Response(
            200, json=initialize_answer(json.loads(req.content)["reference"])
        )
    )

    pay_a = await create(client, merchant, paystack_payment())
    pay_b = await create(client, other_merchant, paystack_payment(20_000))
    assert [c.request.headers["authorization"] for c in route.calls] == [f"Bearer {KEY_A}", f"Bearer {KEY_B}"]
    assert PAYSTACK_SECRET_KEY not in str([c.request.headers for c in route.calls])
    rows = await gateway.scalar(
        "SELECT json_agg(provider_account_id ORDER BY amount) FROM payments WHERE id IN (:a, :b)",
        a=pay_a["id"],
        b=pay_b["id"],
    )
    assert rows == [account_a["id"], account_b["id"]]

    url_a = f"/v1/webhooks/paystack/{account_a['id']}"
    assert account_a["webhook_url"] == gateway.base_url + url_a
    success_a = json.dumps(
        {"event": "charge.success", "data": transaction(reference(pay_a["id"]), 10_050, "NGN", "success")}
    ).encode()
    # Signed with B's secret, or with the deployment's, on A's URL: refused, nothing stored.
    for wrong in (KEY_B, PAYSTACK_SECRET_KEY):
        r = await client.post(url_a, content=success_a, headers=sign(success_a, wrong))
        assert_problem(r, 401, "webhook_signature_invalid")
    # On B's URL, signed with B's secret, naming A's payment: B's account cannot move A's money.
    r = await client.post(
        f"/v1/webhooks/paystack/{account_b['id']}", content=success_a, headers=sign(success_a, KEY_B)
    )
    assert r.status_code == 200, r.text
    await wait_for(
        lambda: _outcome(gateway, account_b["id"], "unmatched"),
    )
    assert await status(client, merchant, pay_a["id"]) == "requires_action"
    # A's own secret on A's URL: A's payment succeeds.
    r = await client.post(url_a, content=success_a, headers=sign(success_a, KEY_A))
    assert r.status_code == 200, r.text

    async def succeeded() -> bool:
        return await status(client, merchant, pay_a["id"]) == "succeeded"

    await wait_for(succeeded)
    assert await status(client, other_merchant, pay_b["id"]) == "requires_action"
    stored = await gateway.scalar(
        "SELECT count(*) FROM inbound_webhooks WHERE account_id IN (:a, :b)",
        a=account_a["id"],
        b=account_b["id"],
    )
    assert stored == 2


async def _outcome(gateway: Gateway, account_id: str, outcome: str) -> bool:
    found = await gateway.scalar(
        "SELECT count(*) FROM inbound_webhooks WHERE account_id = :a AND outcome = :o",
        a=account_id,
        o=outcome,
    )
    return bool(found)


async def test_each_merchants_mpesa_prompts_use_its_own_app_and_shortcode_and_callback_url(
    gateway: Gateway,
    client: httpx.AsyncClient,
    merchant: Merchant,
    other_merchant: Merchant,
    provider_http: respx.Router,
) -> None:
    daraja = FakeDaraja()
    daraja.install(provider_http)
    creds_a, creds_b = mpesa_credentials("a", "600100"), mpesa_credentials("b", "600200")
    account_a = await put_account(client, merchant, "mpesa", creds_a)
    account_b = await put_account(client, other_merchant, "mpesa", creds_b)
    body = {"amount": 5_000, "currency": "KES", "provider": "mpesa", "customer": {"phone": PHONE}}

    pay_a = await create(client, merchant, body)
    pay_b = await create(client, other_merchant, body)
    assert [str(p["BusinessShortCode"]) for p in daraja.pushes] == ["600100", "600200"]
    passwords = [base64.b64decode(p["Password"]).decode() for p in daraja.pushes]
    assert passwords[0].startswith("600100" + creds_a["passkey"])
    assert passwords[1].startswith("600200" + creds_b["passkey"])
    oauth = [c.request.headers["authorization"] for c in provider_http.routes["mpesa_oauth"].calls]
    basic = {base64.b64decode(h.removeprefix("Basic ")).decode().split(":")[0] for h in oauth}
    assert {creds_a["consumer_key"], creds_b["consumer_key"]} <= basic
    # Each prompt's CallBackURL is its account's, with the account's own path token.
    url_a, url_b = daraja.pushes[0]["CallBackURL"], daraja.pushes[1]["CallBackURL"]
    assert url_a.startswith(f"{gateway.base_url}/v1/webhooks/mpesa/{account_a['id']}/")
    assert url_b.startswith(f"{gateway.base_url}/v1/webhooks/mpesa/{account_b['id']}/")
    assert account_a["webhook_url"] == url_a
    token_a = url_a.rsplit("/", 1)[1]
    assert len(token_a) >= 24
    assert token_a not in url_b

    # The customer pays A; Daraja calls A's URL; the gateway asks Daraja (with A's shortcode).
    receipt = daraja.pay(pay_a)
    callback = stk_callback(
        pay_a["provider_reference"],
        daraja.merchant_request_of[pay_a["provider_reference"]],
        0,
        amount=5_000,
        mpesa_receipt=receipt,
    )
    # B's token on A's account: refused.
    token_b = url_b.rsplit("/", 1)[1]
    r = await client.post(
        f"/v1/webhooks/mpesa/{account_a['id']}/{token_b}",
        content=callback,
        headers={"content-type": "application/json"},
    )
    assert_problem(r, 401, "webhook_signature_invalid")
    r = await client.post(
        url_a.removeprefix(gateway.base_url), content=callback, headers={"content-type": "application/json"}
    )
    assert r.status_code == 200, r.text

    async def succeeded() -> bool:
        return await status(client, merchant, pay_a["id"]) == "succeeded"

    await wait_for(succeeded)
    assert str(daraja.queries[-1]["BusinessShortCode"]) == "600100"
    assert await status(client, other_merchant, pay_b["id"]) == "requires_action"


async def test_without_shared_accounts_a_provider_the_merchant_has_not_configured_is_refused(
    gateway: Gateway, merchant: Merchant, provider_http: respx.Router
) -> None:
    settings = gateway.ctx.settings
    private = settings.model_copy(
        update={"providers": settings.providers.model_copy(update={"shared_accounts": False})}
    )
    route = provider_http.post(INITIALIZE)
    async with configured_app(private) as c:
        r = await c.post(
            "/v1/payments",
            json=paystack_payment(),
            headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())},
        )
        assert_problem(r, 422, "provider_not_configured")
        assert "PUT /v1/provider-accounts/paystack" in r.json()["detail"]
        # The sandbox holds nobody's money: every merchant may use it.
        r = await c.post(
            "/v1/payments",
            json={"amount": 1_000, "currency": "KES", "provider": "sandbox"},
            headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())},
        )
        assert r.status_code == 201, r.text
        listed = await c.get("/v1/providers", headers=merchant.auth)
        usable = {p["name"]: (p["configured"], p["account"]) for p in listed.json()["data"]}
        assert usable["paystack"] == (False, None)
        assert usable["sandbox"] == (True, None)
        # Once the merchant brings its own account, Paystack is usable, through that account.
        account = await put_account(c, merchant, "paystack", {"secret_key": KEY_A})
        listed = await c.get("/v1/providers", headers=merchant.auth)
        usable = {p["name"]: (p["configured"], p["account"]) for p in listed.json()["data"]}
        assert usable["paystack"] == (True, account["id"])
    assert route.call_count == 0
    assert (
        await gateway.scalar(
            "SELECT count(*) FROM payments WHERE merchant_id = :m AND provider = 'paystack'", m=merchant.id
        )
        == 0
    )
