"""Orange Money Web Payment: the exact requests the gateway sends and how it reads every answer.

Provider HTTP is answered by the driver's fake of Orange (tests/drivers/orange.py) with bodies shaped as
docs/providers/orange.md shows them; the gateway itself runs for real. Expected request bodies are
written out literally, so a change in what we send fails here.
"""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import parse_qs

import httpx
import orjson
import pytest
import respx

from drivers.orange import (
    ACCESS_TOKEN,
    BASIC,
    RETURN_URL,
    TOKEN_URL,
    WEBPAY,
    FakeOrange,
    notification,
    txnid,
)
from gateway.providers.orange import transformers as tf
from support import ORANGE_CLIENT_ID, ORANGE_CLIENT_SECRET, ORANGE_MERCHANT_KEY, Gateway, Merchant, wait_for


def body(**over: Any) -> dict[str, Any]:
    return {"amount": 5_000, "currency": "XOF", "provider": "orange", "return_url": RETURN_URL, **over}


async def create(client: httpx.AsyncClient, merchant: Merchant, payload: dict[str, Any]) -> httpx.Response:
    return await client.post(
        "/v1/payments", json=payload, headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())}
    )


async def get(client: httpx.AsyncClient, merchant: Merchant, path: str) -> dict[str, Any]:
    r = await client.get(path, headers=merchant.auth)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def forget_tokens(gateway: Gateway) -> None:
    """The token cache is shared by every test of the session: start from none."""
    redis = gateway.ctx.redis
    async for key in redis.scan_iter(match="orange:token:*"):
        await redis.delete(key)


async def waiting(
    client: httpx.AsyncClient, merchant: Merchant, router: respx.Router, fake: FakeOrange
) -> tuple[dict[str, Any], dict[str, respx.Route]]:
    routes = fake.install(router)
    r = await create(client, merchant, body())
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "requires_action"
    return dict(r.json()), routes


async def hook(
    client: httpx.AsyncClient, headers: dict[str, str], raw: bytes, order_id: str
) -> httpx.Response:
    return await client.post(f"/v1/webhooks/orange/{order_id}", content=raw, headers=headers)


async def inbox_count(gateway: Gateway, needle: str) -> int:
    n = await gateway.scalar(
        "SELECT count(*) FROM inbound_webhooks WHERE provider = 'orange' AND payload::text LIKE :n",
        n=f"%{needle}%",
    )
    return int(n)


async def trail(client: httpx.AsyncClient, merchant: Merchant, payment_id: str) -> list[tuple[str, str]]:
    data = (await get(client, merchant, f"/v1/payments/{payment_id}/events?limit=100"))["data"]
    return [(e["type"], e["source"]) for e in reversed(data)]


# --- creating a payment: token and web payment -------------------------------------------------------


async def test_create_sends_the_web_payment_orange_documents_and_keeps_its_tokens_private(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, provider_http: respx.Router
) -> None:
    await forget_tokens(gateway)
    fake = FakeOrange()
    p, routes = await waiting(client, merchant, provider_http, fake)

    token = routes["token"].calls.last.request
    assert (token.method, str(token.url)) == ("POST", TOKEN_URL)
    assert token.headers["authorization"] == BASIC
    assert token.headers["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qs(token.content.decode()) == {"grant_type": ["client_credentials"]}

    request = routes["webpayment"].calls.last.request
    assert (request.method, str(request.url)) == ("POST", f"{WEBPAY}/webpayment")
    assert request.headers["authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert json.loads(request.content) == {
        "merchant_key": ORANGE_MERCHANT_KEY,
        "currency": "OUV",  # the dev sandbox's currency, in place of XOF
        "order_id": p["id"],
        "amount": 5000,
        "return_url": RETURN_URL,
        "cancel_url": RETURN_URL,
        "notif_url": f"{gateway.base_url}/v1/webhooks/orange/{p['id']}",
        "lang": "fr",
        "reference": p["id"],
    }
    order = fake.orders[p["id"]]
    assert p["next_action"] == {
        "type": "redirect_to_url",
        "redirect_to_url": {"url": order.payment_url, "return_url": RETURN_URL},
    }
    assert p["provider_reference"] is None
    # The notif_token is in no answer, event or stored row; the pay_token only inside Orange's own
    # payment_url (where Orange puts it), and on the payment's private column.
    shown = [
        orjson.dumps({k: v for k, v in p.items() if k != "next_action"}).decode(),
        json.dumps(await get(client, merchant, f"/v1/payments/{p['id']}/events?limit=100")),
    ]
    for text in shown:
        assert order.notif_token not in text
        assert order.pay_token not in text.replace(order.payment_url, "")
    private = await gateway.scalar("SELECT provider_private FROM payments WHERE id = :id", id=p["id"])
    assert private == {"pay_token": order.pay_token, "notif_token_sha256": tf.digest(order.notif_token)}


async def test_the_token_is_fetched_once_then_replaced_once_when_orange_refuses_it(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, provider_http: respx.Router
) -> None:
    await forget_tokens(gateway)
    fake = FakeOrange()
    _, routes = await waiting(client, merchant, provider_http, fake)
    await waiting(client, merchant, provider_http, fake)
    assert (routes["token"].call_count, routes["webpayment"].call_count) == (1, 2)

    # Orange no longer takes the cached token: it is dropped, a new one fetched, the call made again.
    expired = httpx.Response(401, json={"code": 42, "message": "Expired credentials"})
    answers = iter([expired])
    routes["webpayment"].mock(side_effect=lambda request: next(answers, None) or fake._webpayment(request))
    r = await create(client, merchant, body())
    assert (r.status_code, r.json()["status"]) == (201, "requires_action")
    assert (routes["token"].call_count, routes["webpayment"].call_count) == (2, 4)


async def test_credentials_orange_refuses_are_a_misconfiguration_and_nothing_is_sent(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, provider_http: respx.Router
) -> None:
    await forget_tokens(gateway)
    routes = FakeOrange().install(provider_http)
    routes["token"].respond(401, json={"error": "invalid_client", "error_description": "Invalid credentials"})
    r = await create(client, merchant, body())
    assert (r.status_code, r.json()["code"]) == (502, "provider_misconfigured")
    assert ORANGE_CLIENT_SECRET not in r.text
    assert ORANGE_CLIENT_ID not in r.text
    assert routes["webpayment"].call_count == 0


async def test_orange_refusing_the_web_payment_is_402_with_its_message(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    FakeOrange().install(provider_http, scenario="decline")
    r = await create(client, merchant, body())
    assert r.status_code == 402, r.text
    assert r.json()["code"] == "payment_rejected"
    failed = r.json()["payment"]
    assert (failed["failure_code"], failed["failure_message"]) == (
        "payment_rejected",
        "The amount exceeds the limit.",
    )


async def test_without_a_return_url_orange_is_not_called(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    routes = FakeOrange().install(provider_http)
    r = await create(client, merchant, {k: v for k, v in body().items() if k != "return_url"})
    assert (r.status_code, r.json()["code"]) == (402, "return_url_required")
    assert routes["webpayment"].call_count == 0


async def test_currencies_orange_does_not_take_are_refused_before_anything_is_sent(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    routes = FakeOrange().install(provider_http)
    r = await create(client, merchant, body(currency="KES"))
    assert (r.status_code, r.json()["code"]) == (422, "currency_not_supported")
    assert r.json()["supported"] == ["GNF", "XAF", "XOF"]
    assert routes["token"].call_count == routes["webpayment"].call_count == 0


# --- notifications: the notif_token, then the status query ------------------------------------------


async def test_a_notification_with_another_notif_token_is_401_and_nothing_moves(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, provider_http: respx.Router
) -> None:
    fake = FakeOrange()
    p, routes = await waiting(client, merchant, provider_http, fake)
    order = fake.settle(p["id"], "SUCCESS")
    for token in ("0" * 32, order.notif_token[:-1], ""):
        headers, raw = notification(p["id"], "SUCCESS", token, order.txnid)
        r = await hook(client, headers, raw, p["id"])
        assert (r.status_code, r.json()["code"]) == (401, "webhook_signature_invalid")
    # No notif_token at all proves nothing either.
    r = await hook(client, headers, orjson.dumps({"status": "SUCCESS", "txnid": order.txnid}), p["id"])
    assert r.status_code == 401
    assert await inbox_count(gateway, p["id"]) == 0
    assert routes["status"].call_count == 0
    assert (await get(client, merchant, f"/v1/payments/{p['id']}"))["status"] == "requires_action"


async def test_a_notification_naming_no_payment_of_ours_is_401_and_nothing_is_stored(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, provider_http: respx.Router
) -> None:
    fake = FakeOrange()
    p, routes = await waiting(client, merchant, provider_http, fake)
    order = fake.orders[p["id"]]
    for order_id in ("pay_" + uuid.uuid4().hex[:24], p["id"] + "_2"):
        headers, raw = notification(order_id, "SUCCESS", order.notif_token, txnid())
        r = await hook(client, headers, raw, order_id)
        assert (r.status_code, r.json()["code"]) == (401, "webhook_signature_invalid")
    assert await inbox_count(gateway, p["id"]) == 0
    assert routes["status"].call_count == 0


async def test_the_notification_is_a_hint_the_status_query_is_what_is_applied(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, provider_http: respx.Router
) -> None:
    fake = FakeOrange()
    p, routes = await waiting(client, merchant, provider_http, fake)
    order = fake.settle(p["id"], "PENDING")
    # Says SUCCESS, but Orange, asked, says PENDING: nothing moves.
    headers, raw = notification(p["id"], "SUCCESS", order.notif_token, txnid())
    r = await hook(client, headers, raw, p["id"])
    assert (r.status_code, r.content) == (200, b'{"received":true}')

    async def outcome(needle: str) -> Any:
        return await gateway.scalar(
            "SELECT outcome FROM inbound_webhooks WHERE provider = 'orange' AND payload::text LIKE :n",
            n=f"%{needle}%",
        )

    async def answered() -> bool:
        return bool(await outcome(p["id"]) == "no_change")

    await wait_for(answered)
    assert routes["status"].call_count == 1
    asked = json.loads(routes["status"].calls.last.request.content)
    assert asked == {"order_id": p["id"], "amount": 5000, "pay_token": order.pay_token}
    assert (await get(client, merchant, f"/v1/payments/{p['id']}"))["status"] == "requires_action"
    # The stored notification keeps no notif_token.
    stored = await gateway.scalar(
        "SELECT payload::text FROM inbound_webhooks WHERE provider = 'orange' AND payload::text LIKE :n",
        n=f"%{p['id']}%",
    )
    assert order.notif_token not in stored

    # Says FAILED, but Orange, asked, says SUCCESS: the payment succeeds, its receipt the txnid.
    order = fake.settle(p["id"], "SUCCESS")
    headers, raw = notification(p["id"], "FAILED", order.notif_token, None)
    assert (await hook(client, headers, raw, p["id"])).status_code == 200

    async def succeeded() -> bool:
        return bool((await get(client, merchant, f"/v1/payments/{p['id']}"))["status"] == "succeeded")

    await wait_for(succeeded)
    done = await get(client, merchant, f"/v1/payments/{p['id']}")
    assert done["provider_reference"] == order.txnid
    assert done["payment_method_details"] == {
        "type": "mobile_money",
        "operator": "orange",
        "phone_last4": None,
        "receipt": order.txnid,
    }
    assert routes["status"].call_count == 2
    assert ("payment.succeeded", "webhook") in await trail(client, merchant, p["id"])


# --- status query: mapping, expiry, a create that timed out ---------------------------------------


@pytest.mark.parametrize(
    ("orange", "ours", "failure"),
    [
        ("INITIATED", "requires_action", None),
        ("PENDING", "requires_action", None),
        ("SUCCESS", "succeeded", None),
        ("FAILED", "failed", "payment_failed"),
        ("EXPIRED", "expired", None),
    ],
)
async def test_sync_maps_orange_s_statuses(
    client: httpx.AsyncClient,
    merchant: Merchant,
    provider_http: respx.Router,
    orange: str,
    ours: str,
    failure: str | None,
) -> None:
    fake = FakeOrange()
    p, routes = await waiting(client, merchant, provider_http, fake)
    fake.settle(p["id"], orange)
    r = await client.post(f"/v1/payments/{p['id']}/sync", headers=merchant.auth)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == ours
    assert r.json()["failure_code"] == failure
    if ours == "requires_action":  # still waiting: the customer's next step is kept
        assert r.json()["next_action"] == p["next_action"]
    assert routes["status"].call_count == 1


async def test_an_unknown_status_moves_nothing(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    fake = FakeOrange()
    p, routes = await waiting(client, merchant, provider_http, fake)
    routes["status"].respond(201, json={"status": "REVERSED", "order_id": p["id"]})
    r = await client.post(f"/v1/payments/{p['id']}/sync", headers=merchant.auth)
    assert r.status_code == 502, r.text
    assert (await get(client, merchant, f"/v1/payments/{p['id']}"))["status"] == "requires_action"


async def age(gateway: Gateway, payment_id: str, seconds: int) -> None:
    await gateway.execute(
        "UPDATE payments SET created_at = created_at - make_interval(secs => :s), "
        "attempted_at = attempted_at - make_interval(secs => :s) WHERE id = :id",
        s=seconds,
        id=payment_id,
    )


async def test_a_web_payment_unpaid_past_the_ttl_expires(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, provider_http: respx.Router
) -> None:
    fake = FakeOrange()
    p, routes = await waiting(client, merchant, provider_http, fake)
    await age(gateway, p["id"], 1_801)
    r = await client.post(f"/v1/payments/{p['id']}/sync", headers=merchant.auth)
    assert (r.status_code, r.json()["status"]) == (200, "expired")
    assert routes["status"].call_count == 1  # Orange was asked first: still INITIATED


async def test_a_create_that_timed_out_cannot_be_asked_and_fails_after_the_ttl(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, provider_http: respx.Router
) -> None:
    routes = FakeOrange().install(provider_http, scenario="timeout")
    r = await create(client, merchant, body())
    assert (r.status_code, r.json()["code"]) == (504, "provider_timeout")
    payment_id = r.json()["payment"]["id"]
    # No pay_token: Orange cannot be asked; the payment page (in the lost answer) was never shown.
    r = await client.post(f"/v1/payments/{payment_id}/sync", headers=merchant.auth)
    assert r.status_code == 502, r.text
    assert (await get(client, merchant, f"/v1/payments/{payment_id}"))["status"] == "pending"
    await age(gateway, payment_id, 1_801)
    r = await client.post(f"/v1/payments/{payment_id}/sync", headers=merchant.auth)
    assert (r.status_code, r.json()["status"]) == (200, "failed")
    assert r.json()["failure_code"] == "provider_session_missing"
    assert routes["status"].call_count == 0


async def test_refunds_are_422_and_orange_is_not_called(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    fake = FakeOrange()
    p, routes = await waiting(client, merchant, provider_http, fake)
    fake.settle(p["id"], "SUCCESS")
    assert (await client.post(f"/v1/payments/{p['id']}/sync", headers=merchant.auth)).json()[
        "status"
    ] == "succeeded"
    calls = sum(route.call_count for route in routes.values())
    r = await client.post(
        f"/v1/payments/{p['id']}/refunds",
        json={"amount": 5_000},
        headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert (r.status_code, r.json()["code"]) == (422, "refund_not_supported")
    assert sum(route.call_count for route in routes.values()) == calls
    providers = {x["name"]: x for x in (await get(client, merchant, "/v1/providers"))["data"]}
    orange = providers["orange"]
    assert (orange["configured"], orange["currencies"], orange["flows"]) == (
        True,
        ["GNF", "XAF", "XOF"],
        ["redirect"],
    )
    assert (orange["refunds"], orange["partial_refunds"], orange["cancel"]) == (False, False, False)
