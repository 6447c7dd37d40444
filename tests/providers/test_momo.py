"""MTN MoMo Collection: the exact requests the gateway sends and how it reads every answer.

Provider HTTP is answered by respx (tests/drivers/momo.py keeps requests to pay by X-Reference-Id, as
MoMo does) with bodies shaped as docs/providers/momo.md shows them; the gateway itself runs for real,
on real PostgreSQL and Redis.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
import respx
from pydantic import SecretStr

from drivers.momo import (
    ACCESS_TOKEN,
    DISBURSEMENT_TOKEN,
    PAYER_NOT_FOUND,
    PAYER_ONGOING,
    PAYER_SUCCESS,
    FakeMomo,
    Kept,
    callback,
    reference_id,
    refund_reference_id,
    token_body,
)
from gateway.providers.base import (
    CALLBACK_TOKEN_HEADER,
    PaymentRef,
    PaymentResult,
    ProviderMisconfigured,
    RefundRequest,
    WebhookPayloadError,
    WebhookVerificationError,
)
from gateway.providers.details import MobileMoney
from gateway.providers.momo import transformers as tf
from gateway.providers.momo.adapter import SENT_KEY_PREFIX, TOKEN_KEY_PREFIX, MomoProvider, NoRequestYet
from gateway.settings import MomoSettings
from support import (
    MOMO_API,
    MOMO_API_KEY,
    MOMO_API_USER,
    MOMO_CALLBACK_TOKEN,
    MOMO_DISBURSEMENT_API_KEY,
    MOMO_DISBURSEMENT_API_USER,
    MOMO_DISBURSEMENT_SUBSCRIPTION_KEY,
    MOMO_SUBSCRIPTION_KEY,
    Gateway,
    Merchant,
    configured_app,
    wait_for,
)

API = MOMO_API
RTP = f"{API}/collection/v1_0/requesttopay"


def basic(user: str, key: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{key}".encode()).decode()


def body(phone: str | None = PAYER_ONGOING, **over: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"amount": 5_000, "currency": "EUR", "provider": "momo", **over}
    if phone is not None:
        out["customer"] = {"phone": phone}
    return out


async def create(
    client: httpx.AsyncClient, merchant: Merchant, payload: dict[str, Any], key: str | None = None
) -> httpx.Response:
    return await client.post(
        "/v1/payments", json=payload, headers={**merchant.auth, "Idempotency-Key": key or str(uuid.uuid4())}
    )


async def get(client: httpx.AsyncClient, merchant: Merchant, path: str) -> dict[str, Any]:
    r = await client.get(path, headers=merchant.auth)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def trail(client: httpx.AsyncClient, merchant: Merchant, payment_id: str) -> list[tuple[str, str]]:
    data = (await get(client, merchant, f"/v1/payments/{payment_id}/events?limit=100"))["data"]
    return [(e["type"], e["source"]) for e in reversed(data)]


async def forget_tokens(gateway: Gateway) -> None:
    """Empties the shared token cache, as on a fresh deployment."""
    keys = [k async for k in gateway.ctx.redis.scan_iter(match=TOKEN_KEY_PREFIX + "*")]
    if keys:
        await gateway.ctx.redis.delete(*keys)


async def inbox_outcome(gateway: Gateway, payment_id: str) -> str | None:
    outcome = await gateway.scalar(
        "SELECT outcome FROM inbound_webhooks WHERE provider = 'momo' AND payload->>'externalId' = :id "
        "ORDER BY received_at DESC LIMIT 1",
        id=payment_id,
    )
    return str(outcome) if outcome is not None else None


@pytest.fixture
def momo(provider_http: respx.Router) -> tuple[FakeMomo, dict[str, respx.Route]]:
    fake = FakeMomo()
    return fake, fake.install(provider_http)


def momo_settings(**over: Any) -> MomoSettings:
    values: dict[str, Any] = {
        "test_subscription_key": SecretStr(MOMO_SUBSCRIPTION_KEY),
        "test_api_user": MOMO_API_USER,
        "test_api_key": SecretStr(MOMO_API_KEY),
        "test_base_url": MOMO_API,
        "callback_token": SecretStr(MOMO_CALLBACK_TOKEN),
        **over,
    }
    return MomoSettings.model_validate(values)


# --- creating a payment: token, request to pay, status ------------------------------------------------


async def test_create_sends_the_exact_momo_requests(
    client: httpx.AsyncClient,
    gateway: Gateway,
    merchant: Merchant,
    momo: tuple[FakeMomo, dict[str, respx.Route]],
) -> None:
    fake, routes = momo
    await forget_tokens(gateway)
    r = await create(
        client, merchant, body(description="Order 1042", reference="order-1042", metadata={"k": "v"})
    )
    assert r.status_code == 201, r.text
    p = r.json()
    ref = reference_id(p["id"])  # the documented uuid5, computed by the test (drivers/momo.py)

    token = routes["token"].calls.last.request
    assert (token.method, str(token.url)) == ("POST", f"{API}/collection/token/")
    assert token.headers["authorization"] == basic(MOMO_API_USER, MOMO_API_KEY)
    assert token.headers["ocp-apim-subscription-key"] == MOMO_SUBSCRIPTION_KEY
    assert routes["token"].call_count == 1

    assert routes["requesttopay"].call_count == 1
    sent = routes["requesttopay"].calls.last.request
    assert (sent.method, str(sent.url)) == ("POST", RTP)
    assert sent.headers["authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert sent.headers["x-reference-id"] == ref
    assert sent.headers["x-target-environment"] == "sandbox"
    assert sent.headers["ocp-apim-subscription-key"] == MOMO_SUBSCRIPTION_KEY
    assert sent.headers["x-callback-url"] == f"{gateway.base_url}/v1/webhooks/momo/{MOMO_CALLBACK_TOKEN}"
    assert sent.headers["content-type"] == "application/json"
    assert json.loads(sent.content) == {
        "amount": "50",
        "currency": "EUR",
        "externalId": p["id"],
        "payer": {"partyIdType": "MSISDN", "partyId": "46733123453"},
        "payerMessage": "Order 1042",
        "payeeNote": "order-1042",
    }
    assert fake.requests.keys() == {ref}

    # Asked at once whether MoMo refused the payer; it waits for the customer.
    status = routes["status"].calls.last.request
    assert (status.method, str(status.url)) == ("GET", f"{RTP}/{ref}")
    assert status.headers["authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert status.headers["x-target-environment"] == "sandbox"
    assert status.headers["ocp-apim-subscription-key"] == MOMO_SUBSCRIPTION_KEY
    assert "x-reference-id" not in status.headers

    assert p["status"] == "requires_action"
    assert p["provider_reference"] == ref
    assert p["next_action"] == {
        "type": "mobile_money_prompt",
        "mobile_money_prompt": {
            "phone": PAYER_ONGOING,
            "message": "Approve the MTN MoMo request for EUR 50.00 on +46733123453 by entering the MoMo PIN.",
        },
    }

    # The token is shared through Redis: the next payment fetches none.
    assert (await create(client, merchant, body())).status_code == 201
    assert routes["token"].call_count == 1


@pytest.mark.parametrize(
    ("currency", "amount", "sent"),
    [("EUR", 5_000, "50"), ("EUR", 1_050, "10.50"), ("GHS", 5, "0.05"), ("UGX", 5_000, "5000")],
)
async def test_amounts_go_out_as_exact_major_unit_strings(
    client: httpx.AsyncClient,
    merchant: Merchant,
    momo: tuple[FakeMomo, dict[str, respx.Route]],
    currency: str,
    amount: int,
    sent: str,
) -> None:
    _, routes = momo
    r = await create(client, merchant, body(amount=amount, currency=currency))
    assert r.status_code == 201, r.text
    out = json.loads(routes["requesttopay"].calls.last.request.content)
    assert (out["amount"], out["currency"]) == (sent, currency)


async def test_a_payer_momo_refuses_at_once_is_a_402(
    client: httpx.AsyncClient, merchant: Merchant, momo: tuple[FakeMomo, dict[str, respx.Route]]
) -> None:
    r = await create(client, merchant, body(phone=PAYER_NOT_FOUND))
    assert r.status_code == 402, r.text
    assert r.json()["code"] == "payer_not_found"
    assert r.json()["payment"]["status"] == "failed"


async def test_a_payment_without_a_phone_is_422_invalid_phone_and_nothing_is_sent(
    client: httpx.AsyncClient,
    gateway: Gateway,
    merchant: Merchant,
    momo: tuple[FakeMomo, dict[str, respx.Route]],
) -> None:
    _, routes = momo
    r = await create(client, merchant, body(phone=None))
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "invalid_phone"
    assert r.json()["errors"][0]["loc"] == ["body", "customer", "phone"]
    assert routes["requesttopay"].call_count == 0
    assert await gateway.scalar("SELECT count(*) FROM payments WHERE merchant_id = :m", m=merchant.id) == 0


async def test_a_number_outside_the_target_environments_country_is_invalid_phone(gateway: Gateway) -> None:
    provider = MomoProvider(
        momo_settings(
            live_subscription_key=SecretStr("live-key"),
            live_api_user="live-user",
            live_api_key=SecretStr("live-secret"),
            live_base_url="https://proxy.momoapi.mtn.co.ug",
            live_target_environment="mtnuganda",
        ),
        gateway.ctx.redis,
        gateway.base_url + "/v1/webhooks/momo",
        2,
    )
    try:
        check = provider.capabilities.check_phone
        assert check is not None
        assert check("+256772123456", True) is None
        assert check("+254712345678", True) == "MTN MoMo (mtnuganda) takes only +256 numbers."
        # The sandbox takes its Swedish test numbers (and any other).
        assert check("+254712345678", False) is None
        assert check(None, False) is not None
    finally:
        await provider.aclose()


@pytest.mark.parametrize(
    ("phone", "environment", "ok"),
    [
        ("+46733123450", "sandbox", True),
        ("+256772123456", "mtnuganda", True),
        ("+233241234567", "mtnghana", True),
        ("+233241234567", "mtnrwanda", False),
        ("+250788123456", "mtnrwanda", True),
        ("+2567721", "sandbox", False),
        (None, "sandbox", False),
        ("", "mtnuganda", False),
    ],
)
def test_phone_problem(phone: str | None, environment: str, ok: bool) -> None:
    assert (tf.phone_problem(phone, environment) is None) is ok


def test_msisdn_drops_the_plus() -> None:
    assert tf.msisdn("+256772123456") == "256772123456"


# --- a create retried after a timeout ----------------------------------------------------------------


async def test_a_create_retried_after_a_timeout_reuses_the_reference_and_sends_nothing_new(
    client: httpx.AsyncClient, merchant: Merchant, momo: tuple[FakeMomo, dict[str, respx.Route]]
) -> None:
    fake, routes = momo

    def reached_momo_but_the_answer_was_lost(request: httpx.Request) -> httpx.Response:
        fake._request_to_pay(request)
        raise httpx.ReadTimeout("timed out")

    routes["requesttopay"].mock(side_effect=reached_momo_but_the_answer_was_lost)
    key = str(uuid.uuid4())
    first = await create(client, merchant, body(), key=key)
    assert first.status_code == 504, first.text
    assert first.json()["code"] == "provider_timeout"
    payment_id = first.json()["payment"]["id"]
    ref = reference_id(payment_id)
    assert (await get(client, merchant, f"/v1/payments/{payment_id}"))["status"] == "pending"

    again = await create(client, merchant, body(), key=key)
    assert again.status_code == 201, again.text
    assert (again.json()["id"], again.json()["status"]) == (payment_id, "requires_action")
    assert again.json()["provider_reference"] == ref
    # One request to pay, ever; the retry asked for the status of the same reference instead.
    assert routes["requesttopay"].call_count == 1
    assert routes["requesttopay"].calls.last.request.headers["x-reference-id"] == ref
    assert str(routes["status"].calls.last.request.url) == f"{RTP}/{ref}"
    assert list(fake.requests) == [ref]


async def test_without_the_sent_marker_a_retry_gets_409_and_asks_the_status(
    client: httpx.AsyncClient,
    gateway: Gateway,
    merchant: Merchant,
    momo: tuple[FakeMomo, dict[str, respx.Route]],
) -> None:
    fake, routes = momo
    calls = 0

    def first_answer_lost(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        answer = fake._request_to_pay(request)
        if calls == 1:
            raise httpx.ReadTimeout("timed out")
        return answer

    routes["requesttopay"].mock(side_effect=first_answer_lost)
    key = str(uuid.uuid4())
    first = await create(client, merchant, body(), key=key)
    assert first.status_code == 504, first.text
    ref = reference_id(first.json()["payment"]["id"])
    await gateway.ctx.redis.delete(SENT_KEY_PREFIX + ref)  # e.g. Redis was flushed

    again = await create(client, merchant, body(), key=key)
    assert again.status_code == 201, again.text
    assert again.json()["status"] == "requires_action"
    # Sent twice with the same X-Reference-Id; MoMo's 409 means it made no second request to pay.
    assert routes["requesttopay"].call_count == 2
    assert [c.request.headers["x-reference-id"] for c in routes["requesttopay"].calls] == [ref, ref]
    assert [
        c.optional_response and c.optional_response.status_code for c in routes["requesttopay"].calls
    ] == [
        None,
        409,
    ]
    assert list(fake.requests) == [ref]
    assert str(routes["status"].calls.last.request.url) == f"{RTP}/{ref}"


async def test_a_retry_sends_the_request_when_momo_never_received_it(
    client: httpx.AsyncClient, merchant: Merchant, momo: tuple[FakeMomo, dict[str, respx.Route]]
) -> None:
    fake, routes = momo
    routes["requesttopay"].mock(
        side_effect=[httpx.ConnectError("refused"), fake._request_to_pay]  # type: ignore[list-item]
    )
    key = str(uuid.uuid4())
    first = await create(client, merchant, body(), key=key)
    assert first.status_code == 502, first.text
    ref = reference_id(first.json()["payment"]["id"])
    again = await create(client, merchant, body(), key=key)
    assert again.status_code == 201, again.text
    # The status GET said 404 first, so the same reference went out again.
    assert routes["requesttopay"].call_count == 2
    assert [c.request.headers["x-reference-id"] for c in routes["requesttopay"].calls] == [ref, ref]
    assert list(fake.requests) == [ref]


async def test_timeout_then_sync_by_status_get(
    client: httpx.AsyncClient, merchant: Merchant, momo: tuple[FakeMomo, dict[str, respx.Route]]
) -> None:
    fake, routes = momo
    routes["requesttopay"].mock(side_effect=httpx.ReadTimeout("timed out"))
    r = await create(client, merchant, body())
    assert r.status_code == 504
    p = await get(client, merchant, f"/v1/payments/{r.json()['payment']['id']}")
    # MoMo never got it: not yet known, so the sync cannot say anything (502) and the payment waits.
    synced = await client.post(f"/v1/payments/{p['id']}/sync", headers=merchant.auth)
    assert synced.status_code == 502, synced.text
    fake.settle(p, "SUCCESSFUL")
    synced = await client.post(f"/v1/payments/{p['id']}/sync", headers=merchant.auth)
    assert (synced.status_code, synced.json()["status"]) == (200, "succeeded")


# --- tokens ------------------------------------------------------------------------------------------


async def test_concurrent_creations_fetch_the_token_once(
    client: httpx.AsyncClient,
    gateway: Gateway,
    merchant: Merchant,
    momo: tuple[FakeMomo, dict[str, respx.Route]],
) -> None:
    _, routes = momo

    async def slow_token(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.2)  # long enough for every creation to find no token
        return httpx.Response(200, json=token_body())

    routes["token"].mock(side_effect=slow_token)
    await forget_tokens(gateway)
    answers = await asyncio.gather(*[create(client, merchant, body()) for _ in range(8)])
    assert [a.status_code for a in answers] == [201] * 8
    assert routes["token"].call_count == 1
    assert routes["requesttopay"].call_count == 8
    assert {c.request.headers["authorization"] for c in routes["requesttopay"].calls} == {
        f"Bearer {ACCESS_TOKEN}"
    }


async def test_a_token_momo_no_longer_takes_is_replaced_once(
    client: httpx.AsyncClient,
    gateway: Gateway,
    merchant: Merchant,
    momo: tuple[FakeMomo, dict[str, respx.Route]],
) -> None:
    fake, routes = momo
    await forget_tokens(gateway)
    routes["token"].mock(
        side_effect=[
            httpx.Response(200, json=token_body("revoked-token")),
            httpx.Response(200, json=token_body()),
        ]
    )

    def checks_the_token(request: httpx.Request) -> httpx.Response:
        if request.headers["authorization"] != f"Bearer {ACCESS_TOKEN}":
            return httpx.Response(
                401, json={"statusCode": 401, "message": "Access token is missing or invalid"}
            )
        return fake._request_to_pay(request)

    routes["requesttopay"].mock(side_effect=checks_the_token)
    r = await create(client, merchant, body())
    assert r.status_code == 201, r.text
    assert routes["token"].call_count == 2
    assert [c.request.headers["authorization"] for c in routes["requesttopay"].calls] == [
        "Bearer revoked-token",
        f"Bearer {ACCESS_TOKEN}",
    ]


async def test_rejected_credentials_are_a_502(
    client: httpx.AsyncClient,
    gateway: Gateway,
    merchant: Merchant,
    momo: tuple[FakeMomo, dict[str, respx.Route]],
) -> None:
    _, routes = momo
    await forget_tokens(gateway)
    routes["token"].respond(401, json={"error": "login_failed"})
    r = await create(client, merchant, body())
    assert r.status_code == 502, r.text
    assert r.json()["code"] == "provider_misconfigured"
    assert routes["requesttopay"].call_count == 0
    assert (await get(client, merchant, f"/v1/payments/{r.json()['payment']['id']}"))["status"] == "pending"
    await forget_tokens(gateway)


# --- callbacks ---------------------------------------------------------------------------------------


async def waiting(client: httpx.AsyncClient, merchant: Merchant) -> dict[str, Any]:
    r = await create(client, merchant, body())
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "requires_action"
    return dict(r.json())


def success_callback(fake: FakeMomo, p: dict[str, Any]) -> tuple[dict[str, str], bytes]:
    """MoMo's callback saying SUCCESSFUL (the body the status GET would give), whatever MoMo keeps."""
    kept = fake.requests[reference_id(p["id"])]
    return callback(Kept(dict(kept.body), "SUCCESSFUL", None, kept.financial_transaction_id))


@pytest.mark.parametrize("method", ["PUT", "POST"])
async def test_a_callback_is_confirmed_by_the_status_get_before_it_is_applied(
    client: httpx.AsyncClient,
    gateway: Gateway,
    merchant: Merchant,
    momo: tuple[FakeMomo, dict[str, respx.Route]],
    method: str,
) -> None:
    fake, routes = momo
    p = await waiting(client, merchant)
    fake.settle(p, "SUCCESSFUL")
    headers, content = success_callback(fake, p)
    asked = routes["status"].call_count
    r = await client.request(
        method, f"/v1/webhooks/momo/{MOMO_CALLBACK_TOKEN}", content=content, headers=headers
    )
    assert (r.status_code, r.json()) == (200, {"received": True})

    async def succeeded() -> bool:
        return bool((await get(client, merchant, f"/v1/payments/{p['id']}"))["status"] == "succeeded")

    await wait_for(succeeded)
    assert routes["status"].call_count == asked + 1
    assert str(routes["status"].calls.last.request.url) == f"{RTP}/{reference_id(p['id'])}"
    assert ("payment.succeeded", "webhook") in await trail(client, merchant, p["id"])


@pytest.mark.parametrize(("momo_status", "after"), [("PENDING", "requires_action"), ("FAILED", "failed")])
async def test_a_success_callback_the_status_get_contradicts_is_not_applied(
    client: httpx.AsyncClient,
    gateway: Gateway,
    merchant: Merchant,
    momo: tuple[FakeMomo, dict[str, respx.Route]],
    momo_status: str,
    after: str,
) -> None:
    fake, routes = momo
    p = await waiting(client, merchant)
    asked = routes["status"].call_count
    fake.settle(p, momo_status, "APPROVAL_REJECTED" if momo_status == "FAILED" else None)
    headers, content = success_callback(fake, p)
    assert json.loads(content)["status"] == "SUCCESSFUL"
    r = await client.put(f"/v1/webhooks/momo/{MOMO_CALLBACK_TOKEN}", content=content, headers=headers)
    assert r.status_code == 200

    async def handled() -> bool:
        return await inbox_outcome(gateway, p["id"]) is not None

    await wait_for(handled)
    assert await inbox_outcome(gateway, p["id"]) == (
        "no_change" if after == "requires_action" else "processed"
    )
    payment = await get(client, merchant, f"/v1/payments/{p['id']}")
    assert payment["status"] == after
    if after == "failed":
        assert payment["failure_code"] == "customer_canceled"
    assert routes["status"].call_count == asked + 1  # the status GET decided, not the callback
    assert "payment.succeeded" not in [t for t, _ in await trail(client, merchant, p["id"])]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", f"/v1/webhooks/momo/{MOMO_CALLBACK_TOKEN[:-1]}X"),
        ("POST", f"/v1/webhooks/momo/{MOMO_CALLBACK_TOKEN[:-1]}X"),
        ("POST", "/v1/webhooks/momo"),
    ],
)
async def test_a_callback_with_a_wrong_or_no_path_token_is_rejected(
    client: httpx.AsyncClient,
    gateway: Gateway,
    merchant: Merchant,
    momo: tuple[FakeMomo, dict[str, respx.Route]],
    method: str,
    path: str,
) -> None:
    fake, routes = momo
    p = await waiting(client, merchant)
    fake.settle(p, "SUCCESSFUL")
    headers, content = success_callback(fake, p)
    asked = routes["status"].call_count
    # Sending the token as a header does not help: only the path carries it.
    r = await client.request(method, path, content=content, headers=headers)
    assert r.status_code == 401
    assert r.json()["code"] == "webhook_signature_invalid"
    # A refused callback is refused before it is stored, so no work is left behind it to wait for.
    stored = "SELECT count(*) FROM inbound_webhooks WHERE provider = 'momo' AND payload->>'externalId' = :id"
    assert await gateway.scalar(stored, id=p["id"]) == 0
    assert routes["status"].call_count == asked
    assert (await get(client, merchant, f"/v1/payments/{p['id']}"))["status"] == "requires_action"
    # The same callback at the right address is taken and applied: only the address was wrong.
    ok = await client.put(f"/v1/webhooks/momo/{MOMO_CALLBACK_TOKEN}", content=content, headers=headers)
    assert ok.status_code == 200, ok.text

    async def applied() -> bool:
        return bool((await get(client, merchant, f"/v1/payments/{p['id']}"))["status"] == "succeeded")

    await wait_for(applied)
    assert await gateway.scalar(stored, id=p["id"]) == 1
    assert routes["status"].call_count == asked + 1


async def test_a_malformed_callback_is_400(client: httpx.AsyncClient) -> None:
    url = f"/v1/webhooks/momo/{MOMO_CALLBACK_TOKEN}"
    assert (await client.put(url, content=b"not json")).status_code == 400
    assert (await client.put(url, content=b'{"status": "SUCCESSFUL"}')).status_code == 400


def test_verify_webhook_without_a_configured_token_refuses_everything() -> None:
    provider = MomoProvider(momo_settings(callback_token=None), None, "http://gw.test/v1/webhooks/momo", 2)  # type: ignore[arg-type]
    with pytest.raises(WebhookVerificationError):
        provider.verify_webhook({CALLBACK_TOKEN_HEADER: MOMO_CALLBACK_TOKEN}, b"{}")


def test_reference_ids_are_the_documented_uuid5s() -> None:
    # Worked out from docs/providers/momo.md's namespaces with RFC 4122's SHA-1 construction.
    assert reference_id("pay_01abc") == "29c74bb1-9016-5d8b-a5a8-82065d90b025"
    assert refund_reference_id("re_01abc") == "e8ea31ba-4fe4-5d8f-8c01-abbb0b1e12b5"
    assert tf.reference_id("pay_01abc") == "29c74bb1-9016-5d8b-a5a8-82065d90b025"
    assert tf.refund_reference_id("re_01abc") == "e8ea31ba-4fe4-5d8f-8c01-abbb0b1e12b5"


def test_interpret_maps_a_callback_to_a_hint_for_the_payment() -> None:
    payload = {
        "amount": "50",
        "currency": "EUR",
        "financialTransactionId": "23503452",
        "externalId": "pay_01abc",
        "payer": {"partyIdType": "MSISDN", "partyId": "46733123450"},
        "payerMessage": "Payment pay_01abc",
        "payeeNote": "pay_01abc",
        "status": "SUCCESSFUL",
    }
    event = tf.interpret(payload)
    ref = "29c74bb1-9016-5d8b-a5a8-82065d90b025"  # uuid5(docs/providers/momo.md's namespace, "pay_01abc")
    assert (event.event_id, event.event_type) == (f"{ref}:SUCCESSFUL", "requesttopay.successful")
    assert (event.payment_id, event.provider_reference) == ("pay_01abc", ref)
    assert event.result == PaymentResult(
        status="succeeded",
        provider_reference=ref,
        amount=5_000,
        currency="EUR",
        payment_method_details=MobileMoney(operator="mtn", phone_last4="3450", receipt="23503452"),
    )
    refund = tf.interpret({**payload, "externalId": "re_01abc"})
    assert (refund.result, refund.refund_result, refund.payment_id) == (None, None, None)
    with pytest.raises(WebhookPayloadError):
        tf.interpret({**payload, "externalId": None})


# --- status answers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "reason", "code"),
    [
        ("FAILED", "APPROVAL_REJECTED", "customer_canceled"),
        ("FAILED", {"code": "EXPIRED", "message": "Request expired"}, "timeout"),
        ("FAILED", "PAYER_NOT_FOUND", "payer_not_found"),
        ("FAILED", "INTERNAL_PROCESSING_ERROR", "processing_error"),
        ("FAILED", "NOT_ENOUGH_FUNDS", "insufficient_funds"),
        ("FAILED", "SOMETHING_NEW", "payment_failed"),
        ("FAILED", None, "payment_failed"),
        ("REJECTED", None, "customer_canceled"),
        ("TIMEOUT", None, "timeout"),
    ],
)
def test_failures_map_to_our_codes(status: str, reason: Any, code: str) -> None:
    data: dict[str, Any] = {"amount": "50", "currency": "EUR", "externalId": "pay_1", "status": status}
    if reason is not None:
        data["reason"] = reason
    result = tf.payment_result(data, "ref")
    assert (result.status, result.failure_code) == ("failed", code)


@pytest.mark.parametrize("status", ["PENDING", "CREATED"])
def test_pending_and_created_wait_for_the_customer(status: str) -> None:
    data = {
        "amount": "50",
        "currency": "EUR",
        "externalId": "pay_1",
        "payer": {"partyIdType": "MSISDN", "partyId": "46733123453"},
        "status": status,
    }
    result = tf.payment_result(data, "ref")
    assert result.status == "requires_action"
    assert result.next_action is not None
    assert result.next_action["mobile_money_prompt"]["phone"] == "+46733123453"


def test_an_unknown_status_or_inexact_amount_is_malformed() -> None:
    with pytest.raises(tf.MalformedAnswer):
        tf.payment_result({"status": "WHATEVER"}, "ref")
    with pytest.raises(tf.MalformedAnswer):
        tf.payment_result({"status": "SUCCESSFUL", "amount": "50.001", "currency": "EUR"}, "ref")


async def test_a_request_momo_never_received_fails_only_after_the_ttl(
    gateway: Gateway, momo: tuple[FakeMomo, dict[str, respx.Route]]
) -> None:
    provider = MomoProvider(momo_settings(), gateway.ctx.redis, gateway.base_url + "/v1/webhooks/momo", 2)
    try:
        now = datetime.now(UTC)
        ref = PaymentRef(f"pay_{uuid.uuid4().hex}", None, 5_000, "EUR", False, now)
        with pytest.raises(NoRequestYet):
            await provider.fetch_payment(ref)
        old = PaymentRef(ref.payment_id, None, 5_000, "EUR", False, now - timedelta(hours=1))
        result = await provider.fetch_payment(old)
        assert (result.status, result.failure_code) == ("failed", "request_not_received")
    finally:
        await provider.aclose()


async def test_a_status_answer_for_another_external_id_is_not_trusted(
    gateway: Gateway, provider_http: respx.Router
) -> None:
    provider_http.post(f"{API}/collection/token/").respond(200, json=token_body())
    payment_id = f"pay_{uuid.uuid4().hex}"
    provider_http.get(f"{RTP}/{reference_id(payment_id)}").respond(
        200,
        json={
            "amount": "50",
            "currency": "EUR",
            "financialTransactionId": "23503452",
            "externalId": "pay_someone_else",
            "payer": {"partyIdType": "MSISDN", "partyId": "46733123499"},
            "payerMessage": "x",
            "payeeNote": "x",
            "status": "SUCCESSFUL",
        },
    )
    provider = MomoProvider(momo_settings(), gateway.ctx.redis, gateway.base_url + "/v1/webhooks/momo", 2)
    try:
        with pytest.raises(Exception, match="another externalId"):
            await provider.fetch_payment(PaymentRef(payment_id, None, 5_000, "EUR", False, datetime.now(UTC)))
    finally:
        await provider.aclose()


def test_cancel_is_not_offered() -> None:
    provider = MomoProvider(momo_settings(), None, "http://gw.test/v1/webhooks/momo", 2)  # type: ignore[arg-type]
    assert provider.capabilities.cancel is False
    assert provider.capabilities.query_before_acting is True


# --- refunds (Disbursement) --------------------------------------------------------------------------


async def succeeded_payment(
    client: httpx.AsyncClient, merchant: Merchant, fake: FakeMomo, phone: str = PAYER_SUCCESS
) -> dict[str, Any]:
    r = await create(client, merchant, body(phone=phone))
    assert r.status_code == 201, r.text
    fake.settle(r.json(), "SUCCESSFUL")
    synced = await client.post(f"/v1/payments/{r.json()['id']}/sync", headers=merchant.auth)
    assert synced.json()["status"] == "succeeded", synced.text
    return dict(synced.json())


async def test_a_refund_goes_to_the_disbursement_product(
    client: httpx.AsyncClient,
    gateway: Gateway,
    merchant: Merchant,
    momo: tuple[FakeMomo, dict[str, respx.Route]],
) -> None:
    fake, routes = momo
    p = await succeeded_payment(client, merchant, fake)
    await forget_tokens(gateway)
    r = await client.post(
        f"/v1/payments/{p['id']}/refunds",
        json={"amount": 1_050, "reason": "requested_by_customer"},
        headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert r.status_code == 201, r.text
    refund = r.json()
    ref = refund_reference_id(refund["id"])
    assert (refund["status"], refund["provider_reference"]) == ("succeeded", ref)

    token = routes["disbursement_token"].calls.last.request
    assert token.headers["authorization"] == basic(MOMO_DISBURSEMENT_API_USER, MOMO_DISBURSEMENT_API_KEY)
    assert token.headers["ocp-apim-subscription-key"] == MOMO_DISBURSEMENT_SUBSCRIPTION_KEY
    assert routes["refund"].call_count == 1
    sent = routes["refund"].calls.last.request
    assert (sent.method, str(sent.url)) == ("POST", f"{API}/disbursement/v1_0/refund")
    assert sent.headers["authorization"] == f"Bearer {DISBURSEMENT_TOKEN}"
    assert sent.headers["x-reference-id"] == ref
    assert sent.headers["x-target-environment"] == "sandbox"
    assert sent.headers["ocp-apim-subscription-key"] == MOMO_DISBURSEMENT_SUBSCRIPTION_KEY
    assert "x-callback-url" not in sent.headers
    assert json.loads(sent.content) == {
        "amount": "10.50",
        "currency": "EUR",
        "externalId": refund["id"],
        "payerMessage": f"Refund of payment {p['id']}",
        "payeeNote": f"Refund {refund['id']} of {p['id']}",
        "referenceIdToRefund": reference_id(p["id"]),
    }
    status = routes["refund_status"].calls.last.request
    assert str(status.url) == f"{API}/disbursement/v1_0/refund/{ref}"
    assert status.headers["authorization"] == f"Bearer {DISBURSEMENT_TOKEN}"
    after = await get(client, merchant, f"/v1/payments/{p['id']}")
    assert (after["status"], after["amount_refunded"]) == ("partially_refunded", 1_050)


async def test_without_disbursement_credentials_refunds_are_422_refund_not_supported(
    client: httpx.AsyncClient,
    gateway: Gateway,
    merchant: Merchant,
    momo: tuple[FakeMomo, dict[str, respx.Route]],
) -> None:
    fake, routes = momo
    p = await succeeded_payment(client, merchant, fake)
    # A second gateway app whose MoMo has the Collection product only (no Disbursement credentials).
    collection_only = gateway.ctx.settings.model_copy(update={"momo": momo_settings()})
    async with configured_app(collection_only) as app:
        r = await app.post(
            f"/v1/payments/{p['id']}/refunds",
            json={"amount": 1_000},
            headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())},
        )
    assert (r.status_code, r.json()["code"]) == (422, "refund_not_supported")
    assert r.headers["content-type"] == "application/problem+json"
    assert routes["refund"].call_count == 0
    assert routes["disbursement_token"].call_count == 0
    assert await gateway.scalar("SELECT count(*) FROM refunds WHERE payment_id = :p", p=p["id"]) == 0


async def test_a_refund_in_a_mode_without_disbursement_credentials_is_misconfigured(gateway: Gateway) -> None:
    provider = MomoProvider(
        momo_settings(
            test_disbursement_subscription_key=SecretStr(MOMO_DISBURSEMENT_SUBSCRIPTION_KEY),
            test_disbursement_api_user=MOMO_DISBURSEMENT_API_USER,
            test_disbursement_api_key=SecretStr(MOMO_DISBURSEMENT_API_KEY),
        ),
        gateway.ctx.redis,
        gateway.base_url + "/v1/webhooks/momo",
        2,
    )
    try:
        assert provider.capabilities.refunds is True
        live = PaymentRef("pay_1", None, 5_000, "EUR", True, datetime.now(UTC))
        with pytest.raises(ProviderMisconfigured, match="disbursement product has no live-mode"):
            await provider.refund_payment(RefundRequest("re_1", live, 1_000))
    finally:
        await provider.aclose()


def test_settings_refuse_a_callback_token_that_cannot_be_a_path_segment() -> None:
    with pytest.raises(ValueError, match="callback_token"):
        MomoSettings.model_validate({"callback_token": "short/with-slash"})
    assert momo_settings().callback_token is not None


def test_a_refund_status_maps_to_our_terms() -> None:
    base = {"amount": "10.50", "currency": "EUR", "externalId": "re_1"}
    assert tf.refund_result({**base, "status": "SUCCESSFUL"}, "r").amount == 1_050
    assert tf.refund_result({**base, "status": "PENDING"}, "r").status == "pending"
    failed = tf.refund_result({**base, "status": "FAILED", "reason": "NOT_ENOUGH_FUNDS"}, "r")
    assert (failed.status, failed.failure_code) == ("failed", "refund_declined")


def test_the_driver_keeps_callbacks_shaped_as_the_status_get() -> None:
    kept = Kept(
        {
            "amount": "50",
            "currency": "EUR",
            "externalId": "pay_1",
            "payer": {"partyIdType": "MSISDN", "partyId": "46733123450"},
            "payerMessage": "m",
            "payeeNote": "n",
        },
        "FAILED",
        "APPROVAL_REJECTED",
    )
    headers, content = callback(kept)
    assert headers[CALLBACK_TOKEN_HEADER] == MOMO_CALLBACK_TOKEN
    assert orjson.loads(content) == {
        "amount": "50",
        "currency": "EUR",
        "externalId": "pay_1",
        "payer": {"partyIdType": "MSISDN", "partyId": "46733123450"},
        "payerMessage": "m",
        "payeeNote": "n",
        "status": "FAILED",
        "reason": "APPROVAL_REJECTED",
    }
