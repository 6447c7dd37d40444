"""PUT / GET / list / DELETE /v1/provider-accounts against the real server: exact bodies, ids kept
across replace and revival, the M-Pesa and MoMo callback token, each merchant (and mode) apart,
GET /v1/providers naming the caller's own account, and no secret in any answer."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from gateway.provider_accounts.sealing import unseal
from provider_account_data import assert_no_secret, credentials, hint, live_key, secret_values, settings_for
from support import Gateway, Merchant, assert_problem, configured_app

PROVIDERS = ["stripe", "paystack", "flutterwave", "mpesa", "momo", "wave", "paypal"]
SIGN_NOTHING = {"mpesa", "momo"}


def expected(
    gateway: Gateway, got: dict[str, Any], provider: str, creds: dict[str, str], **over: Any
) -> dict[str, Any]:
    """The account as the API must show it; from `got` only what the server picks (id, token, times)."""
    account_id = got["id"]
    url = f"{gateway.base_url}/v1/webhooks/{provider}/{account_id}"
    if provider in SIGN_NOTHING:
        token = got["webhook_url"].rsplit("/", 1)[1]
        assert len(token) == 43  # secrets.token_urlsafe(32)
        url += f"/{token}"
    settings = {"transaction_type": "CustomerPayBillOnline"} if provider == "mpesa" else {}
    return {
        "object": "provider_account",
        "id": account_id,
        "provider": provider,
        "mode": "test",
        "status": "active",
        "credentials": {k: hint(v) for k, v in creds.items()},
        "settings": settings,
        "webhook_url": url,
        "created": got["created"],
        "updated": got["updated"],
    } | over


async def sealed_credentials(gateway: Gateway, account_id: str) -> dict[str, Any]:
    row = await gateway.ctx.db.fetchrow(
        "SELECT secrets, merchant_id, provider, livemode FROM provider_accounts WHERE id = $1", account_id
    )
    keyring = gateway.ctx.settings.keyring()
    assert row is not None
    assert keyring is not None
    return unseal(
        keyring, row[0], account_id=account_id, merchant_id=row[1], provider=row[2], livemode=row[3]
    )


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_put_get_list_delete_and_revive(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, provider: str
) -> None:
    creds = credentials(provider)
    shown: list[str] = []

    first = await client.put(
        f"/v1/provider-accounts/{provider}", json={"credentials": creds}, headers=merchant.auth
    )
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["id"].startswith("acct_")
    assert body == expected(gateway, body, provider, creds)
    assert datetime.fromisoformat(body["created"]) == datetime.fromisoformat(body["updated"])
    shown.append(first.text)

    # What is sealed: the credentials given, and the callback token of the URL (never the merchant's).
    opened = await sealed_credentials(gateway, body["id"])
    token = {"callback_token": body["webhook_url"].rsplit("/", 1)[1]} if provider in SIGN_NOTHING else {}
    assert opened == creds | token

    got = await client.get(f"/v1/provider-accounts/{provider}", headers=merchant.auth)
    assert (got.status_code, got.json()) == (200, body)
    listed = await client.get("/v1/provider-accounts", headers=merchant.auth)
    assert (listed.status_code, listed.json()) == (200, {"object": "list", "data": [body], "has_more": False})
    shown += [got.text, listed.text]

    # Replaced: the same id and webhook URL (token kept), new hints, a later `updated`.
    new_creds = credentials(provider)
    second = await client.put(
        f"/v1/provider-accounts/{provider}",
        json={"credentials": new_creds, "settings": {}},
        headers=merchant.auth,
    )
    assert second.status_code == 200, second.text
    replaced = second.json()
    assert replaced == expected(
        gateway, replaced, provider, new_creds, id=body["id"], created=body["created"]
    )
    assert replaced["webhook_url"] == body["webhook_url"]
    assert datetime.fromisoformat(replaced["updated"]) > datetime.fromisoformat(body["updated"])
    assert await sealed_credentials(gateway, body["id"]) == new_creds | token
    shown.append(second.text)

    deleted = await client.delete(f"/v1/provider-accounts/{provider}", headers=merchant.auth)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == replaced | {"status": "deleted", "updated": deleted.json()["updated"]}
    shown.append(deleted.text)
    # The row and its ciphertext stay (payments made through it still sync and refund).
    assert (
        await gateway.scalar("SELECT status FROM provider_accounts WHERE id = :id", id=body["id"])
        == "deleted"
    )
    assert await sealed_credentials(gateway, body["id"]) == new_creds | token

    assert_problem(
        await client.get(f"/v1/provider-accounts/{provider}", headers=merchant.auth), 404, "resource_missing"
    )
    assert_problem(
        await client.delete(f"/v1/provider-accounts/{provider}", headers=merchant.auth),
        404,
        "resource_missing",
    )
    assert (await client.get("/v1/provider-accounts", headers=merchant.auth)).json()["data"] == []

    # Revived by a PUT: the same id and webhook URL again.
    third = await client.put(
        f"/v1/provider-accounts/{provider}", json={"credentials": creds}, headers=merchant.auth
    )
    assert third.status_code == 200, third.text
    assert third.json() == expected(
        gateway, third.json(), provider, creds, id=body["id"], created=body["created"]
    )
    assert third.json()["webhook_url"] == body["webhook_url"]
    shown.append(third.text)
    assert (
        await gateway.scalar("SELECT count(*) FROM provider_accounts WHERE merchant_id = :m", m=merchant.id)
        == 1
    )

    for text in shown:
        assert_no_secret(text, secret_values(provider, creds) + secret_values(provider, new_creds))
    events = await gateway.ctx.db.fetch("SELECT data::text FROM events WHERE merchant_id = $1", merchant.id)
    assert_no_secret(" ".join(e[0] for e in events), secret_values(provider, creds))


async def test_mpesa_till_and_momo_live_settings(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    creds = credentials("mpesa") | {"till_number": "5123456"}
    r = await client.put(
        "/v1/provider-accounts/mpesa",
        json={"credentials": creds, "settings": {"transaction_type": "CustomerBuyGoodsOnline"}},
        headers=merchant.auth,
    )
    assert r.status_code == 200, r.text
    assert r.json()["settings"] == {"transaction_type": "CustomerBuyGoodsOnline"}
    assert r.json()["credentials"]["till_number"] == "…"  # eight characters or fewer show nothing

    live = await live_key(gateway, merchant)
    momo = credentials("momo", live=True)
    r = await client.put(
        "/v1/provider-accounts/momo",
        json={"credentials": momo, "settings": settings_for("momo", live=True)},
        headers=live,
    )
    assert r.status_code == 200, r.text
    assert (r.json()["mode"], r.json()["settings"]) == (
        "live",
        {"base_url": "https://proxy.momoapi.mtn.co.ug"},
    )


async def test_each_merchant_and_each_mode_sees_only_its_own(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, other_merchant: Merchant
) -> None:
    a, b = credentials("paystack"), credentials("paystack")
    ra = await client.put("/v1/provider-accounts/paystack", json={"credentials": a}, headers=merchant.auth)
    rb = await client.put(
        "/v1/provider-accounts/paystack", json={"credentials": b}, headers=other_merchant.auth
    )
    rm = await client.put(
        "/v1/provider-accounts/mpesa", json={"credentials": credentials("mpesa")}, headers=other_merchant.auth
    )
    assert (ra.status_code, rb.status_code, rm.status_code) == (200, 200, 200)
    assert ra.json()["id"] != rb.json()["id"]

    mine = (await client.get("/v1/provider-accounts", headers=merchant.auth)).json()["data"]
    assert [x["id"] for x in mine] == [ra.json()["id"]]
    theirs = (await client.get("/v1/provider-accounts", headers=other_merchant.auth)).json()["data"]
    assert [x["id"] for x in theirs] == [rm.json()["id"], rb.json()["id"]]  # by provider name
    got = await client.get("/v1/provider-accounts/paystack", headers=other_merchant.auth)
    assert got.json()["credentials"] == {"secret_key": hint(b["secret_key"])}
    assert_problem(
        await client.get("/v1/provider-accounts/mpesa", headers=merchant.auth), 404, "resource_missing"
    )

    # The same merchant's live key sees none of its test accounts; a live account needs a live key.
    live = await live_key(gateway, merchant)
    assert (await client.get("/v1/provider-accounts", headers=live)).json()["data"] == []
    assert_problem(await client.get("/v1/provider-accounts/paystack", headers=live), 404, "resource_missing")
    live_creds = credentials("paystack", live=True)
    rl = await client.put("/v1/provider-accounts/paystack", json={"credentials": live_creds}, headers=live)
    assert rl.status_code == 200, rl.text
    assert (rl.json()["mode"], rl.json()["id"] != ra.json()["id"]) == ("live", True)

    # A's delete leaves B's account alone.
    assert (await client.delete("/v1/provider-accounts/paystack", headers=merchant.auth)).status_code == 200
    assert (
        await client.get("/v1/provider-accounts/paystack", headers=other_merchant.auth)
    ).json() == got.json()

    # GET /v1/providers names the caller's own account per provider (null elsewhere).
    providers = (await client.get("/v1/providers", headers=other_merchant.auth)).json()["data"]
    accounts = {p["name"]: p["account"] for p in providers}
    assert accounts == {p["name"]: None for p in providers} | {
        "paystack": rb.json()["id"],
        "mpesa": rm.json()["id"],
    }
    mine_now = {
        p["name"]: p["account"]
        for p in (await client.get("/v1/providers", headers=merchant.auth)).json()["data"]
    }
    assert set(mine_now.values()) == {None}  # deleted
    live_now = {
        p["name"]: p["account"] for p in (await client.get("/v1/providers", headers=live)).json()["data"]
    }
    assert live_now["paystack"] == rl.json()["id"]


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/v1/provider-accounts/sandbox", 422, "provider_account_not_supported"),
        ("/v1/provider-accounts/stripee", 422, "provider_unknown"),
    ],
)
async def test_providers_without_accounts(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, path: str, status: int, code: str
) -> None:
    for method in ("PUT", "GET", "DELETE"):
        body = {"credentials": {"secret_key": "sk_test_x"}} if method == "PUT" else None
        r = await client.request(method, path, json=body, headers=merchant.auth)
        assert assert_problem(r, status, code)["param"] == "provider"
    assert (
        await gateway.scalar("SELECT count(*) FROM provider_accounts WHERE merchant_id = :m", m=merchant.id)
        == 0
    )


async def test_without_a_keyring_nothing_is_written_409(gateway: Gateway, merchant: Merchant) -> None:
    settings = gateway.ctx.settings.model_copy(update={"secrets_keys": None})
    async with configured_app(settings) as c:
        r = await c.put(
            "/v1/provider-accounts/paystack",
            json={"credentials": credentials("paystack")},
            headers=merchant.auth,
        )
        problem = assert_problem(r, 409, "secrets_key_missing")
        assert "GATEWAY_SECRETS_KEYS" in problem["detail"]
        assert (
            await gateway.scalar(
                "SELECT count(*) FROM provider_accounts WHERE merchant_id = :m", m=merchant.id
            )
            == 0
        )
        # Bad credentials are still named first: the caller can fix those.
        assert_problem(
            await c.put("/v1/provider-accounts/paystack", json={"credentials": {}}, headers=merchant.auth),
            422,
            "validation_error",
        )

    # Sealed by the session's keyring; read by a gateway whose keyring lacks that key.
    made = await gateway_put(gateway, merchant, "mpesa")
    other = gateway.ctx.settings.model_copy(update={"secrets_keys": SecretStr("other:" + "A" * 43)})
    async with configured_app(other) as c:
        problem = assert_problem(
            await c.get("/v1/provider-accounts/mpesa", headers=merchant.auth), 409, "secrets_key_missing"
        )
        assert "'test'" in problem["detail"]  # the id of the key that sealed it, to add back
        assert (await c.get("/v1/provider-accounts", headers=merchant.auth)).status_code == 409
        # A DELETE that cannot show the account changes nothing.
        r = await c.delete("/v1/provider-accounts/mpesa", headers=merchant.auth)
        assert_problem(r, 409, "secrets_key_missing")
    assert (
        await gateway.scalar("SELECT status FROM provider_accounts WHERE id = :id", id=made["id"]) == "active"
    )


async def gateway_put(gateway: Gateway, merchant: Merchant, provider: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=gateway.base_url) as c:
        r = await c.put(
            f"/v1/provider-accounts/{provider}",
            json={"credentials": credentials(provider)},
            headers=merchant.auth,
        )
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body
