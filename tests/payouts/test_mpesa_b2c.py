"""M-Pesa payouts through B2C: the v3 request shaped as Daraja documents it, sent once (a timeout is
never followed by a second request, even by the reconciler), settled by the Result Daraja POSTs to the
secret-token URL; test mode never reaches the live Daraja."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import respx
from pydantic import SecretStr

from gateway.context import AppContext
from gateway.main import create_app
from gateway.providers.mpesa.settings import MpesaMode
from gateway.reconciler.service import Reconciler
from gateway.settings import ReconcilerSettings
from payouts.daraja import MSISDN, daraja, payout_body, result
from payouts.helpers import key, payout_events
from provider_account_data import live_key
from support import (
    MPESA_CALLBACK_TOKEN,
    MPESA_PASSKEY,
    Gateway,
    Merchant,
    assert_problem,
    wait_for,
)

LIVE_API = "https://mpesa-live.test"
B2C_SHORTCODE = "600996"
B2C_INITIATOR = "testapi"
B2C_CREDENTIAL = "Zm9vYmFyLWVuY3J5cHRlZC1pbml0aWF0b3ItcGFzc3dvcmQ="
LIVE_CREDENTIAL = "bGl2ZS1lbmNyeXB0ZWQtaW5pdGlhdG9yLXBhc3N3b3Jk"
B2C = {
    "b2c_shortcode": B2C_SHORTCODE,
    "b2c_initiator_name": B2C_INITIATOR,
    "b2c_security_credential": SecretStr(B2C_CREDENTIAL),
}


@dataclass
class App:
    client: httpx.AsyncClient
    ctx: AppContext

    @property
    def result_url(self) -> str:
        return f"{self.ctx.settings.base_url}/v1/webhooks/mpesa/{MPESA_CALLBACK_TOKEN}"


@pytest.fixture
async def b2c(gateway: Gateway) -> AsyncIterator[App]:
    """A gateway whose M-Pesa may pay out in both modes: test mode at MPESA_API, live at LIVE_API."""
    base = gateway.ctx.settings
    live = MpesaMode(
        consumer_key=SecretStr("live-consumer-key"),
        consumer_secret=SecretStr("live-consumer-secret"),
        shortcode="174380",
        passkey=SecretStr(MPESA_PASSKEY),
        base_url=LIVE_API,
        b2c_shortcode="600997",
        b2c_initiator_name="liveapi",
        b2c_security_credential=SecretStr(LIVE_CREDENTIAL),
    )
    mpesa = base.mpesa.model_copy(update={"test": base.mpesa.test.model_copy(update=B2C), "live": live})
    app = create_app(base.model_copy(update={"mpesa": mpesa}))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://b2c") as c,
    ):
        yield App(c, app.state.ctx)


async def post_result(app: App, raw: bytes, token: str = MPESA_CALLBACK_TOKEN) -> httpx.Response:
    return await app.client.post(
        f"/v1/webhooks/mpesa/{token}", content=raw, headers={"content-type": "application/json"}
    )


async def payout(app: App, merchant: Merchant, payout_id: str) -> dict[str, Any]:
    return dict((await app.client.get(f"/v1/payouts/{payout_id}", headers=merchant.auth)).json())


async def test_a_payout_is_one_v3_request_then_settled_by_its_result(
    b2c: App, gateway: Gateway, merchant: Merchant, provider_http: respx.Router
) -> None:
    route = daraja(provider_http)
    live = daraja(provider_http, LIVE_API)
    r = await b2c.client.post("/v1/payouts", json=payout_body(), headers={**merchant.auth, **key()})
    assert r.status_code == 201, r.text
    p = r.json()
    assert route.call_count == 1
    assert live.call_count == 0  # a test-mode key's payout never reaches the live Daraja
    sent = route.calls.last.request
    assert sent.headers["authorization"].startswith("Bearer ")
    assert json.loads(sent.content) == {
        "OriginatorConversationID": p["id"],
        "InitiatorName": B2C_INITIATOR,
        "SecurityCredential": B2C_CREDENTIAL,
        "CommandID": "BusinessPayment",
        "Amount": 1500,
        "PartyA": B2C_SHORTCODE,
        "PartyB": MSISDN,
        "Remarks": "Rider payout week 49",
        "QueueTimeOutURL": b2c.result_url,
        "ResultURL": b2c.result_url,
        "Occasion": p["id"],
    }
    assert p["status"] == "pending"
    assert p["provider_reference"].startswith("AG_")

    answered = await post_result(b2c, result(p["id"], p["provider_reference"]))
    assert answered.status_code == 200
    assert answered.json() == {"ResultCode": 0, "ResultDesc": "Accepted"}

    async def settled() -> bool:
        return bool((await payout(b2c, merchant, p["id"]))["status"] == "succeeded")

    await wait_for(settled)
    assert await payout_events(gateway, p["id"]) == [
        ("payout.created", "api"),
        ("payout.succeeded", "webhook"),
    ]
    # The same Result again (Daraja retries): stored once, applied once.
    assert (await post_result(b2c, result(p["id"], p["provider_reference"]))).status_code == 200
    assert len(await payout_events(gateway, p["id"])) == 2
    assert route.call_count == 1


async def test_a_refusing_result_fails_the_payout_with_its_code(
    b2c: App, gateway: Gateway, merchant: Merchant, provider_http: respx.Router
) -> None:
    daraja(provider_http)
    r = await b2c.client.post("/v1/payouts", json=payout_body(), headers={**merchant.auth, **key()})
    p = r.json()
    assert (await post_result(b2c, result(p["id"], p["provider_reference"], code=2040))).status_code == 200

    async def settled() -> bool:
        return bool((await payout(b2c, merchant, p["id"]))["status"] == "failed")

    await wait_for(settled)
    done = await payout(b2c, merchant, p["id"])
    assert done["failure_code"] == "recipient_not_registered"
    assert "2040" in done["failure_message"]
    total = await gateway.scalar(
        "SELECT total FROM payout_daily_totals WHERE merchant_id = :m", m=merchant.id
    )
    assert total == 0


async def test_a_timeout_is_never_followed_by_a_second_request_and_the_late_result_settles_it(
    b2c: App, gateway: Gateway, merchant: Merchant, provider_http: respx.Router
) -> None:
    route = daraja(provider_http)
    route.mock(side_effect=httpx.ReadTimeout("Daraja did not answer"))
    headers = {**merchant.auth, **key()}
    r = await b2c.client.post("/v1/payouts", json=payout_body(), headers=headers)
    assert r.status_code == 201, r.text
    p = r.json()
    assert (p["status"], p["provider_reference"]) == ("pending", None)
    assert p["submitted_at"] is not None
    assert route.call_count == 1
    # The merchant retries (Redis forgot the answer): the same payout, no second request.
    await gateway.ctx.redis.flushdb()
    again = await b2c.client.post("/v1/payouts", json=payout_body(), headers=headers)
    assert (again.status_code, again.json()["id"]) == (201, p["id"])
    # The reconciler finds it due but has nothing to ask (B2C has no status query): no request either.
    await gateway.execute("UPDATE payouts SET next_reconcile_at = now() WHERE id = :id", id=p["id"])
    await Reconciler(
        b2c.ctx.db, b2c.ctx.registry, ReconcilerSettings(run_in_process=False), b2c.ctx.settings.payouts
    ).run_once()
    assert route.call_count == 1
    assert (await payout(b2c, merchant, p["id"]))["status"] == "pending"
    # Daraja had taken it after all: its Result names our payout, and settles it.
    conversation = "AG_20261205_00004e1b2c3d4e5f6a7b"
    assert (await post_result(b2c, result(p["id"], conversation))).status_code == 200

    async def settled() -> bool:
        return bool((await payout(b2c, merchant, p["id"]))["status"] == "succeeded")

    await wait_for(settled)
    done = await payout(b2c, merchant, p["id"])
    assert done["provider_reference"] == conversation
    assert route.call_count == 1


async def test_a_refusal_by_daraja_fails_the_payout_at_once(
    b2c: App, merchant: Merchant, provider_http: respx.Router
) -> None:
    route = daraja(provider_http)
    route.mock(
        return_value=httpx.Response(
            400,
            json={
                "requestId": "11728-2929992-1",
                "errorCode": "400.002.02",
                "errorMessage": "Bad Request - Invalid PartyB",
            },
        )
    )
    r = await b2c.client.post("/v1/payouts", json=payout_body(), headers={**merchant.auth, **key()})
    assert r.status_code == 201, r.text
    assert (r.json()["status"], r.json()["failure_code"]) == ("failed", "payout_declined")
    assert route.call_count == 1


async def test_what_b2c_cannot_pay_is_refused_before_anything_is_sent(
    b2c: App, gateway: Gateway, merchant: Merchant, provider_http: respx.Router
) -> None:
    route = daraja(provider_http)
    headers = {**merchant.auth}

    async def refused(body: dict[str, Any], code: str) -> None:
        r = await b2c.client.post("/v1/payouts", json=body, headers={**headers, **key()})
        assert_problem(r, 422, code)

    await refused(payout_body(phone="+256712345678"), "invalid_destination")  # not a Safaricom line
    bank = payout_body()
    bank["destination"] = {"type": "bank_account", "account_number": "0123456789", "bank_code": "01"}
    await refused(bank, "invalid_destination")
    await refused(payout_body(amount=150_050), "validation_error")  # KES 1,500.50: whole shillings only
    await refused({**payout_body(), "currency": "UGX"}, "currency_not_supported")
    assert route.call_count == 0
    assert await gateway.scalar("SELECT count(*) FROM payouts WHERE merchant_id = :m", m=merchant.id) == 0


async def test_a_live_key_pays_out_through_the_live_account_only(
    b2c: App, gateway: Gateway, merchant: Merchant, provider_http: respx.Router
) -> None:
    test_route = daraja(provider_http)
    live_route = daraja(provider_http, LIVE_API)
    live = await live_key(gateway, merchant)
    r = await b2c.client.post("/v1/payouts", json=payout_body(), headers={**live, **key()})
    assert r.status_code == 201, r.text
    assert r.json()["livemode"] is True
    assert (test_route.call_count, live_route.call_count) == (0, 1)
    sent = json.loads(live_route.calls.last.request.content)
    assert (sent["PartyA"], sent["InitiatorName"], sent["SecurityCredential"]) == (
        "600997",
        "liveapi",
        LIVE_CREDENTIAL,
    )


async def test_a_result_without_the_url_token_is_refused_and_moves_nothing(
    b2c: App, gateway: Gateway, merchant: Merchant, provider_http: respx.Router
) -> None:
    daraja(provider_http)
    p = (await b2c.client.post("/v1/payouts", json=payout_body(), headers={**merchant.auth, **key()})).json()
    r = await post_result(b2c, result(p["id"], p["provider_reference"]), token="not-the-token-0123456789")
    assert r.status_code == 401
    assert (await payout(b2c, merchant, p["id"]))["status"] == "pending"


async def test_without_b2c_settings_mpesa_payouts_are_not_configured(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    route = daraja(provider_http)
    r = await client.post("/v1/payouts", json=payout_body(), headers={**merchant.auth, **key()})
    assert_problem(r, 422, "provider_not_configured")
    assert route.call_count == 0
