"""Airtel Money Collections: the exact requests the gateway sends and how it reads every answer.

Provider HTTP is answered by respx (tests/drivers/airtel.py keeps pushes by transaction id, as Airtel
does) with bodies shaped as docs/providers/airtel.md shows them; the gateway itself runs for real, on
real PostgreSQL and Redis. The session gateway has callback authentication on (a hash key).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
import respx
from pydantic import SecretStr

from drivers.airtel import (
    ACCESS_TOKEN,
    PAYER_REFUSED,
    PAYER_WAITING,
    FakeAirtel,
    Kept,
    callback,
    callback_hash,
    payment_body,
    token_body,
)
from gateway.providers.airtel import transformers as tf
from gateway.providers.airtel.adapter import SENT_KEY_PREFIX, AirtelProvider, NoTransactionYet
from gateway.providers.airtel.settings import TOKEN_KEY_PREFIX, AirtelSettings
from gateway.providers.base import CALLBACK_TOKEN_HEADER, PaymentRef, WebhookVerificationError
from gateway.providers.details import MobileMoney
from support import (
    AIRTEL_API,
    AIRTEL_CALLBACK_HASH_KEY,
    AIRTEL_CALLBACK_TOKEN,
    AIRTEL_CLIENT_ID,
    AIRTEL_CLIENT_SECRET,
    Gateway,
    Merchant,
    wait_for,
)

API = AIRTEL_API
PUSH = f"{API}/merchant/v1/payments/"
ENQUIRY = f"{API}/standard/v1/payments"
HOOK = f"/v1/webhooks/airtel/{AIRTEL_CALLBACK_TOKEN}"


def body(phone: str | None = PAYER_WAITING, **over: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"amount": 5_000, "currency": "UGX", "provider": "airtel", **over}
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


async def trail(client: httpx.AsyncClient, merchant: Merchant, payment_id: str) -> list[str]:
    data = (await get(client, merchant, f"/v1/payments/{payment_id}/events?limit=100"))["data"]
    return [e["type"] for e in reversed(data)]


async def forget_tokens(gateway: Gateway) -> None:
    keys = [k async for k in gateway.ctx.redis.scan_iter(match=TOKEN_KEY_PREFIX + "*")]
    if keys:
        await gateway.ctx.redis.delete(*keys)


@pytest.fixture
def airtel(provider_http: respx.Router) -> tuple[FakeAirtel, dict[str, respx.Route]]:
    fake = FakeAirtel()
    return fake, fake.install(provider_http)


def settings(**over: Any) -> AirtelSettings:
    values: dict[str, Any] = {
        "test": {
            "client_id": AIRTEL_CLIENT_ID,
            "client_secret": AIRTEL_CLIENT_SECRET,
            "base_url": API,
            "country": "UG",
        },
        "callback_token": SecretStr(AIRTEL_CALLBACK_TOKEN),
        **over,
    }
    return AirtelSettings.model_validate(values)


# --- creating a payment: token, USSD push ------------------------------------------------------------


async def test_create_sends_the_exact_airtel_requests(
    client: httpx.AsyncClient,
    gateway: Gateway,
    merchant: Merchant,
    airtel: tuple[FakeAirtel, dict[str, respx.Route]],
) -> None:
    fake, routes = airtel
    await forget_tokens(gateway)
    r = await create(client, merchant, body(description="Order 1042", reference="order-1042"))
    assert r.status_code == 201, r.text
    p = r.json()

    token = routes["token"].calls.last.request
    assert (token.method, str(token.url)) == ("POST", f"{API}/auth/oauth2/token")
    assert json.loads(token.content) == {
        "client_id": AIRTEL_CLIENT_ID,
        "client_secret": AIRTEL_CLIENT_SECRET,
        "grant_type": "client_credentials",
    }
    assert "authorization" not in token.headers

    assert routes["payments"].call_count == 1
    sent = routes["payments"].calls.last.request
    assert (sent.method, str(sent.url)) == ("POST", PUSH)
    assert sent.headers["authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert (sent.headers["x-country"], sent.headers["x-currency"]) == ("UG", "UGX")
    assert sent.headers["content-type"] == "application/json"
    # The msisdn without the country code; the amount a JSON number in shillings; our id as the id.
    assert sent.content == orjson.dumps(
        {
            "reference": "order-1042",
            "subscriber": {"country": "UG", "currency": "UGX", "msisdn": "752000001"},
            "transaction": {"amount": 5000, "country": "UG", "currency": "UGX", "id": p["id"]},
        }
    )
    assert list(fake.pushes) == [p["id"]]
    # Nothing asked right after the push: Airtel wants three minutes before an enquiry.
    assert routes["enquiry"].call_count == 0

    assert (p["status"], p["provider_reference"]) == ("requires_action", p["id"])
    assert p["next_action"] == {
        "type": "mobile_money_prompt",
        "mobile_money_prompt": {
            "phone": PAYER_WAITING,
            "message": "Approve the Airtel Money request for UGX 5000 on +256752000001"
            " with the Airtel Money PIN.",
        },
    }
    # The token is shared through Redis: the next payment fetches none.
    assert (await create(client, merchant, body())).status_code == 201
    assert routes["token"].call_count == 1


@pytest.mark.parametrize(
    ("amount", "currency", "sent"),
    [(5_000, "UGX", b"5000"), (1_050, "KES", b"10.50"), (10_000, "KES", b"100"), (5, "CDF", b"0.05")],
)
def test_amounts_go_out_as_exact_major_unit_numbers(amount: int, currency: str, sent: bytes) -> None:
    assert orjson.dumps({"a": tf.amount_number(amount, currency)}) == b'{"a":' + sent + b"}"


async def test_a_currency_the_accounts_country_does_not_hold_fails_and_sends_nothing(
    client: httpx.AsyncClient, merchant: Merchant, airtel: tuple[FakeAirtel, dict[str, respx.Route]]
) -> None:
    _, routes = airtel
    r = await create(client, merchant, body(currency="KES", amount=10_000))
    assert r.status_code == 402, r.text
    assert r.json()["code"] == "currency_not_supported"
    assert routes["payments"].call_count == 0


async def test_a_payer_airtel_refuses_at_once_is_a_402(
    client: httpx.AsyncClient, merchant: Merchant, airtel: tuple[FakeAirtel, dict[str, respx.Route]]
) -> None:
    r = await create(client, merchant, body(phone=PAYER_REFUSED))
    assert r.status_code == 402, r.text
    assert r.json()["code"] == "insufficient_funds"
    assert r.json()["payment"]["status"] == "failed"


@pytest.mark.parametrize("phone", [None, "+254712345678"])
async def test_no_phone_or_another_countrys_number_is_422_and_nothing_is_sent(
    client: httpx.AsyncClient,
    gateway: Gateway,
    merchant: Merchant,
    airtel: tuple[FakeAirtel, dict[str, respx.Route]],
    phone: str | None,
) -> None:
    _, routes = airtel
    before = await gateway.scalar("SELECT count(*) FROM payments")
    r = await create(client, merchant, body(phone=phone))
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "invalid_phone"
    assert await gateway.scalar("SELECT count(*) FROM payments") == before
    assert routes["payments"].call_count == 0
    assert routes["token"].call_count == 0


@pytest.mark.parametrize(
    ("phone", "country", "problem"),
    [
        ("+256752123456", "UG", None),
        ("+254733123456", "KE", None),
        ("+254733123456", "UG", "Airtel Money (UG) takes only +256 numbers."),
        ("+243990000000", "CD", None),
        (
            None,
            "UG",
            "Airtel Money needs the payer's phone number: set customer.phone (E.164, e.g. +256752123456).",
        ),
    ],
)
def test_phone_problem(phone: str | None, country: str, problem: str | None) -> None:
    assert tf.phone_problem(phone, country) == problem


@pytest.mark.parametrize(
    ("phone", "msisdn"),
    [("+256752123456", "752123456"), ("+254733123456", "733123456"), ("+243990000001", "990000001")],
)
def test_msisdn_is_the_national_number_without_country_code_or_trunk_zero(phone: str, msisdn: str) -> None:
    assert tf.msisdn(phone) == msisdn


async def test_a_create_retried_after_a_timeout_asks_the_enquiry_and_pushes_nothing_new(
    client: httpx.AsyncClient, merchant: Merchant, airtel: tuple[FakeAirtel, dict[str, respx.Route]]
) -> None:
    fake, routes = airtel

    def reached_airtel_but_the_answer_was_lost(request: httpx.Request) -> httpx.Response:
        fake._push(request)
        raise httpx.ReadTimeout("timed out")

    routes["payments"].mock(side_effect=reached_airtel_but_the_answer_was_lost)
    key = str(uuid.uuid4())
    first = await create(client, merchant, body(), key=key)
    assert first.status_code == 504, first.text
    payment_id = first.json()["payment"]["id"]
    again = await create(client, merchant, body(), key=key)
    assert again.status_code == 201, again.text
    assert (again.json()["id"], again.json()["status"]) == (payment_id, "requires_action")
    assert routes["payments"].call_count == 1
    assert str(routes["enquiry"].calls.last.request.url) == f"{ENQUIRY}/{payment_id}"
    assert list(fake.pushes) == [payment_id]


async def test_without_the_sent_marker_a_retry_is_refused_as_a_duplicate_and_enquires(
    client: httpx.AsyncClient,
    gateway: Gateway,
    merchant: Merchant,
    airtel: tuple[FakeAirtel, dict[str, respx.Route]],
) -> None:
    fake, routes = airtel
    calls = 0

    def first_answer_lost(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        answer = fake._push(request)
        if calls == 1:
            raise httpx.ReadTimeout("timed out")
        return answer

    routes["payments"].mock(side_effect=first_answer_lost)
    key = str(uuid.uuid4())
    first = await create(client, merchant, body(), key=key)
    payment_id = first.json()["payment"]["id"]
    await gateway.ctx.redis.delete(SENT_KEY_PREFIX + payment_id)  # e.g. Redis was flushed
    again = await create(client, merchant, body(), key=key)
    assert (again.status_code, again.json()["status"]) == (201, "requires_action")
    assert routes["payments"].call_count == 2
    second = routes["payments"].calls.last.response
    assert second.json()["status"]["result_code"] == "ESB000041"
    assert list(fake.pushes) == [payment_id]
    assert str(routes["enquiry"].calls.last.request.url) == f"{ENQUIRY}/{payment_id}"


@pytest.mark.parametrize(
    ("status", "answer", "error"), [(500, 504, "provider_timeout"), (503, 502, "provider_error")]
)
async def test_an_ambiguous_500_is_a_timeout_and_a_503_an_outage(
    client: httpx.AsyncClient,
    merchant: Merchant,
    airtel: tuple[FakeAirtel, dict[str, respx.Route]],
    status: int,
    answer: int,
    error: str,
) -> None:
    _, routes = airtel
    envelope = {
        "code": str(status),
        "message": "Something went wrong",
        "result_code": "ESB000001",
        "success": False,
    }
    routes["payments"].mock(return_value=httpx.Response(status, json={"status": envelope}))
    r = await create(client, merchant, body())
    assert (r.status_code, r.json()["code"]) == (answer, error), r.text
    assert r.json()["payment"]["status"] == "pending"


# --- tokens ------------------------------------------------------------------------------------------


async def test_concurrent_creations_fetch_the_token_once_and_cache_it_short_of_its_180_seconds(
    client: httpx.AsyncClient,
    gateway: Gateway,
    merchant: Merchant,
    airtel: tuple[FakeAirtel, dict[str, respx.Route]],
) -> None:
    _, routes = airtel

    async def slow_token(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.2)
        return httpx.Response(200, json=token_body())

    routes["token"].mock(side_effect=slow_token)
    await forget_tokens(gateway)
    answers = await asyncio.gather(*[create(client, merchant, body()) for _ in range(6)])
    assert [a.status_code for a in answers] == [201] * 6
    assert routes["token"].call_count == 1
    keys = [k async for k in gateway.ctx.redis.scan_iter(match=TOKEN_KEY_PREFIX + "*")]
    assert len(keys) == 1
    ttl = await gateway.ctx.redis.ttl(keys[0])
    assert 140 <= ttl <= 150  # 180 s less a 30 s margin; the secret is not in the key
    assert AIRTEL_CLIENT_SECRET not in keys[0].decode()


async def test_a_token_airtel_no_longer_takes_is_replaced_once(
    client: httpx.AsyncClient,
    gateway: Gateway,
    merchant: Merchant,
    airtel: tuple[FakeAirtel, dict[str, respx.Route]],
) -> None:
    fake, routes = airtel
    await forget_tokens(gateway)
    routes["token"].mock(
        side_effect=[
            httpx.Response(200, json={**token_body(), "access_token": "revoked"}),
            httpx.Response(200, json=token_body()),
        ]
    )

    def checks_the_token(request: httpx.Request) -> httpx.Response:
        if request.headers["authorization"] != f"Bearer {ACCESS_TOKEN}":
            return httpx.Response(401, json={"error": "invalid_token"})
        return fake._push(request)

    routes["payments"].mock(side_effect=checks_the_token)
    r = await create(client, merchant, body())
    assert r.status_code == 201, r.text
    assert routes["token"].call_count == 2
    assert [c.request.headers["authorization"] for c in routes["payments"].calls] == [
        "Bearer revoked",
        f"Bearer {ACCESS_TOKEN}",
    ]


async def test_rejected_client_credentials_are_a_502_and_nothing_is_pushed(
    client: httpx.AsyncClient,
    gateway: Gateway,
    merchant: Merchant,
    airtel: tuple[FakeAirtel, dict[str, respx.Route]],
) -> None:
    _, routes = airtel
    await forget_tokens(gateway)
    routes["token"].respond(
        401, json={"error_description": "Invalid client credentials", "error": "invalid_client"}
    )
    r = await create(client, merchant, body())
    assert r.status_code == 502, r.text
    assert r.json()["code"] == "provider_misconfigured"
    assert routes["payments"].call_count == 0
    await forget_tokens(gateway)


# --- status enquiry ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "ours", "failure"),
    [
        ("TS", "DP00800001001", "succeeded", None),
        ("TF", "DP00800001007", "failed", "insufficient_funds"),
        ("TF", "DP00800001002", "failed", "incorrect_pin"),
        ("TF", "DP00800001024", "failed", "timeout"),
        ("TF", "ESB000011", "failed", "payment_failed"),
        ("TE", None, "failed", "timeout"),
        ("TIP", "DP00800001006", "requires_action", None),
        ("TA", "DP00800001000", "requires_action", None),
    ],
)
def test_enquiry_statuses_map_to_ours(status: str, code: str | None, ours: str, failure: str | None) -> None:
    data = {
        "data": {
            "transaction": {
                "airtel_money_id": "MP210603.1234.L06941",
                "id": "pay_1",
                "message": "m",
                "status": status,
            }
        },
        "status": {
            "code": "200",
            "message": "m",
            "result_code": "ESB000010",
            "response_code": code,
            "success": True,
        },
    }
    result = tf.enquiry_result(data, "pay_1", "+256752123456")
    assert result is not None
    assert (result.status, result.failure_code, result.provider_reference) == (ours, failure, "pay_1")
    if ours == "succeeded":
        assert result.payment_method_details == MobileMoney("airtel", "3456", "MP210603.1234.L06941")
        assert (result.amount, result.currency) == (None, None)  # Airtel names no money


def test_an_unknown_transaction_and_an_unreadable_enquiry() -> None:
    not_found = {"status": {"response_code": "DP00800001025", "result_code": "ESB000045", "success": False}}
    assert tf.enquiry_result(not_found, "pay_1", None) is None
    with pytest.raises(tf.MalformedAnswer):
        tf.enquiry_result({"data": {"transaction": {"id": "pay_1", "status": "WHATEVER"}}}, "pay_1", None)
    with pytest.raises(tf.MalformedAnswer, match="another transaction"):
        tf.enquiry_result({"data": {"transaction": {"id": "pay_2", "status": "TS"}}}, "pay_1", None)


async def test_a_push_airtel_never_received_fails_only_after_the_ttl(
    gateway: Gateway, airtel: tuple[FakeAirtel, dict[str, respx.Route]]
) -> None:
    provider = AirtelProvider(settings(), gateway.ctx.redis, gateway.base_url + "/v1/webhooks/airtel", 2)
    try:
        now = datetime.now(UTC)
        ref = PaymentRef(f"pay_{uuid.uuid4().hex}", None, 5_000, "UGX", False, now)
        with pytest.raises(NoTransactionYet):
            await provider.fetch_payment(ref)
        old = PaymentRef(ref.payment_id, None, 5_000, "UGX", False, now - timedelta(hours=1))
        result = await provider.fetch_payment(old)
        assert (result.status, result.failure_code) == ("failed", "request_not_received")
    finally:
        await provider.aclose()


# --- callbacks ---------------------------------------------------------------------------------------


async def waiting(client: httpx.AsyncClient, merchant: Merchant) -> dict[str, Any]:
    r = await create(client, merchant, body())
    assert r.status_code == 201, r.text
    return dict(r.json())


@pytest.mark.parametrize(
    ("airtel_status", "after"), [("TS", "succeeded"), ("TIP", "requires_action"), ("TF", "failed")]
)
async def test_a_success_callback_is_applied_only_as_the_enquiry_says(
    client: httpx.AsyncClient,
    merchant: Merchant,
    airtel: tuple[FakeAirtel, dict[str, respx.Route]],
    airtel_status: str,
    after: str,
) -> None:
    fake, routes = airtel
    p = await waiting(client, merchant)
    kept = fake.settle(p, airtel_status, "DP00800001007" if airtel_status == "TF" else "DP00800001001")
    said = Kept(kept.body, "TS", "DP00800001001", kept.airtel_money_id)
    headers, content = callback(said)
    r = await client.post(HOOK, content=content, headers=headers)
    assert r.status_code == 200, r.text

    async def asked() -> bool:
        return routes["enquiry"].call_count == 1

    await wait_for(asked)
    await asyncio.sleep(0.2)
    payment = await get(client, merchant, f"/v1/payments/{p['id']}")
    assert payment["status"] == after
    assert str(routes["enquiry"].calls.last.request.url) == f"{ENQUIRY}/{p['id']}"
    assert routes["enquiry"].calls.last.request.headers["x-currency"] == "UGX"
    if after == "succeeded":
        assert payment["payment_method_details"]["receipt"] == kept.airtel_money_id
    if after == "failed":
        assert payment["failure_code"] == "insufficient_funds"
    assert ("payment.succeeded" in await trail(client, merchant, p["id"])) == (after == "succeeded")


@pytest.mark.parametrize("hash_value", [None, "", "wrong-key", "other-transaction"])
async def test_with_a_hash_key_a_callback_with_a_missing_or_wrong_hash_is_401_and_nothing_moves(
    client: httpx.AsyncClient,
    gateway: Gateway,
    merchant: Merchant,
    airtel: tuple[FakeAirtel, dict[str, respx.Route]],
    hash_value: str | None,
) -> None:
    fake, routes = airtel
    p = await waiting(client, merchant)
    payload = fake.settle(p, "TS").callback()
    if hash_value is None:
        del payload["hash"]
    elif hash_value == "wrong-key":
        payload["hash"] = callback_hash(payload["transaction"], "not-the-applications-key")
    elif hash_value == "other-transaction":
        payload["hash"] = callback_hash({**payload["transaction"], "status_code": "TF"})
    else:
        payload["hash"] = hash_value
    before = await gateway.scalar("SELECT count(*) FROM inbound_webhooks WHERE provider = 'airtel'")
    r = await client.post(HOOK, content=orjson.dumps(payload), headers={"content-type": "application/json"})
    assert (r.status_code, r.json()["code"]) == (401, "webhook_signature_invalid")
    assert await gateway.scalar("SELECT count(*) FROM inbound_webhooks WHERE provider = 'airtel'") == before
    assert routes["enquiry"].call_count == 0
    assert (await get(client, merchant, f"/v1/payments/{p['id']}"))["status"] == "requires_action"


def test_the_hash_is_checked_on_the_transaction_object_and_only_when_a_key_is_set() -> None:
    transaction = {"id": "pay_1", "message": "Paid", "status_code": "TS", "airtel_money_id": "MP1"}
    signed = orjson.dumps({"transaction": transaction, "hash": callback_hash(transaction)})
    token = {CALLBACK_TOKEN_HEADER: AIRTEL_CALLBACK_TOKEN}
    keyed = AirtelProvider(settings(callback_hash_key=AIRTEL_CALLBACK_HASH_KEY), None, "http://gw.test", 2)  # type: ignore[arg-type]
    [event] = keyed.verify_webhook(token, signed)
    assert (event.payment_id, event.event_id, event.event_type) == ("pay_1", "pay_1:TS", "payment.ts")
    unsigned = orjson.dumps({"transaction": transaction})
    with pytest.raises(WebhookVerificationError):
        keyed.verify_webhook(token, unsigned)
    # Without a key (callback authentication off at Airtel) the path token alone lets it in, as a hint.
    plain = AirtelProvider(settings(), None, "http://gw.test", 2)  # type: ignore[arg-type]
    [event] = plain.verify_webhook(token, unsigned)
    assert event.result is not None
    assert event.result.status == "succeeded"
    assert plain.capabilities.query_before_acting
    assert keyed.capabilities.query_before_acting
    with pytest.raises(WebhookVerificationError):
        plain.verify_webhook({CALLBACK_TOKEN_HEADER: "wrong" * 6}, unsigned)


def test_capabilities() -> None:
    provider = AirtelProvider(settings(), None, "http://gw.test", 2)  # type: ignore[arg-type]
    caps = provider.capabilities
    assert (caps.cancel, caps.partial_refunds, caps.idempotent_refunds, caps.refunds) == (
        False,
        False,
        False,
        True,
    )
    assert {"UGX", "KES", "TZS", "ZMW", "MWK", "RWF", "CDF", "USD", "NGN"} <= caps.currencies
    assert caps.reconcile_after_seconds == 180


# --- refunds -----------------------------------------------------------------------------------------


async def succeeded_payment(
    client: httpx.AsyncClient, merchant: Merchant, fake: FakeAirtel
) -> tuple[dict[str, Any], Kept]:
    p = await waiting(client, merchant)
    kept = fake.settle(p, "TS")
    synced = await client.post(f"/v1/payments/{p['id']}/sync", headers=merchant.auth)
    assert synced.json()["status"] == "succeeded", synced.text
    return dict(synced.json()), kept


async def test_a_refund_names_the_airtel_money_id_and_returns_the_whole_payment(
    client: httpx.AsyncClient, merchant: Merchant, airtel: tuple[FakeAirtel, dict[str, respx.Route]]
) -> None:
    fake, routes = airtel
    p, kept = await succeeded_payment(client, merchant, fake)
    r = await client.post(
        f"/v1/payments/{p['id']}/refunds",
        json={},
        headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert r.status_code == 201, r.text
    assert (r.json()["status"], r.json()["amount"]) == ("succeeded", 5_000)
    sent = routes["refund"].calls.last.request
    assert (sent.method, str(sent.url)) == ("POST", f"{API}/standard/v1/payments/refund")
    assert (sent.headers["x-country"], sent.headers["x-currency"]) == ("UG", "UGX")
    assert json.loads(sent.content) == {"transaction": {"airtel_money_id": kept.airtel_money_id}}
    after = await get(client, merchant, f"/v1/payments/{p['id']}")
    assert (after["status"], after["amount_refunded"]) == ("refunded", 5_000)


async def test_a_refund_airtel_refuses_fails_and_one_it_did_not_answer_stays_pending_unsent(
    client: httpx.AsyncClient,
    gateway: Gateway,
    merchant: Merchant,
    airtel: tuple[FakeAirtel, dict[str, respx.Route]],
) -> None:
    fake, routes = airtel
    p, _ = await succeeded_payment(client, merchant, fake)
    refused = {
        "status": {
            "code": "200",
            "message": "Refund failed",
            "response_code": "DP00800001008",
            "result_code": "ESB000011",
            "success": False,
        }
    }
    routes["refund"].mock(return_value=httpx.Response(200, json=refused))
    r = await client.post(
        f"/v1/payments/{p['id']}/refunds",
        json={},
        headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert r.status_code == 201, r.text
    refund = r.json()
    assert (refund["status"], refund["failure_code"]) == ("failed", "refund_declined")
    assert refund["failure_message"] == "Airtel Money could not return the money to the customer."

    routes["refund"].mock(
        return_value=httpx.Response(500, json={"status": {"result_code": "ESB000001", "success": False}})
    )
    r = await client.post(
        f"/v1/payments/{p['id']}/refunds",
        json={},
        headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "pending"
    assert routes["refund"].call_count == 2
    # Its amount stays held: a second refund of the payment is refused, and nothing is re-sent.
    again = await client.post(
        f"/v1/payments/{p['id']}/refunds",
        json={},
        headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert (again.status_code, again.json()["code"]) == (422, "refund_exceeds_remaining")
    assert routes["refund"].call_count == 2
    assert (await get(client, merchant, f"/v1/refunds/{r.json()['id']}"))["status"] == "pending"


def test_the_driver_sends_callbacks_as_airtel_documents_them() -> None:
    kept = Kept(payment_body({"id": "pay_1", "amount": 5000, "currency": "UGX"}), "TS")
    headers, content = callback(kept)
    data = json.loads(content)
    assert list(data) == ["transaction", "hash"]
    assert list(data["transaction"]) == ["id", "message", "status_code", "airtel_money_id"]
    assert headers[CALLBACK_TOKEN_HEADER] == AIRTEL_CALLBACK_TOKEN
