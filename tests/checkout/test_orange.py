"""Orange Money through a merchant's own account: PUT /v1/provider-accounts/orange makes it a rail of
that merchant's hosted checkout, for the currencies Orange takes only; its payments give Orange a
notif_url under the account, and a notification is proven by the notif_token of the payment it names,
through that account only. Provider HTTP is the driver's fake of Orange (tests/drivers/orange.py)."""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

import respx

from checkout_api.shop import create, new_shop
from drivers.orange import RETURN_URL, FakeOrange, notification
from support import (
    ORANGE_CLIENT_ID,
    ORANGE_CLIENT_SECRET,
    ORANGE_MERCHANT_KEY,
    Gateway,
    assert_problem,
    configured_app,
    wait_for,
)

CREDENTIALS = {
    "client_id": ORANGE_CLIENT_ID,
    "client_secret": ORANGE_CLIENT_SECRET,
    "merchant_key": ORANGE_MERCHANT_KEY,
}


def methods_on_page(html: str) -> list[str]:
    return re.findall(r'name="method" value="([a-z]+)"', html)


async def test_an_orange_account_offers_orange_for_its_currencies_and_its_notifications_come_through_it(
    gateway: Gateway, provider_http: respx.Router
) -> None:
    settings = gateway.ctx.settings
    private = settings.model_copy(
        update={"providers": settings.providers.model_copy(update={"shared_accounts": False})}
    )
    fake = FakeOrange()
    routes = fake.install(provider_http)
    async with configured_app(private) as c:
        shop = await new_shop(gateway)
        xof = await create(c, shop, amount=5_000, currency="XOF", return_url=RETURN_URL)
        kes = await create(c, shop)
        public = {"client_secret": xof["client_secret"]}
        r = await c.get(f"/v1/payments/{xof['id']}", params=public, headers=shop.publishable.auth)
        assert "orange" not in r.json()["payment_methods"]

        r = await c.put(
            "/v1/provider-accounts/orange",
            json={"credentials": CREDENTIALS},
            headers=shop.secret.auth,
        )
        assert r.status_code == 200, r.text
        account = r.json()
        assert (account["provider"], account["settings"]) == ("orange", {})
        assert account["webhook_url"] == f"{gateway.base_url}/v1/webhooks/orange/{account['id']}"
        assert ORANGE_CLIENT_SECRET not in r.text

        # Offered for XOF, on the API and on the hosted page; not for KES, which Orange does not take.
        r = await c.get(f"/v1/payments/{xof['id']}", params=public, headers=shop.publishable.auth)
        assert "orange" in r.json()["payment_methods"]
        page = await c.get(urlsplit(str(xof["checkout_url"])).path)
        assert "orange" in methods_on_page(page.text)
        assert "Orange Money" in page.text
        r = await c.get(
            f"/v1/payments/{kes['id']}",
            params={"client_secret": kes["client_secret"]},
            headers=shop.publishable.auth,
        )
        assert "orange" not in r.json()["payment_methods"]
        kes_page = await c.get(urlsplit(str(kes["checkout_url"])).path)
        assert "orange" not in methods_on_page(kes_page.text)

        # The customer chooses Orange on the page: off to Orange's payment page, which sends them back
        # to the checkout; the notif_url names the account, then the order.
        token = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page.text)
        assert token is not None
        page_path = urlsplit(str(xof["checkout_url"])).path
        r = await c.post(page_path, data={"csrf_token": token.group(1), "method": "orange"})
        assert r.status_code == 303, r.text
        order = fake.orders[xof["id"]]
        assert r.headers["location"] == order.payment_url
        sent = json.loads(routes["webpayment"].calls.last.request.content)
        path = f"/v1/webhooks/orange/{account['id']}/{xof['id']}"
        assert sent["notif_url"] == f"{gateway.base_url}{path}"
        assert sent["return_url"] == sent["cancel_url"] == gateway.ctx.settings.base_url + page_path
        assert (sent["currency"], sent["amount"], sent["order_id"]) == ("OUV", 5000, xof["id"])
        back = await c.get(page_path)
        assert 'data-state="redirect"' in back.text
        assert "Orange Money" in back.text

        order = fake.settle(xof["id"], "SUCCESS")
        headers, raw = notification(xof["id"], "SUCCESS", order.notif_token, order.txnid)
        # The deployment's URL speaks for no merchant's account: the payment is not its to prove.
        r = await c.post(f"/v1/webhooks/orange/{xof['id']}", content=raw, headers=headers)
        assert_problem(r, 401, "webhook_signature_invalid")
        assert routes["status"].call_count == 0
        r = await c.post(path, content=raw, headers=headers)
        assert r.status_code == 200, r.text

        async def succeeded() -> bool:
            got = await c.get(f"/v1/payments/{xof['id']}", headers=shop.secret.auth)
            return bool(got.json()["status"] == "succeeded")

        await wait_for(succeeded)
        assert routes["status"].call_count == 1


async def test_a_live_orange_account_names_its_country(gateway: Gateway) -> None:
    shop = await new_shop(gateway, livemode=True)
    async with configured_app(gateway.ctx.settings) as c:
        for settings in ({}, {"country": "dev"}):
            r = await c.put(
                "/v1/provider-accounts/orange",
                json={"credentials": CREDENTIALS, "settings": settings},
                headers=shop.secret.auth,
            )
            problem = assert_problem(r, 422, "validation_error")
            assert [e["loc"] for e in problem["errors"]] == [["body", "settings", "country"]]
            assert ORANGE_CLIENT_SECRET not in r.text
        r = await c.put(
            "/v1/provider-accounts/orange",
            json={"credentials": CREDENTIALS, "settings": {"country": "ci"}},
            headers=shop.secret.auth,
        )
        assert r.status_code == 200, r.text
        assert r.json()["settings"] == {"country": "ci"}
