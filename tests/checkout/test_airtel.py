"""Airtel Money through a merchant's own account (PUT /v1/provider-accounts/airtel) on the hosted
checkout: offered for the currencies Airtel takes once the merchant has an account (the deployment
shares none here), confirmed from the browser with the account's own OAuth client, and settled by a
callback to the account's URL, checked with the account's own hash key and the enquiry."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import respx

from checkout_api.shop import Shop, confirm, create, new_shop
from drivers.airtel import PAYER_WAITING, FakeAirtel, callback_hash
from support import AIRTEL_API, Gateway, assert_problem, configured_app, wait_for

CREDENTIALS = {
    "client_id": "0b7c5d8e-merchant-client-4f1a",
    "client_secret": "merchant-client-secret-9d2e7f4a1b",
    "callback_hash_key": "merchant-callback-private-key-7c3e9a",
}


def methods_on(page: str) -> list[str]:
    return re.findall(r'name="method" value="([a-z]+)"', page)


async def public(c: httpx.AsyncClient, shop: Shop, p: dict[str, Any]) -> dict[str, Any]:
    r = await c.get(
        f"/v1/payments/{p['id']}", params={"client_secret": p["client_secret"]}, headers=shop.publishable.auth
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_airtel_is_offered_for_its_currencies_once_the_merchant_has_an_account(
    gateway: Gateway, provider_http: respx.Router
) -> None:
    fake = FakeAirtel()
    routes = fake.install(provider_http)
    settings = gateway.ctx.settings
    private = settings.model_copy(
        update={"providers": settings.providers.model_copy(update={"shared_accounts": False})}
    )
    async with configured_app(private) as c:
        shop = await new_shop(gateway)
        p = await create(c, shop, amount=5_000, currency="UGX")
        assert "airtel" not in (await public(c, shop, p))["payment_methods"]

        # A country Airtel has no wallet in, or no client secret: 422, nothing stored.
        r = await c.put(
            "/v1/provider-accounts/airtel",
            json={"credentials": CREDENTIALS, "settings": {"country": "FR"}},
            headers=shop.secret.auth,
        )
        assert [e["loc"] for e in assert_problem(r, 422, "validation_error")["errors"]] == [
            ["body", "settings", "country"]
        ]
        r = await c.put(
            "/v1/provider-accounts/airtel",
            json={"credentials": {"client_id": "x"}, "settings": {"country": "UG"}},
            headers=shop.secret.auth,
        )
        assert [e["loc"] for e in assert_problem(r, 422, "validation_error")["errors"]] == [
            ["body", "credentials", "client_secret"]
        ]
        assert (
            await gateway.scalar("SELECT count(*) FROM provider_accounts WHERE merchant_id = :m", m=shop.id)
            == 0
        )
        assert "airtel" not in (await public(c, shop, p))["payment_methods"]

        r = await c.put(
            "/v1/provider-accounts/airtel",
            json={"credentials": CREDENTIALS, "settings": {"country": "UG"}},
            headers=shop.secret.auth,
        )
        assert r.status_code == 200, r.text
        account = r.json()
        token = account["webhook_url"].rsplit("/", 1)[1]
        assert account["webhook_url"] == f"{settings.base_url}/v1/webhooks/airtel/{account['id']}/{token}"
        assert (account["provider"], account["mode"], account["settings"]) == (
            "airtel",
            "test",
            {"country": "UG"},
        )
        assert account["credentials"] == {k: "…" + v[-4:] for k, v in CREDENTIALS.items()}

        # Offered for UGX (on the page too, by name); not for EUR, which no Airtel wallet holds.
        assert "airtel" in (await public(c, shop, p))["payment_methods"]
        page = await c.get(urlsplit(str(p["checkout_url"])).path)
        assert "airtel" in methods_on(page.text)
        assert "Airtel Money" in page.text
        euros = await create(c, shop, amount=5_000, currency="EUR")
        assert "airtel" not in (await public(c, shop, euros))["payment_methods"]

        # The customer confirms: the push goes out with the merchant's own client.
        r = await confirm(
            c, shop.publishable, p, {"provider": "airtel", "customer": {"phone": PAYER_WAITING}}
        )
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "requires_action"
        assert json.loads(routes["token"].calls.last.request.content)["client_id"] == CREDENTIALS["client_id"]
        sent = routes["payments"].calls.last.request
        assert str(sent.url) == f"{AIRTEL_API}/merchant/v1/payments/"
        assert json.loads(sent.content)["subscriber"] == {
            "country": "UG",
            "currency": "UGX",
            "msisdn": "752000001",
        }

        # Airtel's callback to the account's URL, hashed with the account's key (the deployment's is refused).
        payload = fake.settle(p, "TS").callback()
        path = urlsplit(account["webhook_url"]).path
        r = await c.post(path, content=orjson.dumps(payload), headers={"content-type": "application/json"})
        assert (r.status_code, r.json()["code"]) == (401, "webhook_signature_invalid")
        payload["hash"] = callback_hash(payload["transaction"], CREDENTIALS["callback_hash_key"])
        r = await c.post(path, content=orjson.dumps(payload), headers={"content-type": "application/json"})
        assert r.status_code == 200, r.text

        async def paid() -> bool:
            return bool((await public(c, shop, p))["status"] == "succeeded")

        await wait_for(paid)
        assert str(routes["enquiry"].calls.last.request.url) == f"{AIRTEL_API}/standard/v1/payments/{p['id']}"
