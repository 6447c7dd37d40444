"""M-Pesa (Daraja STK Push): the exact requests the gateway sends, and what it makes of every answer.

Daraja is answered by respx (tests/drivers/mpesa.py's FakeDaraja) with bodies shaped as
docs/providers/mpesa.md shows them; PostgreSQL, Redis and the gateway run for real. Expected request
bodies are written out literally, the Password checked against the official sample
(docs/providers/mpesa.md#test-values) with the adapter's clock frozen (the adapter takes a clock
function; nothing patches time itself).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
import respx
from redis.asyncio import Redis

from drivers.mpesa import (
    PHONE,
    FakeDaraja,
    callback_headers,
    daraja_error,
    merchant_request_id,
    receipt,
    reversal_result,
    stk_callback,
)
from gateway.embedded import EmbeddedServers
from gateway.providers.base import (
    CALLBACK_TOKEN_HEADER,
    Customer,
    PaymentRef,
    PaymentRequest,
    ProviderMisconfigured,
    WebhookVerificationError,
)
from gateway.providers.mpesa import callbacks
from gateway.providers.mpesa import transformers as tf
from gateway.providers.mpesa.adapter import MpesaProvider
from gateway.providers.registry import _Instrumented
from gateway.settings import MpesaSettings
from support import (
    MPESA_API,
    MPESA_CALLBACK_TOKEN,
    MPESA_CONSUMER_KEY,
    MPESA_CONSUMER_SECRET,
    MPESA_INITIATOR,
    MPESA_PASSKEY,
    MPESA_SECURITY_CREDENTIAL,
    MPESA_SHORTCODE,
    Gateway,
    Merchant,
    configured_app,
    wait_for,
)

# docs/providers/mpesa.md: the official sample's Timestamp and the Password it makes with the sandbox
# shortcode and passkey.
SAMPLE_TIMESTAMP = "20210628092408"
SAMPLE_PASSWORD = (
    "MTc0Mzc5YmZiMjc5ZjlhYTliZGJjZjE1OGU5N2RkNzFhNDY3Y2QyZTBjODkzMDU5YjEwZjc4"
    "ZTZiNzJhZGExZWQyYzkxOTIwMjEwNjI4MDkyNDA4"
)
# 09:24:08 in Nairobi (EAT, UTC+3) is 06:24:08 UTC.
FROZEN = datetime(2021, 6, 28, 6, 24, 8, tzinfo=UTC)
PUSH = f"{MPESA_API}/mpesa/stkpush/v1/processrequest"
OAUTH = f"{MPESA_API}/oauth/v1/generate"
ACK = {"ResultCode": 0, "ResultDesc": "Accepted"}


def body(**over: Any) -> dict[str, Any]:
    return {
        "amount": 5_000,
        "currency": "KES",
        "provider": "mpesa",
        "customer": {"phone": PHONE},
        "reference": "INV-2024-00042",
        "description": "Order 42 at the shop",
        **over,
    }


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


async def trail(client: httpx.AsyncClient, merchant: Merchant, payment_id: str) -> list[str]:
    data = (await get(client, merchant, f"/v1/payments/{payment_id}/events?limit=100"))["data"]
    return [e["type"] for e in reversed(data)]


async def callback(
    client: httpx.AsyncClient, content: bytes, token: str = MPESA_CALLBACK_TOKEN
) -> httpx.Response:
    return await client.post(f"/v1/webhooks/mpesa/{token}", content=content, headers=callback_headers(token))


async def inbox_outcome(gateway: Gateway, needle: str) -> str | None:
    outcome: str | None = await gateway.scalar(
        "SELECT outcome FROM inbound_webhooks WHERE provider = 'mpesa' AND payload::text LIKE :n",
        n=f"%{needle}%",
    )
    return outcome


def adapter_of(gateway: Gateway) -> MpesaProvider:
    wrapped = gateway.ctx.registry.get("mpesa")
    assert isinstance(wrapped, _Instrumented)
    inner = wrapped._inner
    assert isinstance(inner, MpesaProvider)
    return inner


def settings(**over: Any) -> MpesaSettings:
    values: dict[str, Any] = {
        "test_consumer_key": MPESA_CONSUMER_KEY,
        "test_consumer_secret": MPESA_CONSUMER_SECRET,
        "test_shortcode": MPESA_SHORTCODE,
        "test_passkey": MPESA_PASSKEY,
        "test_initiator_name": MPESA_INITIATOR,
        "test_security_credential": MPESA_SECURITY_CREDENTIAL,
        "test_base_url": MPESA_API,
        "callback_token": MPESA_CALLBACK_TOKEN,
        **over,
    }
    return MpesaSettings(**values)


def request(**over: Any) -> PaymentRequest:
    values: dict[str, Any] = {
        "payment_id": "pay_01j0000000000000000000abcd",
        "amount": 5_000,
        "currency": "KES",
        "livemode": False,
        "created_at": FROZEN,
        "customer": Customer(phone=PHONE),
        "reference": "INV-2024-00042",
        "description": "Order 42 at the shop",
        **over,
    }
    return PaymentRequest(**values)


@pytest.fixture
def daraja(provider_http: respx.Router) -> FakeDaraja:
    fake = FakeDaraja()
    fake.install(provider_http)
    return fake


@pytest.fixture
async def redis(servers: EmbeddedServers) -> AsyncIterator[Redis]:
    r = Redis.from_url(servers.redis.url)
    yield r
    await r.aclose()


@pytest.fixture
def frozen(gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(adapter_of(gateway), "clock", lambda: FROZEN)


async def fresh_tokens(redis: Redis) -> None:
    """Forget cached OAuth tokens, so the next call must fetch one."""
    async for key in redis.scan_iter("mpesa:oauth:*"):
        await redis.delete(key)


async def paid(
    client: httpx.AsyncClient, merchant: Merchant, daraja: FakeDaraja, **over: Any
) -> tuple[dict[str, Any], str]:
    """A payment the customer paid, confirmed by callback and STK Query; returns it and its receipt."""
    r = await create(client, merchant, body(**over))
    assert r.status_code == 201, r.text
    p = dict(r.json())
    mpesa_receipt = daraja.pay(p)
    checkout = p["provider_reference"]
    content = stk_callback(
        checkout, daraja.merchant_request_of[checkout], 0, amount=p["amount"], mpesa_receipt=mpesa_receipt
    )
    assert (await callback(client, content)).json() == ACK

    async def succeeded() -> bool:
        return bool((await get(client, merchant, f"/v1/payments/{p['id']}"))["status"] == "succeeded")

    await wait_for(succeeded)
    return p, mpesa_receipt


# --- pure transformers ---------------------------------------------------------------------------------


def test_password_is_the_official_sample() -> None:
    assert tf.password(MPESA_SHORTCODE, MPESA_PASSKEY, SAMPLE_TIMESTAMP) == SAMPLE_PASSWORD
    decoded = base64.b64decode(SAMPLE_PASSWORD).decode()
    assert decoded == MPESA_SHORTCODE + MPESA_PASSKEY + SAMPLE_TIMESTAMP


def test_timestamp_is_local_time_at_the_configured_offset() -> None:
    assert tf.timestamp(FROZEN, 180) == SAMPLE_TIMESTAMP  # EAT
    assert tf.timestamp(FROZEN, 0) == "20210628062408"
    assert tf.timestamp(datetime(2024, 12, 31, 22, 30, tzinfo=UTC), 180) == "20250101013000"


@pytest.mark.parametrize(
    ("phone", "msisdn"),
    [("+254712345678", "254712345678"), ("+254110345678", "254110345678"), ("+254708374149", "254708374149")],
)
def test_safaricom_numbers_become_msisdns(phone: str, msisdn: str) -> None:
    assert tf.phone_problem(phone) is None
    assert tf.msisdn(phone) == msisdn


@pytest.mark.parametrize("phone", [None, "+255712345678", "+256772123456", "+254201234567", "+14155550100"])
def test_numbers_mpesa_cannot_prompt_are_named(phone: str | None) -> None:
    problem = tf.phone_problem(phone)
    assert problem is not None
    assert "+2547XXXXXXXX" in problem
    if phone is not None:
        assert phone in problem
        with pytest.raises(ValueError, match="Safaricom"):
            tf.msisdn(phone)


def test_account_reference_and_description_keep_within_darajas_limits() -> None:
    assert tf.account_reference("INV-2024-00042", "pay_x") == "INV202400042"
    assert tf.account_reference("order #1042 for Wanjiku", "pay_x") == "order1042for"
    assert tf.account_reference("---", "pay_01j5qz8y7x6w5v4t3s2r1q0p9n") == "4T3S2R1Q0P9N"
    assert tf.account_reference(None, "pay_01j5qz8y7x6w5v4t3s2r1q0p9n") == "4T3S2R1Q0P9N"
    assert tf.transaction_desc("Order 42 at the shop") == "Order 42 at t"
    assert tf.transaction_desc("Café: 2 chai, ½ off") == "Caf 2 chai of"
    assert tf.transaction_desc(None) == "Payment"
    assert len(tf.transaction_desc("x" * 100)) == 13


@pytest.mark.parametrize(
    ("code", "status", "failure_code"),
    [
        ("0", "succeeded", None),
        ("1", "failed", "insufficient_funds"),
        ("2", "failed", "amount_too_small"),
        ("3", "failed", "amount_too_large"),
        ("4", "failed", "limit_exceeded"),
        ("8", "failed", "merchant_limit_exceeded"),
        ("17", "failed", "duplicate_transaction"),
        ("1019", "failed", "expired"),
        ("1025", "failed", "prompt_failed"),
        ("1032", "failed", "customer_canceled"),
        ("1037", "failed", "timeout"),
        ("2001", "failed", "incorrect_pin"),
        ("2028", "failed", "transaction_not_permitted"),
        ("8006", "failed", "account_locked"),
        ("SFC_IC0003", "failed", "transaction_not_permitted"),
        ("1001", "failed", "customer_busy"),
        ("26", "failed", "provider_busy"),
        ("9999", "failed", "prompt_failed"),
        ("777", "failed", "payment_failed"),
    ],
)
def test_result_codes(code: str, status: str, failure_code: str | None) -> None:
    result = tf.stk_result(code, "desc", "ws_CO_1")
    assert (result.status, result.failure_code, result.provider_reference) == (
        status,
        failure_code,
        "ws_CO_1",
    )
    if failure_code:
        assert result.failure_message is not None
        assert f"M-Pesa: {code} desc" in result.failure_message


def test_stk_query_still_processing_answers_wait_for_the_customer() -> None:
    action = tf.prompt(PHONE, 5_000)
    pending = {
        "requestId": "1-2-3",
        "errorCode": "500.001.1001",
        "errorMessage": "The transaction is being processed",
    }
    under_processing = {
        "ResponseCode": "0",
        "ResponseDescription": "The service request has been accepted successfully",
        "MerchantRequestID": "22205-34066-1",
        "CheckoutRequestID": "ws_CO_1",
        "ResultCode": "4999",
        "ResultDesc": "The transaction is still under processing",
    }
    for answer in (pending, under_processing):
        result = tf.query_result(
            answer,
            "ws_CO_1",
            pending_error_codes=frozenset({"500.001.1001"}),
            pending_result_codes=frozenset({"4999"}),
            next_action=action,
        )
        assert result is not None
        assert (result.status, result.next_action) == ("requires_action", action)
    # Not configured as "still processing": not a result at all (the adapter raises a provider failure).
    assert (
        tf.query_result(
            pending,
            "ws_CO_1",
            pending_error_codes=frozenset(),
            pending_result_codes=frozenset(),
            next_action=None,
        )
        is None
    )


def test_callback_metadata_is_read_by_name() -> None:
    payload = json.loads(
        stk_callback(
            "ws_CO_191220191020363925", "29115-34620561-1", 0, amount=100, mpesa_receipt="NLJ7RT61SV"
        )
    )
    items = payload["Body"]["stkCallback"]["CallbackMetadata"]["Item"]
    # Older samples carry a Balance without a Value, and nothing promises the order.
    payload["Body"]["stkCallback"]["CallbackMetadata"]["Item"] = [{"Name": "Balance"}, *reversed(items)]
    event, cb = callbacks.interpret(payload)
    assert cb is not None
    assert (cb.amount, cb.receipt, cb.phone) == (100, "NLJ7RT61SV", "254708374149")
    assert event.result is not None
    assert (event.result.status, event.result.amount, event.result.currency) == ("succeeded", 100, "KES")
    assert event.provider_reference == "ws_CO_191220191020363925"


# --- the adapter on its own (real Redis, respx for Daraja) ----------------------------------------------


async def test_stk_push_request_is_exactly_darajas(provider_http: respx.Router, redis: Redis) -> None:
    await fresh_tokens(redis)
    oauth = provider_http.get(OAUTH, params={"grant_type": "client_credentials"}).respond(
        200, json={"access_token": "c9SQxWWhmdVRlyh0zh8gZDTkubVF", "expires_in": "3599"}
    )
    push = provider_http.post(PUSH).respond(
        200,
        json={
            "MerchantRequestID": "2654-4b64-97ff-b827b542881d3130",
            "CheckoutRequestID": "ws_CO_1007202409152617172396192",
            "ResponseCode": "0",
            "ResponseDescription": "Success. Request accepted for processing",
            "CustomerMessage": "Success. Request accepted for processing",
        },
    )
    adapter = MpesaProvider(
        settings(), redis, "https://gw.example/v1/webhooks/mpesa", 2.0, clock=lambda: FROZEN
    )
    try:
        result = await adapter.create_payment(request(payment_id=f"pay_{uuid.uuid4().hex[:26]}"))
    finally:
        await adapter.aclose()

    token_request = oauth.calls.last.request
    basic = base64.b64encode(f"{MPESA_CONSUMER_KEY}:{MPESA_CONSUMER_SECRET}".encode()).decode()
    assert token_request.headers["Authorization"] == f"Basic {basic}"
    sent = push.calls.last.request
    assert sent.headers["Authorization"] == "Bearer c9SQxWWhmdVRlyh0zh8gZDTkubVF"
    assert sent.headers["Content-Type"] == "application/json"
    assert json.loads(sent.content) == {
        "BusinessShortCode": 174379,
        "Password": SAMPLE_PASSWORD,
        "Timestamp": SAMPLE_TIMESTAMP,
        "TransactionType": "CustomerPayBillOnline",
        "Amount": 50,
        "PartyA": "254708374149",
        "PartyB": "174379",
        "PhoneNumber": "254708374149",
        "CallBackURL": f"https://gw.example/v1/webhooks/mpesa/{MPESA_CALLBACK_TOKEN}",
        "AccountReference": "INV202400042",
        "TransactionDesc": "Order 42 at t",
    }
    assert result.status == "requires_action"
    assert result.provider_reference == "ws_CO_1007202409152617172396192"
    assert result.next_action == {
        "type": "mobile_money_prompt",
        "mobile_money_prompt": {
            "phone": PHONE,
            "message": f"Enter your M-Pesa PIN on the prompt sent to {PHONE} to pay KES 50.",
        },
    }
    # Cached until 300 s before Daraja expires it.
    key = next(iter([k async for k in redis.scan_iter("mpesa:oauth:*") if not k.endswith(b":lock")]))
    assert 3_290 <= await redis.ttl(key) <= 3_299


async def test_till_numbers_are_paid_with_buy_goods(provider_http: respx.Router, redis: Redis) -> None:
    daraja = FakeDaraja()
    daraja.install(provider_http)
    adapter = MpesaProvider(
        settings(test_transaction_type="CustomerBuyGoodsOnline", test_till_number="5544332"),
        redis,
        "https://gw.example/v1/webhooks/mpesa",
        2.0,
        clock=lambda: FROZEN,
    )
    try:
        await adapter.create_payment(request(payment_id=f"pay_{uuid.uuid4().hex[:26]}"))
    finally:
        await adapter.aclose()
    sent = daraja.pushes[-1]
    assert (sent["TransactionType"], sent["BusinessShortCode"], sent["PartyB"]) == (
        "CustomerBuyGoodsOnline",
        174379,
        "5544332",
    )
    assert sent["Password"] == SAMPLE_PASSWORD  # still the BusinessShortCode's


def test_a_till_without_its_number_is_not_configured(redis: Redis) -> None:
    adapter = MpesaProvider(
        settings(test_transaction_type="CustomerBuyGoodsOnline"), redis, "https://gw.example/cb", 2.0
    )
    assert not adapter.is_configured(False)
    assert not adapter.is_configured(True)
    assert not MpesaProvider(
        settings(callback_token=None), redis, "https://gw.example/cb", 2.0
    ).is_configured(False)


def test_callback_tokens_must_be_unguessable() -> None:
    with pytest.raises(ValueError, match="24 to 200"):
        settings(callback_token="short")
    with pytest.raises(ValueError, match="24 to 200"):
        settings(callback_token="a/b" * 10)


async def test_workers_share_one_token_fetched_once(provider_http: respx.Router, redis: Redis) -> None:
    """Two workers (adapters) on one Redis, twenty payments at once: one OAuth request in all."""
    daraja = FakeDaraja()
    daraja.install(provider_http)
    app = settings(test_consumer_key=f"key-{uuid.uuid4().hex}")
    started = asyncio.Event()

    async def slow_token(req: httpx.Request) -> httpx.Response:
        started.set()
        await asyncio.sleep(0.3)  # every other request arrives while this one is in flight
        return httpx.Response(200, json={"access_token": "shared-token-1", "expires_in": 3599})

    provider_http.routes["mpesa_oauth"].mock(side_effect=slow_token)
    workers = [MpesaProvider(app, redis, "https://gw.example/cb", 2.0) for _ in range(2)]
    try:
        results = await asyncio.gather(
            *(
                workers[i % 2].create_payment(request(payment_id=f"pay_{uuid.uuid4().hex[:26]}"))
                for i in range(20)
            )
        )
    finally:
        for w in workers:
            await w.aclose()
    assert [r.status for r in results] == ["requires_action"] * 20
    assert provider_http.routes["mpesa_oauth"].call_count == 1
    assert {c.request.headers["Authorization"] for c in provider_http.routes["mpesa_push"].calls} == {
        "Bearer shared-token-1"
    }


async def test_an_invalid_token_is_refreshed_once(provider_http: respx.Router, redis: Redis) -> None:
    tokens = iter(["stale-token", "fresh-token"])
    provider_http.get(OAUTH, params={"grant_type": "client_credentials"}).mock(
        side_effect=lambda req: httpx.Response(200, json={"access_token": next(tokens), "expires_in": "3599"})
    )
    push = provider_http.post(PUSH).mock(
        side_effect=[
            daraja_error(404, "404.001.03", "Invalid Access Token"),
            httpx.Response(
                200,
                json={
                    "MerchantRequestID": "1-2-3",
                    "CheckoutRequestID": "ws_CO_refreshed",
                    "ResponseCode": "0",
                    "ResponseDescription": "Success. Request accepted for processing",
                    "CustomerMessage": "Success. Request accepted for processing",
                },
            ),
        ]
    )
    adapter = MpesaProvider(
        settings(test_consumer_key=f"key-{uuid.uuid4().hex}"), redis, "https://gw/cb", 2.0
    )
    try:
        result = await adapter.create_payment(request(payment_id=f"pay_{uuid.uuid4().hex[:26]}"))
    finally:
        await adapter.aclose()
    assert result.provider_reference == "ws_CO_refreshed"
    assert [c.request.headers["Authorization"] for c in push.calls] == [
        "Bearer stale-token",
        "Bearer fresh-token",
    ]


async def test_a_second_invalid_token_answer_is_a_configuration_problem(
    provider_http: respx.Router, redis: Redis
) -> None:
    provider_http.get(OAUTH, params={"grant_type": "client_credentials"}).respond(
        200, json={"access_token": "t", "expires_in": "3599"}
    )
    push = provider_http.post(PUSH).mock(return_value=daraja_error(404, "404.001.03", "Invalid Access Token"))
    adapter = MpesaProvider(
        settings(test_consumer_key=f"key-{uuid.uuid4().hex}"), redis, "https://gw/cb", 2.0
    )
    try:
        with pytest.raises(ProviderMisconfigured):
            await adapter.create_payment(request(payment_id=f"pay_{uuid.uuid4().hex[:26]}"))
    finally:
        await adapter.aclose()
    assert push.call_count == 2


async def test_stk_query_request_is_exactly_darajas(provider_http: respx.Router, redis: Redis) -> None:
    daraja = FakeDaraja()
    daraja.install(provider_http)
    adapter = MpesaProvider(settings(), redis, "https://gw.example/cb", 2.0, clock=lambda: FROZEN)
    ref = PaymentRef(
        f"pay_{uuid.uuid4().hex[:26]}", "ws_CO_13012021093521236557", 5_000, "KES", False, FROZEN
    )
    try:
        waiting = await adapter.fetch_payment(ref)
        daraja.outcomes["ws_CO_13012021093521236557"] = "2001"
        failed = await adapter.fetch_payment(ref)
    finally:
        await adapter.aclose()
    assert daraja.queries[-1] == {
        "BusinessShortCode": "174379",
        "Password": SAMPLE_PASSWORD,
        "Timestamp": SAMPLE_TIMESTAMP,
        "CheckoutRequestID": "ws_CO_13012021093521236557",
    }
    assert waiting.status == "requires_action"
    assert (failed.status, failed.failure_code) == ("failed", "incorrect_pin")


def test_callbacks_need_the_path_token(redis: Redis) -> None:
    adapter = MpesaProvider(settings(), redis, "https://gw.example/cb", 2.0)
    content = stk_callback("ws_CO_1", "1-2-3", 1032)
    for headers in ({}, {CALLBACK_TOKEN_HEADER: MPESA_CALLBACK_TOKEN[:-1]}, {CALLBACK_TOKEN_HEADER: ""}):
        with pytest.raises(WebhookVerificationError):
            adapter.verify_webhook(headers, content)
    [event] = adapter.verify_webhook({CALLBACK_TOKEN_HEADER: MPESA_CALLBACK_TOKEN}, content)
    assert event.result is not None
    assert (event.event_id, event.result.failure_code) == ("stk:ws_CO_1:1032", "customer_canceled")


# --- through the gateway ---------------------------------------------------------------------------------


async def test_create_sends_the_exact_push_and_asks_for_the_pin(
    client: httpx.AsyncClient, merchant: Merchant, daraja: FakeDaraja, frozen: None
) -> None:
    r = await create(client, merchant, body())
    assert r.status_code == 201, r.text
    p = r.json()
    assert daraja.pushes[-1] == {
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
    assert p["status"] == "requires_action"
    assert p["provider_reference"].startswith("ws_CO_")
    assert p["next_action"] == {
        "type": "mobile_money_prompt",
        "mobile_money_prompt": {
            "phone": PHONE,
            "message": f"Enter your M-Pesa PIN on the prompt sent to {PHONE} to pay KES 50.",
        },
    }


@pytest.mark.parametrize(
    ("phone", "why"),
    [
        ("+255712345678", "Tanzanian"),
        ("+256772123456", "Ugandan"),
        ("+254201234567", "a Nairobi landline"),
        (None, "no phone"),
    ],
)
async def test_numbers_mpesa_cannot_take_are_422_invalid_phone(
    client: httpx.AsyncClient,
    gateway: Gateway,
    merchant: Merchant,
    daraja: FakeDaraja,
    phone: str | None,
    why: str,
) -> None:
    payload = body(customer={"phone": phone} if phone else {"name": "Wanjiku"})
    r = await create(client, merchant, payload)
    assert r.status_code == 422, why
    problem = r.json()
    assert problem["code"] == "invalid_phone"
    assert "+2547XXXXXXXX" in problem["detail"]
    assert problem["errors"][0]["loc"] == ["body", "customer", "phone"]
    assert daraja.pushes == []
    assert await gateway.scalar("SELECT count(*) FROM payments WHERE merchant_id = :m", m=merchant.id) == 0


async def test_cents_and_other_currencies_are_refused_before_anything_is_sent(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, daraja: FakeDaraja
) -> None:
    r = await create(client, merchant, body(amount=5_050))
    assert r.status_code == 422
    assert r.json()["code"] == "validation_error"
    assert r.json()["errors"][0]["type"] == "amount_not_supported"
    assert "KES 1.00" in r.json()["detail"]
    assert "KES 50.50" in r.json()["detail"]
    r = await create(client, merchant, body(currency="UGX"))
    assert (r.status_code, r.json()["code"]) == (422, "currency_not_supported")
    assert r.json()["supported"] == ["KES"]
    assert daraja.pushes == []
    assert await gateway.scalar("SELECT count(*) FROM payments WHERE merchant_id = :m", m=merchant.id) == 0


async def test_amounts_above_darajas_maximum_are_declined(
    client: httpx.AsyncClient, merchant: Merchant, daraja: FakeDaraja
) -> None:
    r = await create(client, merchant, body(amount=250_001 * 100))
    assert r.status_code == 402
    assert r.json()["code"] == "amount_too_large"
    assert daraja.pushes == []


async def test_concurrent_creations_fetch_the_token_once(
    client: httpx.AsyncClient,
    gateway: Gateway,
    merchant: Merchant,
    daraja: FakeDaraja,
    provider_http: respx.Router,
) -> None:
    await fresh_tokens(gateway.ctx.redis)
    responses = await asyncio.gather(*(create(client, merchant, body()) for _ in range(10)))
    assert [r.status_code for r in responses] == [201] * 10
    assert len({r.json()["provider_reference"] for r in responses}) == 10
    assert provider_http.routes["mpesa_oauth"].call_count == 1
    assert len({c.request.headers["Authorization"] for c in provider_http.routes["mpesa_push"].calls}) == 1


async def test_a_callback_with_a_wrong_path_token_is_rejected_and_changes_nothing(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, daraja: FakeDaraja
) -> None:
    p = (await create(client, merchant, body())).json()
    checkout = p["provider_reference"]
    daraja.pay(p)  # even a callback telling the truth is refused at the wrong address
    content = stk_callback(
        checkout, daraja.merchant_request_of[checkout], 0, amount=5_000, mpesa_receipt=receipt()
    )
    queries = gateway.calls("mpesa.fetch_payment")
    for token in ("mpesa-cb-guessed-0000000000000000", MPESA_CALLBACK_TOKEN[:-1] + "X"):
        r = await callback(client, content, token)
        assert r.status_code == 401
        assert r.json()["code"] == "webhook_signature_invalid"
        assert MPESA_CALLBACK_TOKEN not in r.text
    # No token at all: the plain webhook address.
    r = await client.post("/v1/webhooks/mpesa", content=content, headers={"content-type": "application/json"})
    assert r.status_code == 401
    # The token cannot be smuggled in as a header either (the router drops the pseudo-header).
    r = await client.post(
        "/v1/webhooks/mpesa/not-the-token-at-all-000000",
        content=content,
        headers=callback_headers(MPESA_CALLBACK_TOKEN),
    )
    assert r.status_code == 401
    # A refused callback is refused before it is stored, so no work is left behind it to wait for.
    stored = "SELECT count(*) FROM inbound_webhooks WHERE payload::text LIKE :c"
    assert await gateway.scalar(stored, c=f"%{checkout}%") == 0
    assert gateway.calls("mpesa.fetch_payment") == queries
    after = await get(client, merchant, f"/v1/payments/{p['id']}")
    assert after["status"] == "requires_action"
    assert await trail(client, merchant, p["id"]) == ["payment.created", "payment.requires_action"]
    # The same callback at the right address is taken and applied: only the address was wrong.
    assert (await callback(client, content)).json() == ACK

    async def applied() -> bool:
        return await inbox_outcome(gateway, checkout) == "processed"

    await wait_for(applied)
    assert await gateway.scalar(stored, c=f"%{checkout}%") == 1
    assert gateway.calls("mpesa.fetch_payment") == queries + 1
    assert await trail(client, merchant, p["id"]) == [
        "payment.created",
        "payment.requires_action",
        "payment.succeeded",
    ]


async def test_a_success_callback_that_stk_query_denies_is_not_applied(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, daraja: FakeDaraja
) -> None:
    p = (await create(client, merchant, body())).json()
    checkout = p["provider_reference"]
    daraja.outcomes[checkout] = "1032"  # what really happened: the customer canceled
    content = stk_callback(
        checkout, daraja.merchant_request_of[checkout], 0, amount=5_000, mpesa_receipt=receipt()
    )
    r = await callback(client, content)
    assert (r.status_code, r.json()) == (200, ACK)

    async def settled() -> bool:
        return bool((await get(client, merchant, f"/v1/payments/{p['id']}"))["status"] != "requires_action")

    await wait_for(settled)
    after = await get(client, merchant, f"/v1/payments/{p['id']}")
    assert (after["status"], after["failure_code"]) == ("failed", "customer_canceled")
    assert "payment.succeeded" not in await trail(client, merchant, p["id"])
    assert daraja.queries[-1]["CheckoutRequestID"] == checkout
    # And no receipt kept for a payment M-Pesa did not confirm.
    assert after["payment_method_details"] is None
    assert await gateway.scalar("SELECT provider_receipt FROM payments WHERE id = :id", id=p["id"]) is None


async def test_a_success_callback_while_stk_query_still_waits_changes_nothing(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, daraja: FakeDaraja
) -> None:
    p = (await create(client, merchant, body())).json()
    checkout = p["provider_reference"]
    content = stk_callback(
        checkout, daraja.merchant_request_of[checkout], 0, amount=5_000, mpesa_receipt=receipt()
    )
    assert (await callback(client, content)).status_code == 200

    async def processed() -> bool:
        return await inbox_outcome(gateway, checkout) == "no_change"

    await wait_for(processed)
    after = await get(client, merchant, f"/v1/payments/{p['id']}")
    assert after["status"] == "requires_action"
    assert after["next_action"] == p["next_action"]  # the prompt is still what the customer must answer


async def test_result_code_1032_ends_failed_with_customer_canceled(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, daraja: FakeDaraja
) -> None:
    p = (await create(client, merchant, body())).json()
    checkout = p["provider_reference"]
    daraja.pay(p, "1032")
    # docs/providers/mpesa.md's failure callback, for this payment.
    content = orjson.dumps(
        {
            "Body": {
                "stkCallback": {
                    "MerchantRequestID": daraja.merchant_request_of[checkout],
                    "CheckoutRequestID": checkout,
                    "ResultCode": 1032,
                    "ResultDesc": "Request cancelled by user",
                }
            }
        }
    )
    r = await callback(client, content)
    assert (r.status_code, r.json()) == (200, ACK)

    async def failed() -> bool:
        return bool((await get(client, merchant, f"/v1/payments/{p['id']}"))["status"] == "failed")

    await wait_for(failed)
    after = await get(client, merchant, f"/v1/payments/{p['id']}")
    assert after["failure_code"] == "customer_canceled"
    assert "Request cancelled by user" in after["failure_message"]
    assert after["next_action"] is None
    events = await trail(client, merchant, p["id"])
    assert events == ["payment.created", "payment.requires_action", "payment.failed"]
    assert await inbox_outcome(gateway, checkout) == "processed"
    # A repeat of the callback is acknowledged and dropped as a duplicate before the answer (nothing
    # is stored, so nothing is left to process): the one row, processed once, and the same trail.
    assert (await callback(client, content)).json() == ACK
    assert (
        await gateway.scalar(
            "SELECT count(*) FROM inbound_webhooks WHERE payload::text LIKE :c", c=f"%{checkout}%"
        )
        == 1
    )
    assert await inbox_outcome(gateway, checkout) == "processed"
    assert await trail(client, merchant, p["id"]) == events


async def test_the_receipt_is_kept_and_the_reversal_is_exactly_darajas(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, daraja: FakeDaraja
) -> None:
    p, mpesa_receipt = await paid(client, merchant, daraja)
    # Kept on the payment row (durable), and nowhere in Redis any more.
    sql = "SELECT provider_receipt FROM payments WHERE id = :id"
    assert await gateway.scalar(sql, id=p["id"]) == mpesa_receipt
    assert await gateway.ctx.redis.exists(f"mpesa:receipt:{p['provider_reference']}") == 0
    # Redis losing everything it holds changes nothing for the reversal.
    await gateway.ctx.redis.delete(f"mpesa:push:{p['id']}")
    r = await client.post(
        f"/v1/payments/{p['id']}/refunds",
        json={"reason": "requested_by_customer"},
        headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert r.status_code == 201, r.text
    refund = r.json()
    assert refund["status"] == "pending"
    assert daraja.reversal_requests[-1] == {
        "Initiator": MPESA_INITIATOR,
        "SecurityCredential": MPESA_SECURITY_CREDENTIAL,
        "CommandID": "TransactionReversal",
        "TransactionID": mpesa_receipt,
        "Amount": "50",
        "ReceiverParty": "174379",
        "RecieverIdentifierType": "11",
        "ResultURL": f"{client.base_url}/v1/webhooks/mpesa/{MPESA_CALLBACK_TOKEN}",
        "QueueTimeOutURL": f"{client.base_url}/v1/webhooks/mpesa/{MPESA_CALLBACK_TOKEN}",
        "Remarks": f"Refund {refund['id']}",
        "Occasion": refund["id"],
    }
    conversation, originator = daraja.reversals[p["id"]]
    assert refund["provider_reference"] == conversation
    r = await callback(client, reversal_result(conversation, originator, mpesa_receipt, 5_000))
    assert (r.status_code, r.json()) == (200, ACK)

    async def refunded() -> bool:
        return bool((await get(client, merchant, f"/v1/payments/{p['id']}"))["status"] == "refunded")

    await wait_for(refunded)
    assert (await get(client, merchant, f"/v1/refunds/{refund['id']}"))["status"] == "succeeded"


async def test_a_refused_reversal_fails_the_refund(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, daraja: FakeDaraja
) -> None:
    p, mpesa_receipt = await paid(client, merchant, daraja)
    r = await client.post(
        f"/v1/payments/{p['id']}/refunds",
        json={},
        headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())},
    )
    refund = r.json()
    conversation, originator = daraja.reversals[p["id"]]
    content = reversal_result(conversation, originator, mpesa_receipt, 5_000, code="R000001")
    assert (await callback(client, content)).status_code == 200

    async def failed() -> bool:
        return bool((await get(client, merchant, f"/v1/refunds/{refund['id']}"))["status"] == "failed")

    await wait_for(failed)
    assert (await get(client, merchant, f"/v1/refunds/{refund['id']}"))["failure_code"] == "already_reversed"
    assert (await get(client, merchant, f"/v1/payments/{p['id']}"))["status"] == "succeeded"


async def test_a_reversal_daraja_refuses_fails_the_refund_at_once(
    client: httpx.AsyncClient, merchant: Merchant, daraja: FakeDaraja, provider_http: respx.Router
) -> None:
    p, _ = await paid(client, merchant, daraja)
    provider_http.routes["mpesa_reversal"].mock(
        return_value=daraja_error(400, "400.002.02", "Bad Request - Invalid TransactionID")
    )
    r = await client.post(
        f"/v1/payments/{p['id']}/refunds",
        json={},
        headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert r.status_code == 201, r.text
    assert (r.json()["status"], r.json()["failure_code"]) == ("failed", "refund_declined")
    assert "400.002.02" in r.json()["failure_message"]
    assert (await get(client, merchant, f"/v1/payments/{p['id']}"))["amount_refunded"] == 0


async def test_a_reversal_without_an_answer_is_never_sent_twice(
    client: httpx.AsyncClient, merchant: Merchant, daraja: FakeDaraja, provider_http: respx.Router
) -> None:
    p, _ = await paid(client, merchant, daraja)
    provider_http.routes["mpesa_reversal"].mock(side_effect=httpx.ConnectError("connection reset"))
    key = str(uuid.uuid4())
    r = await client.post(
        f"/v1/payments/{p['id']}/refunds", json={}, headers={**merchant.auth, "Idempotency-Key": key}
    )
    assert (r.status_code, r.json()["code"]) == (502, "provider_error")
    retried = await client.post(
        f"/v1/payments/{p['id']}/refunds", json={}, headers={**merchant.auth, "Idempotency-Key": key}
    )
    assert retried.status_code == 201, retried.text
    assert retried.json()["status"] == "pending"  # its fate is unknown: held, for an operator to check
    assert provider_http.routes["mpesa_reversal"].call_count == 1


def with_mpesa(gateway: Gateway, **over: Any) -> contextlib.AbstractAsyncContextManager[httpx.AsyncClient]:
    """A second gateway app, built by create_app, whose M-Pesa settings differ as a test needs."""
    return configured_app(gateway.ctx.settings.model_copy(update={"mpesa": settings(**over)}))


async def test_without_an_initiator_refunds_are_422_refund_not_supported(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, daraja: FakeDaraja
) -> None:
    p, _ = await paid(client, merchant, daraja)
    async with with_mpesa(gateway, test_initiator_name=None, test_security_credential=None) as bare:
        r = await bare.post(
            f"/v1/payments/{p['id']}/refunds",
            json={},
            headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())},
        )
    assert (r.status_code, r.json()["code"]) == (422, "refund_not_supported")
    assert daraja.reversal_requests == []
    assert await gateway.scalar("SELECT count(*) FROM refunds WHERE payment_id = :p", p=p["id"]) == 0


async def test_partial_reversals_when_turned_on(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, daraja: FakeDaraja
) -> None:
    p, mpesa_receipt = await paid(client, merchant, daraja)
    refused = await client.post(
        f"/v1/payments/{p['id']}/refunds",
        json={"amount": 1_000},
        headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert (refused.status_code, refused.json()["code"]) == (422, "partial_refund_not_supported")
    assert daraja.reversal_requests == []
    async with with_mpesa(gateway, partial_reversals=True) as parts:
        r = await parts.post(
            f"/v1/payments/{p['id']}/refunds",
            json={"amount": 1_000},
            headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())},
        )
        assert r.status_code == 201, r.text
        refund = r.json()
        assert len(daraja.reversal_requests) == 1
        assert daraja.reversal_requests[-1]["Amount"] == "10"
        assert daraja.reversal_requests[-1]["TransactionID"] == mpesa_receipt
        conversation, originator = daraja.reversals[p["id"]]
        assert (
            await callback(parts, reversal_result(conversation, originator, mpesa_receipt, 1_000))
        ).json() == ACK

        async def refunded() -> bool:
            return bool((await get(client, merchant, f"/v1/refunds/{refund['id']}"))["status"] == "succeeded")

        await wait_for(refunded)
    after = await get(client, merchant, f"/v1/payments/{p['id']}")
    assert (after["status"], after["amount_refunded"]) == ("partially_refunded", 1_000)


async def test_a_retry_after_a_timeout_reuses_the_late_push(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, daraja: FakeDaraja
) -> None:
    daraja.push_mode = "timeout"  # Daraja answers, but after the gateway stopped waiting
    daraja.late_answer = asyncio.Event()
    key = str(uuid.uuid4())
    r = await create(client, merchant, body(), key)
    assert (r.status_code, r.json()["code"]) == (504, "provider_timeout")
    assert daraja.reference_of == {}  # not answered yet
    daraja.late_answer.set()
    retried = await create(client, merchant, body(), key)
    assert retried.status_code == 201, retried.text
    p = retried.json()
    assert p["status"] == "requires_action"
    assert p["id"] == r.json()["payment"]
    assert len(daraja.pushes) == 1  # one prompt on the customer's phone, not two
    assert p["provider_reference"] in daraja.reference_of
    again = await create(client, merchant, body(), key)
    assert again.json()["provider_reference"] == p["provider_reference"]
    assert len(daraja.pushes) == 1


async def test_a_callback_for_a_late_push_still_finds_its_payment(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, daraja: FakeDaraja
) -> None:
    daraja.push_mode = "timeout"
    daraja.late_answer = asyncio.Event()
    r = await create(client, merchant, body(reference="LATE" + uuid.uuid4().hex[:8]))
    assert r.status_code == 504
    daraja.late_answer.set()  # Daraja's answer comes after the gateway gave up
    payment_id = r.json()["payment"]
    reference = (await get(client, merchant, f"/v1/payments/{payment_id}"))["reference"]

    async def answered() -> bool:
        return reference in daraja.reference_of.values()

    await wait_for(answered)
    checkout = next(c for c, ref in daraja.reference_of.items() if ref == reference)
    daraja.outcomes[checkout] = "0"
    mpesa_receipt = receipt()
    content = stk_callback(
        checkout, daraja.merchant_request_of[checkout], 0, amount=5_000, mpesa_receipt=mpesa_receipt
    )
    assert (await callback(client, content)).json() == ACK

    async def succeeded() -> bool:
        return bool((await get(client, merchant, f"/v1/payments/{payment_id}"))["status"] == "succeeded")

    await wait_for(succeeded)
    p = await get(client, merchant, f"/v1/payments/{payment_id}")
    assert p["provider_reference"] == checkout
    assert p["payment_method_details"] == {
        "type": "mobile_money",
        "operator": "mpesa",
        "phone_last4": "4149",
        "receipt": mpesa_receipt,
    }
    sql = "SELECT provider_receipt FROM payments WHERE id = :id"
    assert await gateway.scalar(sql, id=payment_id) == mpesa_receipt
    assert len(daraja.pushes) == 1


async def test_a_busy_daraja_leaves_the_payment_pending_with_a_502(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    FakeDaraja().install(provider_http)
    provider_http.routes["mpesa_push"].mock(
        return_value=daraja_error(500, "500.003.02", "Spike Arrest Violation")
    )
    r = await create(client, merchant, body())
    assert (r.status_code, r.json()["code"]) == (502, "provider_error")
    assert (await get(client, merchant, f"/v1/payments/{r.json()['payment']}"))["status"] == "pending"


async def test_wrong_credentials_are_a_loud_502(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    FakeDaraja().install(provider_http)
    provider_http.routes["mpesa_push"].mock(
        return_value=daraja_error(500, "500.001.1001", "Wrong credentials")
    )
    r = await create(client, merchant, body())
    assert (r.status_code, r.json()["code"]) == (502, "provider_misconfigured")


async def test_sync_asks_stk_query_and_applies_its_answer(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, daraja: FakeDaraja
) -> None:
    p = (await create(client, merchant, body())).json()
    waiting = await client.post(f"/v1/payments/{p['id']}/sync", headers=merchant.auth)
    assert waiting.status_code == 200
    assert waiting.json()["status"] == "requires_action"
    assert waiting.json()["next_action"] == p["next_action"]
    daraja.outcomes[p["provider_reference"]] = "1"
    synced = await client.post(f"/v1/payments/{p['id']}/sync", headers=merchant.auth)
    assert (synced.json()["status"], synced.json()["failure_code"]) == ("failed", "insufficient_funds")


async def test_unknown_callbacks_are_acknowledged_and_ignored(
    client: httpx.AsyncClient, gateway: Gateway, daraja: FakeDaraja
) -> None:
    marker = uuid.uuid4().hex
    # A queue-timeout notice, say: its shape is not documented.
    content = orjson.dumps({"QueueTimeoutNotice": {"Reference": marker}})
    r = await callback(client, content)
    assert (r.status_code, r.json()) == (200, ACK)

    async def ignored() -> bool:
        return await inbox_outcome(gateway, marker) == "ignored"

    await wait_for(ignored)
    r = await callback(client, b"not json")
    assert (r.status_code, r.json()["code"]) == (400, "webhook_malformed")


def test_callback_for_a_push_we_never_made_is_named_by_its_checkout() -> None:
    content = stk_callback("ws_CO_ghost", merchant_request_id(), 0, amount=5_000, mpesa_receipt="NLJ7RT61SV")
    event, cb = callbacks.interpret(json.loads(content))
    assert (event.provider_reference, event.payment_id) == ("ws_CO_ghost", None)
    assert cb is not None


# --- how it was paid (payment_method_details, provider_receipt) ---------------------------------------


async def test_a_later_status_query_keeps_the_receipt_only_the_callback_told(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, daraja: FakeDaraja
) -> None:
    p, mpesa_receipt = await paid(client, merchant, daraja)
    details = {"type": "mobile_money", "operator": "mpesa", "phone_last4": "4149", "receipt": mpesa_receipt}
    assert (await get(client, merchant, f"/v1/payments/{p['id']}"))["payment_method_details"] == details
    queries = len(daraja.queries)
    # STK Query says paid again, and names no receipt: what the callback told stays.
    r = await client.post(f"/v1/payments/{p['id']}/sync", headers=merchant.auth)
    assert r.status_code == 200, r.text
    assert len(daraja.queries) == queries + 1
    assert r.json()["payment_method_details"] == details
    events = (await get(client, merchant, f"/v1/payments/{p['id']}/events?limit=100"))["data"]
    assert [e["type"] for e in events] == ["payment.succeeded", "payment.requires_action", "payment.created"]
    assert events[0]["data"]["object"]["payment_method_details"] == details


async def test_without_its_callback_a_payment_has_no_receipt_and_its_reversal_says_so(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, daraja: FakeDaraja
) -> None:
    p = (await create(client, merchant, body())).json()
    daraja.outcomes[p["provider_reference"]] = "0"  # paid; the callback never arrives
    r = await client.post(f"/v1/payments/{p['id']}/sync", headers=merchant.auth)
    assert (r.status_code, r.json()["status"]) == (200, "succeeded"), r.text
    # The number is the one prompted; the receipt is unknown (STK Query does not return it).
    assert r.json()["payment_method_details"] == {
        "type": "mobile_money",
        "operator": "mpesa",
        "phone_last4": "4149",
        "receipt": None,
    }
    assert await gateway.scalar("SELECT provider_receipt FROM payments WHERE id = :id", id=p["id"]) is None
    r = await client.post(
        f"/v1/payments/{p['id']}/refunds",
        json={},
        headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert r.status_code == 201, r.text
    assert (r.json()["status"], r.json()["failure_code"]) == ("failed", "receipt_unknown")
    assert daraja.reversal_requests == []
