"""Wave Checkout: the exact requests the gateway sends and how it reads every answer.

Provider HTTP is answered by respx with bodies shaped as docs/providers/wave.md shows them; the gateway
itself runs for real. Expected request bodies are written out literally (the amount as Wave's string),
so a change in what we send fails here. Signatures are checked against docs/providers/wave.md's vector.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import respx
from pydantic import SecretStr

from drivers.wave import RETURN_URL, event, session, session_id, sign
from gateway.providers.base import (
    Customer,
    PaymentRef,
    PaymentRequest,
    ProviderMisconfigured,
    ProviderUnavailable,
    RefundRef,
    WebhookPayloadError,
    WebhookVerificationError,
)
from gateway.providers.wave import transformers as tf
from gateway.providers.wave.adapter import NoSessionYet, WaveProvider
from gateway.settings import WaveSettings
from support import WAVE_API, WAVE_API_KEY, WAVE_WEBHOOK_SECRET, Gateway, Merchant, wait_for

API = WAVE_API
AUTH = f"Bearer {WAVE_API_KEY}"
SESSIONS = f"{API}/v1/checkout/sessions"


def body(**over: Any) -> dict[str, Any]:
    return {"amount": 5_000, "currency": "XOF", "provider": "wave", "return_url": RETURN_URL, **over}


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


async def status_becomes(client: httpx.AsyncClient, merchant: Merchant, payment_id: str, status: str) -> None:
    async def reached() -> bool:
        return bool((await get(client, merchant, f"/v1/payments/{payment_id}"))["status"] == status)

    await wait_for(reached)


def opened(request: httpx.Request) -> httpx.Response:
    """Wave's answer to a create: the session, echoing what we sent."""
    sent = json.loads(request.content)
    return httpx.Response(
        200,
        json=session(
            session_id(),
            amount=sent["amount"],
            currency=sent["currency"],
            client_reference=sent["client_reference"],
            success_url=sent["success_url"],
            error_url=sent["error_url"],
        ),
    )


def sessions_route(router: respx.Router) -> respx.Route:
    return router.post(SESSIONS).mock(side_effect=opened)


async def waiting(client: httpx.AsyncClient, merchant: Merchant, router: respx.Router) -> dict[str, Any]:
    sessions_route(router)
    r = await create(client, merchant, body())
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "requires_action"
    return dict(r.json())


def wave_session(payment: dict[str, Any], checkout: str, paid: str, **extra: Any) -> dict[str, Any]:
    return session(
        payment["provider_reference"],
        amount=str(payment["amount"]),
        currency=payment["currency"],
        client_reference=payment["id"],
        checkout_status=checkout,
        payment_status=paid,
        **extra,
    )


async def post_hook(client: httpx.AsyncClient, headers: dict[str, str], raw: bytes) -> httpx.Response:
    return await client.post("/v1/webhooks/wave", content=raw, headers=headers)


async def inbox_outcome(gateway: Gateway, needle: str) -> str | None:
    outcome = await gateway.scalar(
        "SELECT outcome FROM inbound_webhooks WHERE provider = 'wave' AND payload::text LIKE :n",
        n=f"%{needle}%",
    )
    return None if outcome is None else str(outcome)


# --- creating a payment: the checkout session -------------------------------------------------------


async def test_create_sends_the_session_wave_documents_and_answers_with_its_launch_url(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    route = sessions_route(provider_http)
    r = await create(client, merchant, body(customer={"phone": "+221770000000"}))
    assert r.status_code == 201, r.text
    p = r.json()

    request = route.calls.last.request
    assert (request.method, str(request.url)) == ("POST", f"{API}/v1/checkout/sessions")
    assert request.headers["authorization"] == AUTH
    assert request.headers["content-type"] == "application/json"
    assert request.headers["idempotency-key"] == p["id"]
    assert json.loads(request.content) == {
        "amount": "5000",
        "currency": "XOF",
        "success_url": RETURN_URL,
        "error_url": RETURN_URL,
        "client_reference": p["id"],
    }
    answered = route.calls.last.response.json()
    assert p["status"] == "requires_action"
    assert p["provider_reference"] == answered["id"]
    assert p["provider_reference"].startswith("cos-")
    assert p["next_action"] == {
        "type": "redirect_to_url",
        "redirect_to_url": {"url": answered["wave_launch_url"], "return_url": RETURN_URL},
    }


async def test_without_a_return_url_wave_is_not_called(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    route = sessions_route(provider_http)
    r = await create(client, merchant, {k: v for k, v in body().items() if k != "return_url"})
    assert r.status_code == 402, r.text
    assert r.json()["code"] == "return_url_required"
    assert not route.called


async def test_currencies_wave_does_not_collect_are_refused_before_anything_is_stored(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    route = sessions_route(provider_http)
    r = await create(client, merchant, body(currency="KES"))
    assert r.status_code == 422, r.text
    assert (r.json()["code"], r.json()["supported"]) == ("currency_not_supported", ["XOF"])
    assert not route.called


async def test_wave_refusing_the_session_is_402_with_its_message(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    provider_http.post(SESSIONS).respond(
        400, json={"code": "request-validation-error", "message": "Amount exceeds the wallet's limits."}
    )
    r = await create(client, merchant, body())
    assert r.status_code == 402, r.text
    problem = r.json()
    assert (problem["code"], problem["detail"]) == ("payment_rejected", "Amount exceeds the wallet's limits.")
    assert problem["payment"]["status"] == "failed"


@pytest.mark.parametrize(
    ("answer", "status", "code"),
    [
        (
            httpx.Response(401, json={"code": "no-matching-api-key", "message": "Invalid key"}),
            502,
            "provider_misconfigured",
        ),
        (
            httpx.Response(403, json={"code": "unauthorized-wallet", "message": "No access"}),
            502,
            "provider_misconfigured",
        ),
        (
            httpx.Response(500, json={"code": "internal-server-error", "message": "Oops"}),
            502,
            "provider_error",
        ),
        (httpx.Response(503, json={"code": "service-unavailable", "message": "Down"}), 502, "provider_error"),
        (
            httpx.Response(429, json={"code": "rate-limit-exceeded", "message": "Slow down"}),
            502,
            "provider_error",
        ),
        (httpx.ConnectError("refused"), 502, "provider_error"),
        (httpx.ReadTimeout("timed out"), 504, "provider_timeout"),
    ],
)
async def test_provider_failures_leave_the_payment_pending(
    client: httpx.AsyncClient,
    merchant: Merchant,
    provider_http: respx.Router,
    answer: httpx.Response | Exception,
    status: int,
    code: str,
) -> None:
    route = provider_http.post(SESSIONS)
    route.mock(side_effect=answer) if isinstance(answer, Exception) else route.mock(return_value=answer)
    r = await create(client, merchant, body())
    assert r.status_code == status, r.text
    assert r.json()["code"] == code
    assert WAVE_API_KEY not in r.text
    p = await get(client, merchant, f"/v1/payments/{r.json()['payment']['id']}")
    assert (p["status"], p["provider_reference"]) == ("pending", None)


async def test_a_create_retried_after_a_timeout_asks_wave_for_the_same_session(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    answers = iter([None, "open"])

    def first_times_out(request: httpx.Request) -> httpx.Response:
        if next(answers) is None:
            raise httpx.ReadTimeout("timed out", request=request)
        return opened(request)

    route = provider_http.post(SESSIONS).mock(side_effect=first_times_out)
    key = str(uuid.uuid4())
    first = await create(client, merchant, body(), key=key)
    assert first.status_code == 504, first.text
    second = await create(client, merchant, body(), key=key)
    assert second.status_code == 201, second.text
    assert second.json()["id"] == first.json()["payment"]["id"]
    a, b = (c.request for c in route.calls)
    assert a.headers["idempotency-key"] == b.headers["idempotency-key"] == second.json()["id"]
    assert a.content == b.content


async def test_after_a_timeout_sync_finds_the_session_by_client_reference(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    provider_http.post(SESSIONS).mock(side_effect=httpx.ReadTimeout("timed out"))
    r = await create(client, merchant, body())
    assert r.status_code == 504
    payment_id = r.json()["payment"]["id"]
    sid = session_id()
    found = session(sid, amount="5000", currency="XOF", client_reference=payment_id)
    other = session(session_id(), amount="100", currency="XOF", client_reference="pay_someone_else")
    search = provider_http.get(f"{SESSIONS}/search", params={"client_reference": payment_id}).respond(
        200, json={"result": [other, found]}
    )
    synced = await client.post(f"/v1/payments/{payment_id}/sync", headers=merchant.auth)
    assert synced.status_code == 200, synced.text
    p = synced.json()
    assert (p["status"], p["provider_reference"]) == ("requires_action", sid)
    assert p["next_action"]["redirect_to_url"]["url"] == found["wave_launch_url"]
    request = search.calls.last.request
    assert request.headers["authorization"] == AUTH
    assert request.url.params["client_reference"] == payment_id


async def test_sync_reads_the_session_by_id_and_maps_its_status(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    p = await waiting(client, merchant, provider_http)
    route = provider_http.get(f"{SESSIONS}/{p['provider_reference']}").respond(
        200, json=wave_session(p, "complete", "succeeded")
    )
    synced = await client.post(f"/v1/payments/{p['id']}/sync", headers=merchant.auth)
    assert synced.status_code == 200, synced.text
    assert synced.json()["status"] == "succeeded"
    assert route.calls.last.request.headers["authorization"] == AUTH


async def test_sync_does_not_fulfil_on_other_money(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    p = await waiting(client, merchant, provider_http)
    paid = {**wave_session(p, "complete", "succeeded"), "amount": "500"}
    provider_http.get(f"{SESSIONS}/{p['provider_reference']}").respond(200, json=paid)
    synced = await client.post(f"/v1/payments/{p['id']}/sync", headers=merchant.auth)
    assert synced.json()["status"] == "requires_action"


async def test_sync_refuses_a_session_naming_another_payment(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    p = await waiting(client, merchant, provider_http)
    theirs = {**wave_session(p, "complete", "succeeded"), "client_reference": "pay_someone_else"}
    provider_http.get(f"{SESSIONS}/{p['provider_reference']}").respond(200, json=theirs)
    synced = await client.post(f"/v1/payments/{p['id']}/sync", headers=merchant.auth)
    assert synced.status_code == 502, synced.text
    assert (await get(client, merchant, f"/v1/payments/{p['id']}"))["status"] == "requires_action"


# --- cancel: expire the session ----------------------------------------------------------------------


async def cancel(client: httpx.AsyncClient, merchant: Merchant, payment_id: str) -> httpx.Response:
    return await client.post(
        f"/v1/payments/{payment_id}/cancel",
        headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())},
    )


async def test_cancel_expires_the_session(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    p = await waiting(client, merchant, provider_http)
    expire = provider_http.post(f"{SESSIONS}/{p['provider_reference']}/expire").respond(200)
    r = await cancel(client, merchant, p["id"])
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "canceled"
    request = expire.calls.last.request
    assert request.headers["authorization"] == AUTH
    assert request.content == b""


async def test_cancel_after_the_customer_paid_says_so(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    p = await waiting(client, merchant, provider_http)
    provider_http.post(f"{SESSIONS}/{p['provider_reference']}/expire").respond(
        409, json={"code": "checkout-session-not-open", "message": "The checkout session is complete."}
    )
    provider_http.get(f"{SESSIONS}/{p['provider_reference']}").respond(
        200, json=wave_session(p, "complete", "succeeded")
    )
    r = await cancel(client, merchant, p["id"])
    assert r.status_code == 409, r.text
    assert (r.json()["code"], r.json()["status_now"]) == ("payment_not_cancelable", "succeeded")
    assert (await get(client, merchant, f"/v1/payments/{p['id']}"))["status"] == "succeeded"


# --- webhooks ---------------------------------------------------------------------------------------


async def test_a_completed_session_succeeds_the_payment_and_wave_gets_its_acknowledgement(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, provider_http: respx.Router
) -> None:
    p = await waiting(client, merchant, provider_http)
    raw = event("checkout.session.completed", wave_session(p, "complete", "succeeded"))
    r = await post_hook(client, sign(raw), raw)
    assert (r.status_code, r.json()) == (200, {"received": True})
    await status_becomes(client, merchant, p["id"], "succeeded")


async def test_a_failed_payment_event_fails_the_payment_with_wave_s_reason(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, provider_http: respx.Router
) -> None:
    p = await waiting(client, merchant, provider_http)
    error = {"code": "insufficient-funds", "message": "The payer does not have enough funds."}
    raw = event(
        "checkout.session.payment_failed", wave_session(p, "open", "cancelled", last_payment_error=error)
    )
    assert (await post_hook(client, sign(raw), raw)).status_code == 200
    await status_becomes(client, merchant, p["id"], "failed")
    after = await get(client, merchant, f"/v1/payments/{p['id']}")
    assert (after["failure_code"], after["failure_message"]) == (
        "insufficient_funds",
        "The payer does not have enough funds.",
    )


async def test_a_failed_attempt_on_a_session_still_open_changes_nothing(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, provider_http: respx.Router
) -> None:
    p = await waiting(client, merchant, provider_http)
    error = {"code": "insufficient-funds", "message": "The payer does not have enough funds."}
    eid = "AE_sn_" + uuid.uuid4().hex[:12]
    raw = event(
        "checkout.session.payment_failed",
        wave_session(p, "open", "processing", last_payment_error=error),
        eid,
    )
    assert (await post_hook(client, sign(raw), raw)).status_code == 200

    async def done() -> bool:
        return await inbox_outcome(gateway, eid) == "ignored"

    await wait_for(done)
    assert (await get(client, merchant, f"/v1/payments/{p['id']}"))["status"] == "requires_action"


async def test_events_we_do_not_act_on_are_stored_and_ignored(
    client: httpx.AsyncClient, gateway: Gateway
) -> None:
    eid = "AE_sn_" + uuid.uuid4().hex[:12]
    raw = json.dumps({"id": eid, "type": "test.test_event", "data": {}}).encode()
    r = await post_hook(client, sign(raw), raw)
    assert r.status_code == 200

    async def done() -> bool:
        return await inbox_outcome(gateway, eid) == "ignored"

    await wait_for(done)


@pytest.mark.parametrize("forgery", ["missing", "wrong_secret", "stale", "dot_separator", "tampered"])
async def test_unauthenticated_webhooks_are_401_and_change_nothing(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, provider_http: respx.Router, forgery: str
) -> None:
    p = await waiting(client, merchant, provider_http)
    raw = event("checkout.session.completed", wave_session(p, "complete", "succeeded"))
    headers = sign(raw)
    sent = raw
    if forgery == "missing":
        headers = {"content-type": "application/json"}
    elif forgery == "wrong_secret":
        headers = sign(raw, secret="wave_sn_WHS_not_ours")
    elif forgery == "stale":
        headers = sign(raw, t=int(time.time()) - 3_600)
    elif forgery == "dot_separator":
        ts = str(int(time.time()))
        headers = {"wave-signature": f"t={ts},v1={tf.signature(WAVE_WEBHOOK_SECRET, ts, raw, '.')}"}
    else:
        sent = raw.replace(b'"succeeded"', b'"succeeded" ')
    r = await post_hook(client, headers, sent)
    assert r.status_code == 401, r.text
    assert r.json()["code"] == "webhook_signature_invalid"
    assert not await gateway.scalar(
        "SELECT count(*) FROM inbound_webhooks WHERE payload::text LIKE :n", n=f"%{p['id']}%"
    )
    assert (await get(client, merchant, f"/v1/payments/{p['id']}"))["status"] == "requires_action"


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[]",
        b'{"type": "checkout.session.completed", "data": {}}',
        b'{"id": "AE_x", "type": "checkout.session.completed", "data": "nope"}',
        b'{"id": "AE_x", "type": "checkout.session.completed", "data": {"id": "cos-x", "amount": "10.5",'
        b' "currency": "XOF", "checkout_status": "complete", "payment_status": "succeeded"}}',
    ],
)
async def test_malformed_webhooks_are_400(client: httpx.AsyncClient, raw: bytes) -> None:
    r = await post_hook(client, sign(raw), raw)
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "webhook_malformed"


# --- refunds: whole payments only --------------------------------------------------------------------


async def paid(client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router) -> dict[str, Any]:
    p = await waiting(client, merchant, provider_http)
    raw = event("checkout.session.completed", wave_session(p, "complete", "succeeded"))
    assert (await post_hook(client, sign(raw), raw)).status_code == 200
    await status_becomes(client, merchant, p["id"], "succeeded")
    return p


async def refund_of(
    client: httpx.AsyncClient, merchant: Merchant, payment_id: str, payload: dict[str, Any]
) -> httpx.Response:
    return await client.post(
        f"/v1/payments/{payment_id}/refunds",
        json=payload,
        headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())},
    )


async def test_a_full_refund_posts_to_the_session_s_refund_endpoint(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    p = await paid(client, merchant, provider_http)
    route = provider_http.post(f"{SESSIONS}/{p['provider_reference']}/refund").respond(200)
    r = await refund_of(client, merchant, p["id"], {})
    assert r.status_code == 201, r.text
    refund = r.json()
    assert (refund["status"], refund["amount"]) == ("succeeded", 5_000)
    request = route.calls.last.request
    assert request.headers["authorization"] == AUTH
    assert request.headers["idempotency-key"] == refund["id"]
    assert request.content == b""
    after = await get(client, merchant, f"/v1/payments/{p['id']}")
    assert (after["status"], after["amount_refunded"]) == ("refunded", 5_000)


async def test_a_partial_refund_is_422_and_wave_is_not_called(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    p = await paid(client, merchant, provider_http)
    route = provider_http.post(f"{SESSIONS}/{p['provider_reference']}/refund").respond(200)
    r = await refund_of(client, merchant, p["id"], {"amount": 1_000})
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "partial_refund_not_supported"
    assert not route.called
    assert (await get(client, merchant, f"/v1/payments/{p['id']}"))["status"] == "succeeded"


async def test_a_refund_wave_refuses_fails_with_its_message(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    p = await paid(client, merchant, provider_http)
    provider_http.post(f"{SESSIONS}/{p['provider_reference']}/refund").respond(
        400, json={"code": "checkout-refund-failed", "message": "The refund could not be made."}
    )
    r = await refund_of(client, merchant, p["id"], {})
    assert r.status_code == 201, r.text
    assert (r.json()["status"], r.json()["failure_code"]) == ("failed", "refund_declined")
    assert r.json()["failure_message"] == "The refund could not be made."
    assert (await get(client, merchant, f"/v1/payments/{p['id']}"))["status"] == "succeeded"


async def test_providers_list_says_wave_refunds_whole_payments_only(
    client: httpx.AsyncClient, merchant: Merchant
) -> None:
    providers = {p["name"]: p for p in (await get(client, merchant, "/v1/providers"))["data"]}
    wave = providers["wave"]
    assert (wave["configured"], wave["currencies"], wave["flows"]) == (True, ["XOF"], ["redirect"])
    assert (wave["refunds"], wave["partial_refunds"], wave["cancel"]) == (True, False, True)


# --- the adapter on its own: expiry, refunds' status, configuration ----------------------------------


def settings(**over: Any) -> WaveSettings:
    values: dict[str, Any] = {
        "test_api_key": SecretStr(WAVE_API_KEY),
        "test_webhook_secret": SecretStr(WAVE_WEBHOOK_SECRET),
        "base_url": API,
        "action_ttl_seconds": 600,
        **over,
    }
    return WaveSettings(**values)


def ref(provider_reference: str | None, age: timedelta = timedelta(0)) -> PaymentRef:
    return PaymentRef(
        payment_id="pay_adapter_1",
        provider_reference=provider_reference,
        amount=5_000,
        currency="XOF",
        livemode=False,
        created_at=datetime.now(UTC) - age,
    )


def adapter_session(
    sid: str, checkout: str = "open", paid: str = "processing", **extra: Any
) -> dict[str, Any]:
    return session(
        sid,
        amount="5000",
        currency="XOF",
        client_reference="pay_adapter_1",
        checkout_status=checkout,
        payment_status=paid,
        **extra,
    )


async def test_a_session_still_open_past_the_ttl_is_expired_at_wave_first() -> None:
    wave = WaveProvider(settings(), 2)
    sid = session_id()
    with respx.mock() as router:
        router.get(f"{SESSIONS}/{sid}").respond(200, json=adapter_session(sid))
        expire = router.post(f"{SESSIONS}/{sid}/expire").respond(200)
        result = await wave.fetch_payment(ref(sid, age=timedelta(minutes=11)))
        assert result.status == "expired"
        assert expire.called
        # Within the TTL the session is left open and the payment waits.
        assert (await wave.fetch_payment(ref(sid))).status == "requires_action"
        assert expire.call_count == 1
    await wave.aclose()


async def test_a_session_paid_while_we_expired_it_is_a_success() -> None:
    wave = WaveProvider(settings(), 2)
    sid = session_id()
    with respx.mock() as router:
        router.get(f"{SESSIONS}/{sid}").mock(
            side_effect=[
                httpx.Response(200, json=adapter_session(sid)),
                httpx.Response(200, json=adapter_session(sid, "complete", "succeeded")),
            ]
        )
        router.post(f"{SESSIONS}/{sid}/expire").respond(
            409, json={"code": "checkout-session-not-open", "message": "The checkout session is complete."}
        )
        result = await wave.fetch_payment(ref(sid, age=timedelta(minutes=11)))
        assert (result.status, result.amount, result.currency) == ("succeeded", 5_000, "XOF")
    await wave.aclose()


async def test_a_create_that_never_reached_wave_waits_then_fails_after_the_ttl() -> None:
    wave = WaveProvider(settings(), 2)
    with respx.mock() as router:
        router.get(f"{SESSIONS}/search").respond(200, json={"result": []})
        with pytest.raises(NoSessionYet):
            await wave.fetch_payment(ref(None))
        late = await wave.fetch_payment(ref(None, age=timedelta(minutes=11)))
        assert (late.status, late.failure_code) == ("failed", "provider_session_missing")
        # Nothing to close: cancel says so without calling expire.
        assert (await wave.cancel_payment(ref(None))).status == "canceled"
    await wave.aclose()


def test_search_prefers_the_paid_session_then_the_newest() -> None:
    a = adapter_session("cos-a")
    b = {**adapter_session("cos-b"), "when_created": "2025-06-25T17:00:00Z"}
    c = adapter_session("cos-c", "complete", "succeeded")
    assert tf.pick_session([a, b], "pay_adapter_1") is b
    assert tf.pick_session([a, c, b], "pay_adapter_1") is c
    assert tf.pick_session([a], "pay_other") is None


async def test_a_refund_s_status_is_the_session_s_when_refunded() -> None:
    wave = WaveProvider(settings(), 2)
    sid = session_id()
    refund = RefundRef(
        refund_id="re_adapter_1",
        provider_reference=None,
        payment=ref(sid),
        amount=5_000,
        created_at=datetime.now(UTC),
    )
    with respx.mock() as router:
        route = router.get(f"{SESSIONS}/{sid}")
        route.respond(200, json=adapter_session(sid, "complete", "succeeded"))
        assert (await wave.fetch_refund(refund)).status == "pending"
        route.respond(
            200, json=adapter_session(sid, "complete", "succeeded", when_refunded="2025-06-25T17:10:00Z")
        )
        done = await wave.fetch_refund(refund)
        assert (done.status, done.provider_reference, done.amount) == ("succeeded", sid, 5_000)
    await wave.aclose()


async def test_live_mode_needs_its_own_key() -> None:
    wave = WaveProvider(settings(), 2)
    assert (wave.is_configured(False), wave.is_configured(True)) == (True, False)
    live = PaymentRequest(
        payment_id="pay_live_1",
        amount=5_000,
        currency="XOF",
        livemode=True,
        created_at=datetime.now(UTC),
        return_url=RETURN_URL,
    )
    with pytest.raises(ProviderMisconfigured):
        await wave.create_payment(live)
    await wave.aclose()


async def test_the_idempotency_key_can_be_turned_off_and_a_default_return_url_used() -> None:
    wave = WaveProvider(
        settings(send_idempotency_key=False, default_return_url="https://shop.example/back"), 2
    )
    request = PaymentRequest(
        payment_id="pay_adapter_2", amount=5_000, currency="XOF", livemode=False, created_at=datetime.now(UTC)
    )
    with respx.mock() as router:
        route = router.post(SESSIONS).mock(side_effect=opened)
        result = await wave.create_payment(request)
        sent = route.calls.last.request
        assert "idempotency-key" not in sent.headers
        assert json.loads(sent.content)["success_url"] == json.loads(sent.content)["error_url"]
        assert json.loads(sent.content)["error_url"] == "https://shop.example/back"
        assert result.next_action is not None
        assert result.next_action["redirect_to_url"]["return_url"] == "https://shop.example/back"
    await wave.aclose()


async def test_a_session_with_an_unreadable_amount_is_not_trusted() -> None:
    wave = WaveProvider(settings(), 2)
    sid = session_id()
    with respx.mock() as router:
        router.get(f"{SESSIONS}/{sid}").respond(
            200, json={**adapter_session(sid, "complete", "succeeded"), "amount": "5000.5"}
        )
        with pytest.raises(ProviderUnavailable):
            await wave.fetch_payment(ref(sid))
    await wave.aclose()


# --- signatures: docs/providers/wave.md -------------------------------------------------------------------

VECTOR_BODY = (
    b'{"event":"charge.success","data":{"reference":"ref_1","amount":10000,'
    b'"currency":"NGN","status":"success"}}'
)
VECTOR_SECRET = "wave_sn_WHS_xxx"
VECTOR_T = "1639081943"
VECTOR_V1 = "4a009c09cd34b7b371efe532cf5acd590f65cefa9bd6ef5d3c4d623d10578ff1"


def test_the_signature_matches_the_documented_vector() -> None:
    assert tf.signature(VECTOR_SECRET, VECTOR_T, VECTOR_BODY) == VECTOR_V1
    header = f"t={VECTOR_T},v1={VECTOR_V1}"
    now = int(VECTOR_T)
    assert tf.signature_valid(header, VECTOR_BODY, [VECTOR_SECRET], now=now, tolerance_seconds=300)
    # Any v1 may match (Wave sends several while it rotates secrets); any configured secret too.
    rotated = f"t={VECTOR_T}, v1={'0' * 64}, v1={VECTOR_V1}"
    assert tf.signature_valid(rotated, VECTOR_BODY, ["other", VECTOR_SECRET], now=now, tolerance_seconds=300)


@pytest.mark.parametrize(
    "header",
    [
        "",
        f"v1={VECTOR_V1}",
        f"t={VECTOR_T}",
        f"t=,v1={VECTOR_V1}",
        f"t=abc,v1={VECTOR_V1}",
        f"t={VECTOR_T},v1={'0' * 64}",
        f"t={int(VECTOR_T) + 1},v1={VECTOR_V1}",
        f"t={VECTOR_T},v0={VECTOR_V1}",
    ],
)
def test_signatures_that_do_not_verify(header: str) -> None:
    assert not tf.signature_valid(
        header, VECTOR_BODY, [VECTOR_SECRET], now=int(VECTOR_T), tolerance_seconds=300
    )


def test_the_timestamp_window_and_the_configurable_separator() -> None:
    header = f"t={VECTOR_T},v1={VECTOR_V1}"
    late = int(VECTOR_T) + 301
    assert not tf.signature_valid(header, VECTOR_BODY, [VECTOR_SECRET], now=late, tolerance_seconds=300)
    assert tf.signature_valid(header, VECTOR_BODY, [VECTOR_SECRET], now=late, tolerance_seconds=0)
    # t + "." + body, for accounts that sign so [U]: a different digest, accepted only when configured.
    dotted = tf.signature(VECTOR_SECRET, VECTOR_T, VECTOR_BODY, ".")
    assert dotted != VECTOR_V1
    dot_header = f"t={VECTOR_T},v1={dotted}"
    now = int(VECTOR_T)
    assert tf.signature_valid(
        dot_header, VECTOR_BODY, [VECTOR_SECRET], now=now, tolerance_seconds=300, separator="."
    )
    assert not tf.signature_valid(dot_header, VECTOR_BODY, [VECTOR_SECRET], now=now, tolerance_seconds=300)


async def test_the_separator_setting_reaches_the_adapter() -> None:
    wave = WaveProvider(settings(webhook_signature_separator="."), 2)
    raw = event("checkout.session.completed", adapter_session("cos-sep", "complete", "succeeded"))
    ts = str(int(time.time()))
    dotted = {"wave-signature": f"t={ts},v1={tf.signature(WAVE_WEBHOOK_SECRET, ts, raw, '.')}"}
    [verified] = wave.verify_webhook(dotted, raw)
    assert verified.result is not None
    assert (verified.result.status, verified.provider_reference) == ("succeeded", "cos-sep")
    with pytest.raises(WebhookVerificationError):
        wave.verify_webhook(sign(raw), raw)
    await wave.aclose()


async def test_the_shared_secret_strategy_compares_the_bearer_token() -> None:
    wave = WaveProvider(settings(webhook_auth="shared_secret"), 2)
    raw = event("checkout.session.completed", adapter_session("cos-shared", "complete", "succeeded"))
    [verified] = wave.verify_webhook({"Authorization": f"Bearer {WAVE_WEBHOOK_SECRET}"}, raw)
    assert verified.payment_id == "pay_adapter_1"
    for wrong in ({}, {"Authorization": "Bearer wave_sn_WHS_other"}, {"Authorization": WAVE_WEBHOOK_SECRET}):
        with pytest.raises(WebhookVerificationError):
            wave.verify_webhook(wrong, raw)
    # Without any secret configured nothing is accepted.
    bare = WaveProvider(settings(test_webhook_secret=None), 2)
    with pytest.raises(WebhookVerificationError):
        bare.verify_webhook(sign(raw), raw)
    await wave.aclose()
    await bare.aclose()


# --- transformers ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("checkout", "paid", "error", "status"),
    [
        ("open", "processing", None, "requires_action"),
        ("open", "processing", {"code": "insufficient-funds", "message": "m"}, "requires_action"),
        ("complete", "succeeded", None, "succeeded"),
        ("complete", "processing", None, "processing"),
        ("open", "cancelled", {"code": "insufficient-funds", "message": "m"}, "failed"),
        ("expired", "cancelled", None, "expired"),
        ("expired", "processing", None, "expired"),
        ("expired", "cancelled", {"code": "payer-mobile-mismatch", "message": "m"}, "failed"),
        ("open", "refunded", None, None),
        ("closed", "processing", None, None),
    ],
)
def test_session_states_map_to_ours(
    checkout: str, paid: str, error: dict[str, str] | None, status: str | None
) -> None:
    s = session(
        "cos-1",
        amount="5000",
        currency="XOF",
        client_reference="pay_1",
        checkout_status=checkout,
        payment_status=paid,
        last_payment_error=error,
    )
    assert tf.session_status(s) == status


@pytest.mark.parametrize(
    ("wave_code", "ours"),
    [
        ("insufficient-funds", "insufficient_funds"),
        ("payer-mobile-mismatch", "payer_mobile_mismatch"),
        ("blocked-account", "account_blocked"),
        ("something-new", "payment_failed"),
        (None, "payment_failed"),
    ],
)
def test_failure_codes_are_mapped_to_stable_ones(wave_code: str | None, ours: str) -> None:
    error = {"code": wave_code, "message": "m"} if wave_code else None
    s = session(
        "cos-1",
        amount="5000",
        currency="XOF",
        client_reference="pay_1",
        checkout_status="expired",
        payment_status="cancelled",
        last_payment_error=error or {"message": "m"},
    )
    result = tf.session_result(s)
    assert (result.status, result.failure_code) == ("failed", ours)


def test_the_body_carries_exact_major_unit_strings() -> None:
    def request(amount: int, currency: str, phone: str | None = None) -> PaymentRequest:
        return PaymentRequest(
            payment_id="pay_1",
            amount=amount,
            currency=currency,
            livemode=False,
            created_at=datetime.now(UTC),
            customer=Customer(phone=phone),
        )

    def sent(request: PaymentRequest, restrict: bool = False) -> dict[str, Any]:
        return tf.session_body(
            request,
            success_url="https://s.example/ok",
            error_url="https://s.example/ko",
            restrict_payer_mobile=restrict,
        )

    assert sent(request(5_000, "XOF"))["amount"] == "5000"
    assert sent(request(1_050, "GMD"))["amount"] == "10.50"
    assert sent(request(7, "GMD"))["amount"] == "0.07"
    restricted = sent(request(5_000, "XOF", "+221770000000"), restrict=True)
    assert restricted == {
        "amount": "5000",
        "currency": "XOF",
        "success_url": "https://s.example/ok",
        "error_url": "https://s.example/ko",
        "client_reference": "pay_1",
        "restrict_payer_mobile": "+221770000000",
    }
    assert "restrict_payer_mobile" not in sent(request(5_000, "XOF", "+221770000000"))


def test_interpret_keeps_other_events_without_acting() -> None:
    other = tf.interpret({"id": "AE_1", "type": "merchant.payment_received", "data": {"amount": "1"}})
    assert (other.event_id, other.result, other.payment_id) == ("AE_1", None, None)
    with pytest.raises(WebhookPayloadError):
        tf.interpret({"type": "checkout.session.completed", "data": {}})
    ghost = tf.interpret(
        {
            "id": "AE_2",
            "type": "checkout.session.completed",
            "data": session(
                "cos-ghost",
                amount="5000",
                currency="XOF",
                client_reference=None,
                checkout_status="complete",
                payment_status="succeeded",
            ),
        }
    )
    assert (ghost.payment_id, ghost.provider_reference) == (None, "cos-ghost")
    assert ghost.result is not None
    assert (ghost.result.amount, ghost.result.currency) == (5_000, "XOF")
