"""/v1/payments/{id}/ws against the real server: a back end (secret key header) gets the payment and
then its events; a browser (publishable key + client secret in the query) gets the public subset;
both are closed with 1000 after the outcome; wrong credentials are refused on the handshake. And the
SSE stream's browser form (EventSource cannot send headers)."""

from __future__ import annotations

from typing import Any

import httpx

from auth.credentials import add_key
from drivers.sandbox import DRIVER as SANDBOX
from gateway.events.publisher import channel
from gateway.payments.public import PublicPaymentOut
from sse import Stream
from streams.ws_client import cancel, client_secret, events_of, pay, refused, socket
from support import Gateway, Merchant, wait_for, with_sandbox

PUBLIC_FIELDS = list(PublicPaymentOut.model_fields)


def streamed(payment: dict[str, Any]) -> dict[str, Any]:
    """The payment as a stream shows it: as GET /v1/payments/{id} does, but for its client secret,
    which only answers to a secret or restricted key show (contract 1), never streams or events."""
    return {**payment, "client_secret": None} if "client_secret" in payment else payment


async def held_payment(gateway: Gateway, merchant: Merchant) -> dict[str, Any]:
    """A payment waiting for its customer until the test delivers the sandbox's webhook."""
    async with with_sandbox(gateway, send_webhooks=False) as held:
        p = await pay(held, merchant, "pm_action_success")
    assert p["status"] == "requires_action"
    return p


async def succeed(client: httpx.AsyncClient, p: dict[str, Any]) -> None:
    headers, body = SANDBOX.success_webhook(p)
    assert (await client.post("/v1/webhooks/sandbox", content=body, headers=headers)).status_code == 200


async def test_a_back_end_gets_the_payment_then_its_events_and_1000_after_the_outcome(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    p = await held_payment(gateway, merchant)
    current = (await client.get(f"/v1/payments/{p['id']}", headers=merchant.auth)).json()
    async with socket(gateway.base_url, f"/v1/payments/{p['id']}/ws", merchant.auth) as ws:
        assert await ws.message() == streamed(current)  # as GET /v1/payments/{id} shows it
        await succeed(client, p)
        changed = await ws.message()
        code, rest = await ws.closed()
    log = await events_of(client, merchant)
    assert [e["type"] for e in log] == ["payment.created", "payment.requires_action", "payment.succeeded"]
    assert changed == log[2]  # the event as GET /v1/events/{id} shows it
    assert (code, rest) == (1000, [])

    ch = channel(merchant.id, False)

    async def unsubscribed() -> bool:
        return dict(await gateway.ctx.redis.pubsub_numsub(ch))[ch.encode()] == 0

    await wait_for(unsubscribed, timeout=5)

    # Its outcome known: the payment, then 1000 at once.
    async with socket(gateway.base_url, f"/v1/payments/{p['id']}/ws", merchant.auth) as ws:
        now = await ws.message()
        assert await ws.closed() == (1000, [])
    assert now == streamed((await client.get(f"/v1/payments/{p['id']}", headers=merchant.auth)).json())
    assert now["status"] == "succeeded"


async def test_a_browser_gets_only_the_public_subset_and_1000_after_a_cancel(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    pk = await add_key(gateway, merchant.id, "publishable")
    p = await pay(client, merchant, "pm_action_never")
    secret = await client_secret(gateway, p["id"])
    path = f"/v1/payments/{p['id']}/ws"
    async with socket(gateway.base_url, path, key=pk.secret, client_secret=secret) as ws:
        first = await ws.message()
        canceled = await cancel(client, merchant, p["id"])
        second = await ws.message()
        code, rest = await ws.closed()
    assert (code, rest) == (1000, [])
    for view, status in ((first, "requires_action"), (second, "canceled")):
        assert list(view) == PUBLIC_FIELDS, view
        assert view["status"] == status
        assert (view["id"], view["amount"], view["currency"]) == (p["id"], 1200, "KES")
        assert secret not in str(view)
    assert second["next_action"] == canceled["next_action"]
    assert first["next_action"] == p["next_action"]


async def test_wrong_credentials_are_refused_on_the_handshake(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, other_merchant: Merchant
) -> None:
    pk = await add_key(gateway, merchant.id, "publishable")
    no_events = await add_key(gateway, merchant.id, "restricted", scopes=["payments:read"])
    p = await pay(client, merchant, "pm_action_never")
    secret = await client_secret(gateway, p["id"])
    other = await pay(client, other_merchant, "pm_action_never")
    path = f"/v1/payments/{p['id']}/ws"
    base = gateway.base_url

    wrong = secret[:-1] + ("y" if secret.endswith("x") else "x")  # 1 in 64 secrets ends in x already
    status, problem = await refused(base, path, key=pk.secret, client_secret=wrong)
    assert (status, problem["code"]) == (404, "resource_missing")
    status, problem = await refused(base, path, key=pk.secret)  # no secret at all
    assert (status, problem["code"]) == (404, "resource_missing")
    # The right secret of another merchant's payment opens nothing.
    other_path = f"/v1/payments/{other['id']}/ws"
    other_secret = await client_secret(gateway, other["id"])
    status, problem = await refused(base, other_path, key=pk.secret, client_secret=other_secret)
    assert (status, problem["code"]) == (404, "resource_missing")
    status, problem = await refused(base, other_path, merchant.auth)
    assert (status, problem["code"]) == (404, "resource_missing")
    # Keys other than publishable ones never ride in a URL: refused unread.
    status, problem = await refused(base, path, key=merchant.key)
    assert (status, problem["code"]) == (401, "authentication_required")
    status, problem = await refused(base, path)
    assert (status, problem["code"]) == (401, "authentication_required")
    status, problem = await refused(base, path, key="pk_test_" + "x" * 24, client_secret=secret)
    assert (status, problem["code"]) == (401, "invalid_api_key")
    status, problem = await refused(base, path, no_events.auth)
    assert (status, problem["code"], problem["required_scope"]) == (403, "insufficient_scope", "events:read")


async def test_the_sse_stream_takes_the_browser_form_and_shows_the_public_subset(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    pk = await add_key(gateway, merchant.id, "publishable")
    p = await held_payment(gateway, merchant)
    secret = await client_secret(gateway, p["id"])
    url = f"/v1/payments/{p['id']}/stream"
    wrong = await client.get(url, params={"key": pk.secret, "client_secret": "pay_x_secret_y"})
    assert (wrong.status_code, wrong.json()["code"]) == (404, "resource_missing")
    sk_in_url = await client.get(url, params={"key": merchant.key, "client_secret": secret})
    assert (sk_in_url.status_code, sk_in_url.json()["code"]) == (401, "authentication_required")

    async with client.stream("GET", url, params={"key": pk.secret, "client_secret": secret}) as r:
        stream = Stream(r)
        first = await stream.next()
        assert first is not None
        assert await stream.ready() == []
        await succeed(client, p)
        rest = await stream.end()
    log = await events_of(client, merchant)
    assert list(first.data) == PUBLIC_FIELDS
    assert (first.id, first.data["status"]) == (log[1]["id"], "requires_action")
    assert [(m.id, list(m.data), m.data["status"]) for m in rest] == [
        (log[2]["id"], PUBLIC_FIELDS, "succeeded")
    ]
