"""Airtel Money payouts (disbursements): the exact requests the adapter's payout side sends and how it
reads every answer (docs/providers/airtel.md, "Payouts").

Airtel is answered by respx as it answers (payouts/airtel_fake.py); the token cache runs on the
gateway's real Redis.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
import respx
from pydantic import SecretStr, ValidationError

from gateway.providers.airtel.account import AirtelAccountCredentials
from gateway.providers.airtel.adapter import AirtelProvider
from gateway.providers.airtel.payouts import NoDisbursementYet
from gateway.providers.airtel.settings import TOKEN_KEY_PREFIX, AirtelSettings
from gateway.providers.base import CALLBACK_TOKEN_HEADER, ProviderMisconfigured, ProviderTimedOut
from gateway.providers.payouts import PayoutDestination, PayoutRequest, payout_side
from payouts.adapter_calls import bank_account, mobile_money, payout_request, ref_of
from payouts.airtel_fake import (
    ACCESS_TOKEN,
    DISBURSE,
    ENCRYPTED_PIN,
    PAYEE,
    PAYEE_LIMIT,
    PAYEE_POOR,
    PAYEE_SLOW,
    PLAIN_PIN,
    Disbursement,
    FakeDisbursements,
    decrypt_pin,
)
from payouts.helpers import forget_tokens
from support import AIRTEL_API, AIRTEL_CALLBACK_TOKEN, AIRTEL_CLIENT_ID, AIRTEL_CLIENT_SECRET, Gateway

LIVE_API = "https://openapi.airtel.test"


def settings(pin: str | None = ENCRYPTED_PIN, **over: Any) -> AirtelSettings:
    values: dict[str, Any] = {
        "test": {
            "client_id": AIRTEL_CLIENT_ID,
            "client_secret": AIRTEL_CLIENT_SECRET,
            "base_url": AIRTEL_API,
            "country": "UG",
            "disbursement_pin": pin,
        },
        "callback_token": SecretStr(AIRTEL_CALLBACK_TOKEN),
        **over,
    }
    return AirtelSettings.model_validate(values)


async def adapter_of(gateway: Gateway, configured: AirtelSettings) -> AirtelProvider:
    await forget_tokens(gateway, TOKEN_KEY_PREFIX)
    return AirtelProvider(configured, gateway.ctx.redis, gateway.base_url + "/v1/webhooks/airtel", 2)


@pytest.fixture
async def airtel(gateway: Gateway) -> AsyncIterator[AirtelProvider]:
    adapter = await adapter_of(gateway, settings())
    yield adapter
    await adapter.aclose()


@pytest.fixture
def fake(provider_http: respx.Router) -> FakeDisbursements:
    return FakeDisbursements(provider_http)


def payout(phone: str = PAYEE, *, amount: int = 5_000, currency: str = "UGX", **over: Any) -> PayoutRequest:
    return payout_request(mobile_money(phone), amount=amount, currency=currency, **over)


# --- the disbursement --------------------------------------------------------------------------------


async def test_a_payout_sends_the_exact_disbursement_request(
    airtel: AirtelProvider, fake: FakeDisbursements
) -> None:
    assert payout_side(airtel) is airtel
    request = payout()
    result = await airtel.create_payout(request)

    token = json.loads(fake.token.calls.last.request.content)
    assert token == {
        "client_id": AIRTEL_CLIENT_ID,
        "client_secret": AIRTEL_CLIENT_SECRET,
        "grant_type": "client_credentials",
    }
    assert fake.disburse.call_count == 1
    sent = fake.disburse.calls.last.request
    assert (sent.method, str(sent.url)) == ("POST", DISBURSE)
    assert sent.headers["authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert (sent.headers["x-country"], sent.headers["x-currency"]) == ("UG", "UGX")
    body = json.loads(sent.content)
    assert body == {
        "payee": {"msisdn": "752000009"},
        "reference": "riderweek48",
        "pin": ENCRYPTED_PIN,
        "transaction": {"amount": 5000, "id": request.payout_id},
    }
    # The PIN goes out exactly as the operator encrypted it; only Airtel's private key reads it.
    assert decrypt_pin(body["pin"]) == PLAIN_PIN
    # DP00900001001 with TS is final: no status query needed.
    assert (result.status, result.provider_reference) == ("succeeded", request.payout_id)
    assert fake.status.call_count == 0


async def test_a_fractional_amount_and_a_short_reference(
    airtel: AirtelProvider, fake: FakeDisbursements
) -> None:
    request = payout(amount=1_050, currency="UGX", reference="#1")
    await airtel.create_payout(request)
    body = json.loads(fake.disburse.calls.last.request.content)
    # UGX has no minor unit: 1050 is 1050 shillings; a reference under 4 letters/digits is our id.
    assert body["transaction"]["amount"] == 1050
    assert body["reference"] == request.payout_id.replace("_", "")


@pytest.mark.parametrize(
    ("phone", "code"), [(PAYEE_POOR, "insufficient_funds"), (PAYEE_LIMIT, "limit_exceeded")]
)
async def test_a_disbursement_airtel_refuses_is_a_failed_payout_and_not_asked_about(
    airtel: AirtelProvider, fake: FakeDisbursements, phone: str, code: str
) -> None:
    result = await airtel.create_payout(payout(phone))
    assert (result.status, result.failure_code) == ("failed", code)
    assert result.failure_message
    assert fake.disburse.call_count == 1
    assert fake.status.call_count == 0


async def test_an_unknown_refusal_is_payout_rejected_with_airtel_code(
    airtel: AirtelProvider, fake: FakeDisbursements
) -> None:
    body = {"data": {}, "status": {"response_code": "DP00900001099", "success": False, "code": "200"}}
    fake.disburse.mock(side_effect=None, return_value=httpx.Response(200, json=body))
    result = await airtel.create_payout(payout())
    assert (result.status, result.failure_code) == ("failed", "payout_rejected")
    assert "DP00900001099" in (result.failure_message or "")


async def test_ambiguous_then_resolved_by_the_status_query_never_resent(
    airtel: AirtelProvider, fake: FakeDisbursements
) -> None:
    request = payout(PAYEE_SLOW)
    first = await airtel.create_payout(request)
    assert (first.status, first.provider_reference) == ("pending", request.payout_id)
    kept = fake.kept[request.payout_id]

    assert (await airtel.fetch_payout(ref_of(request))).status == "pending"
    asked = fake.status.calls.last.request
    assert str(asked.url) == f"{DISBURSE}{request.payout_id}"
    assert (asked.headers["x-country"], asked.headers["x-currency"]) == ("UG", "UGX")
    kept.status, kept.code = "TS", "DP00900001001"
    assert (await airtel.fetch_payout(ref_of(request))).status == "succeeded"
    kept.status, kept.code = "TF", "DP00900001007"
    failed = await airtel.fetch_payout(ref_of(request))
    assert (failed.status, failed.failure_code) == ("failed", "insufficient_funds")
    assert fake.disburse.call_count == 1


async def test_a_timeout_is_never_resent_the_status_query_finds_the_disbursement(
    airtel: AirtelProvider, fake: FakeDisbursements
) -> None:
    def lost(request: httpx.Request) -> httpx.Response:
        fake.take(request)  # Airtel took it; its answer never arrived
        raise httpx.ReadTimeout("timed out")

    fake.disburse.mock(side_effect=lost)
    request = payout()
    with pytest.raises(ProviderTimedOut):
        await airtel.create_payout(request)
    assert fake.disburse.call_count == 1
    found = await airtel.fetch_payout(ref_of(request, age=200))
    assert (found.status, found.provider_reference) == ("succeeded", request.payout_id)
    assert fake.disburse.call_count == 1


@pytest.mark.parametrize("status", [500, 502, 503, 429])
async def test_a_5xx_leaves_the_payout_for_the_reconciler(
    airtel: AirtelProvider, fake: FakeDisbursements, status: int
) -> None:
    body = {"status": {"response_code": "ESB000001", "result_code": "ESB000001", "success": False}}
    fake.disburse.mock(side_effect=None, return_value=httpx.Response(status, json=body))
    with pytest.raises(ProviderTimedOut):
        await airtel.create_payout(payout())
    assert fake.disburse.call_count == 1
    assert fake.status.call_count == 0


async def test_a_duplicate_answer_is_read_as_already_created(
    airtel: AirtelProvider, fake: FakeDisbursements
) -> None:
    request = payout()
    # Airtel already holds this id (our one POST reached it before, e.g. through a retried connection).
    fake.kept[request.payout_id] = Disbursement(
        {"transaction": {"id": request.payout_id}}, status="TIP", code="DP00900001006"
    )
    result = await airtel.create_payout(request)
    assert (result.status, result.provider_reference) == ("pending", request.payout_id)
    assert fake.disburse.call_count == 1
    assert fake.status.call_count == 1
    fake.kept[request.payout_id].status = "TS"
    fake.disburse.reset()
    assert (await airtel.create_payout(request)).status == "succeeded"


async def test_an_unknown_disbursement_waits_then_fails_as_never_received(
    airtel: AirtelProvider, fake: FakeDisbursements
) -> None:
    request = payout()
    with pytest.raises(NoDisbursementYet):
        await airtel.fetch_payout(ref_of(request, age=60))
    gone = await airtel.fetch_payout(ref_of(request, age=3_601))
    assert (gone.status, gone.failure_code) == ("failed", "provider_not_found")
    assert fake.disburse.call_count == 0


# --- destinations, configuration ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("destination", "currency", "problem"),
    [
        (mobile_money(PAYEE), "UGX", None),
        (bank_account("0123456789", "044"), "UGX", "mobile_money destinations only"),
        (mobile_money("+254712345678"), "UGX", "takes only +256 numbers"),
        (PayoutDestination(type="mobile_money"), "UGX", "phone number"),
        (mobile_money(PAYEE), "KES", "does not pay out KES"),
    ],
)
def test_destinations_are_checked_before_the_payout_exists(
    airtel: AirtelProvider, destination: PayoutDestination, currency: str, problem: str | None
) -> None:
    check = airtel.payout_capabilities.check_destination
    assert check is not None
    found = check(destination, currency, False)
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert found[0] == "invalid_destination"
        assert problem in found[1]


async def test_without_a_pin_the_mode_does_not_pay_out_and_sends_nothing(
    gateway: Gateway, fake: FakeDisbursements
) -> None:
    adapter = await adapter_of(gateway, settings(pin=None))
    try:
        assert adapter.is_configured(False)
        assert not adapter.payouts_configured(False)
        assert not adapter.payouts_configured(True)
        with pytest.raises(ProviderMisconfigured):
            await adapter.create_payout(payout())
    finally:
        await adapter.aclose()
    assert fake.token.call_count == 0
    assert fake.disburse.call_count == 0


async def test_test_mode_payouts_never_reach_the_live_host(
    gateway: Gateway, provider_http: respx.Router, fake: FakeDisbursements
) -> None:
    live = FakeDisbursements(provider_http, base=LIVE_API)
    both = settings(
        live={
            "client_id": "live-client",
            "client_secret": "live-secret",
            "base_url": LIVE_API,
            "country": "UG",
            "disbursement_pin": ENCRYPTED_PIN,
        }
    )
    adapter = await adapter_of(gateway, both)
    try:
        assert (await adapter.create_payout(payout())).status == "succeeded"
    finally:
        await adapter.aclose()
    assert fake.disburse.call_count == 1
    assert (live.token.call_count, live.disburse.call_count) == (0, 0)


@pytest.mark.parametrize("pin", [PLAIN_PIN, "not base64!", "AAAA"])
def test_a_plain_or_malformed_pin_is_refused_by_the_settings_and_accounts(pin: str) -> None:
    with pytest.raises(ValidationError, match="ciphertext"):
        settings(pin=pin)
    with pytest.raises(ValidationError, match="ciphertext"):
        AirtelAccountCredentials.model_validate(
            {"client_id": "c", "client_secret": "s", "disbursement_pin": pin}
        )


def test_the_pin_never_shows_in_settings_or_accounts_reprs() -> None:
    configured = settings()
    assert ENCRYPTED_PIN not in repr(configured)
    account = configured.accounts().get(False)
    assert account is not None
    assert account.disbursement_pin == ENCRYPTED_PIN
    assert ENCRYPTED_PIN not in repr(account)


# --- callbacks -----------------------------------------------------------------------------------------


def test_a_disbursement_callback_is_a_hint_naming_our_payout(airtel: AirtelProvider) -> None:
    assert airtel.payout_capabilities.query_before_acting
    payload = {
        "transaction": {
            "id": "po_3kTz9QeXb4Wm2LpR8sVn",
            "message": "Paid UGX 5,000 to 752000009",
            "status_code": "TS",
            "airtel_money_id": "partner-po_3kTz9QeXb4Wm2LpR8sVn",
        }
    }
    body = orjson.dumps(payload)
    [event] = airtel.verify_webhook({CALLBACK_TOKEN_HEADER: AIRTEL_CALLBACK_TOKEN}, body)
    assert event.payout is not None
    assert (event.payout.payout_id, event.payout.provider_reference) == ("po_3kTz9QeXb4Wm2LpR8sVn",) * 2
    assert event.payout.result.status == "succeeded"
    assert (event.result, event.payment_id) == (None, None)
    assert event.event_id == "po_3kTz9QeXb4Wm2LpR8sVn:TS"
