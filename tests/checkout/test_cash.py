"""Cash on the hosted checkout: offered only where the merchant has a cash account in that mode; a
customer who chooses it is told how to pay (nothing is confirmed, no attempt, no provider), and the
page turns to the outcome when the merchant records the cash."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx

from auth.credentials import add_key
from checkout_api.shop import Shop, confirm, create, new_shop
from support import Gateway, assert_problem

INSTRUCTIONS = "Pay at the counter of the Moi Avenue shop and quote your order number."


def page_of(payment: dict[str, object]) -> str:
    return str(urlsplit(str(payment["checkout_url"])).path)


async def test_cash_is_offered_only_once_enabled_and_recorded_by_the_merchant(
    client: httpx.AsyncClient, gateway: Gateway
) -> None:
    shop = await new_shop(gateway)
    payment = await create(client, shop)
    public = {"client_secret": payment["client_secret"]}

    r = await client.get(f"/v1/payments/{payment['id']}", params=public, headers=shop.publishable.auth)
    assert "cash" not in r.json()["payment_methods"]
    r = await client.get(page_of(payment))
    assert "cash" not in re.findall(r'name="method" value="([a-z]+)"', r.text)

    r = await client.put(
        "/v1/provider-accounts/cash",
        json={"settings": {"instructions": f"  {INSTRUCTIONS} "}},
        headers=shop.secret.auth,
    )
    assert r.status_code in (200, 201), r.text
    account = r.json()
    assert (account["provider"], account["credentials"], account["webhook_url"]) == ("cash", {}, None)
    assert account["settings"] == {"instructions": INSTRUCTIONS}

    r = await client.get(f"/v1/payments/{payment['id']}", params=public, headers=shop.publishable.auth)
    assert "cash" in r.json()["payment_methods"]
    page = await client.get(page_of(payment))
    assert "cash" in re.findall(r'name="method" value="([a-z]+)"', page.text)
    token = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page.text)
    assert token is not None

    # The customer chooses cash: the page says how to pay; nothing is confirmed or sent.
    calls = gateway.calls("cash.create_payment")
    r = await client.post(page_of(payment), data={"csrf_token": token.group(1), "method": "cash"})
    assert (r.status_code, r.headers["location"]) == (303, f"{page_of(payment)}?method=cash")
    shown = await client.get(r.headers["location"])
    assert 'data-state="cash"' in shown.text
    assert INSTRUCTIONS in shown.text
    assert gateway.calls("cash.create_payment") == calls
    n = await gateway.scalar("SELECT count(*) FROM payment_attempts WHERE payment_id = :id", id=payment["id"])
    assert n == 0
    got = await client.get(f"/v1/payments/{payment['id']}", headers=shop.secret.auth)
    assert got.json()["status"] == "requires_payment_method"

    # The browser still cannot declare cash paid.
    r = await confirm(client, shop.publishable, payment, {"provider": "cash"})
    assert assert_problem(r, 422, "provider_not_configured")["param"] == "provider"

    # The merchant records the cash it took: the page shows the outcome.
    r = await confirm(client, shop.secret, payment, {"provider": "cash", "payment_method": "till-1"})
    assert (r.status_code, r.json()["status"]) == (200, "succeeded")
    assert gateway.calls("cash.create_payment") == calls + 1
    done = await client.get(f"{page_of(payment)}?method=cash")
    assert 'data-state="succeeded"' in done.text


async def test_a_test_mode_cash_account_offers_nothing_in_live_mode(
    client: httpx.AsyncClient, gateway: Gateway
) -> None:
    shop = await new_shop(gateway)
    r = await client.put("/v1/provider-accounts/cash", json={}, headers=shop.secret.auth)
    assert r.status_code in (200, 201), r.text
    live = Shop(
        shop.id,
        await add_key(gateway, shop.id, livemode=True),
        await add_key(gateway, shop.id, "publishable", livemode=True),
    )
    for who, has_cash in ((shop, True), (live, False)):
        payment = await create(client, who)
        r = await client.get(
            f"/v1/payments/{payment['id']}",
            params={"client_secret": payment["client_secret"]},
            headers=who.publishable.auth,
        )
        assert r.status_code == 200
        assert ("cash" in r.json()["payment_methods"]) is has_cash


async def test_a_cash_account_takes_only_its_instructions(
    client: httpx.AsyncClient, gateway: Gateway
) -> None:
    shop = await new_shop(gateway)
    r = await client.put(
        "/v1/provider-accounts/cash",
        json={"credentials": {"api_key": "x"}, "settings": {"instructions": "x" * 301}},
        headers=shop.secret.auth,
    )
    body = assert_problem(r, 422, "validation_error")
    assert sorted(".".join(map(str, e["loc"])) for e in body["errors"]) == [
        "body.credentials.api_key",
        "body.settings.instructions",
    ]
    assert (
        await gateway.scalar("SELECT count(*) FROM provider_accounts WHERE merchant_id = :m", m=shop.id) == 0
    )
