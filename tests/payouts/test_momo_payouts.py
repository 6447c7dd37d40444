"""MTN MoMo payouts (Disbursement transfers): the exact requests the adapter's payout side sends and how
it reads every answer (docs/providers/momo.md, "Payouts").

MoMo is answered by respx as it answers (payouts/momo_fake.py); the token cache runs on the gateway's
real Redis.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
import respx
from pydantic import SecretStr

from gateway.kit.ids import new_id
from gateway.providers.base import (
    CALLBACK_TOKEN_HEADER,
    ProviderMisconfigured,
    ProviderTimedOut,
    ProviderUnavailable,
)
from gateway.providers.momo.adapter import TOKEN_KEY_PREFIX, MomoProvider
from gateway.providers.momo.payouts import NoTransferYet
from gateway.providers.payouts import PayoutDestination, PayoutRequest, payout_side
from gateway.settings import MomoSettings
from payouts.adapter_calls import mobile_money, payout_request, ref_of
from payouts.helpers import forget_tokens
from payouts.momo_fake import (
    DISBURSEMENT_TOKEN,
    LIVE_API,
    PAYEE,
    TRANSFER,
    FakeDisbursement,
    Transfer,
    reference_id,
)
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
)


def settings(**over: Any) -> MomoSettings:
    values: dict[str, Any] = {
        "test": {
            "subscription_key": MOMO_SUBSCRIPTION_KEY,
            "api_user": MOMO_API_USER,
            "api_key": MOMO_API_KEY,
            "base_url": MOMO_API,
            "disbursement_subscription_key": MOMO_DISBURSEMENT_SUBSCRIPTION_KEY,
            "disbursement_api_user": MOMO_DISBURSEMENT_API_USER,
            "disbursement_api_key": MOMO_DISBURSEMENT_API_KEY,
        },
        "callback_token": SecretStr(MOMO_CALLBACK_TOKEN),
        **over,
    }
    return MomoSettings.model_validate(values)


@pytest.fixture
async def momo(gateway: Gateway) -> AsyncIterator[MomoProvider]:
    await forget_tokens(gateway, TOKEN_KEY_PREFIX)
    adapter = MomoProvider(settings(), gateway.ctx.redis, gateway.base_url + "/v1/webhooks/momo", 2)
    yield adapter
    await adapter.aclose()


@pytest.fixture
def fake(provider_http: respx.Router) -> FakeDisbursement:
    return FakeDisbursement(provider_http)


def payout(phone: str = PAYEE, *, amount: int = 5_000, currency: str = "EUR", **over: Any) -> PayoutRequest:
    return payout_request(mobile_money(phone), amount=amount, currency=currency, **over)


def basic(user: str, key: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{key}".encode()).decode()


# --- the transfer ------------------------------------------------------------------------------------


async def test_a_payout_sends_the_exact_disbursement_requests(
    gateway: Gateway, momo: MomoProvider, fake: FakeDisbursement
) -> None:
    request = payout()
    result = await momo.create_payout(request)
    ref = reference_id(request.payout_id)

    token = fake.token.calls.last.request
    assert token.headers["authorization"] == basic(MOMO_DISBURSEMENT_API_USER, MOMO_DISBURSEMENT_API_KEY)
    assert token.headers["ocp-apim-subscription-key"] == MOMO_DISBURSEMENT_SUBSCRIPTION_KEY

    assert fake.transfer.call_count == 1
    sent = fake.transfer.calls.last.request
    assert (sent.method, str(sent.url)) == ("POST", TRANSFER)
    assert sent.headers["authorization"] == f"Bearer {DISBURSEMENT_TOKEN}"
    assert sent.headers["x-reference-id"] == ref
    assert sent.headers["x-target-environment"] == "sandbox"
    assert sent.headers["ocp-apim-subscription-key"] == MOMO_DISBURSEMENT_SUBSCRIPTION_KEY
    assert sent.headers["x-callback-url"] == f"{gateway.base_url}/v1/webhooks/momo/{MOMO_CALLBACK_TOKEN}"
    assert json.loads(sent.content) == {
        "amount": "50",
        "currency": "EUR",
        "externalId": request.payout_id,
        "payee": {"partyIdType": "MSISDN", "partyId": "46733123499"},
        "payerMessage": "Payout rider-week-48",
        "payeeNote": "rider-week-48",
    }
    # Asked at once, so a payee MoMo refuses is a failed payout now; this one is under way.
    status = fake.status.calls.last.request
    assert (status.method, str(status.url)) == ("GET", f"{TRANSFER}/{ref}")
    assert status.headers["authorization"] == f"Bearer {DISBURSEMENT_TOKEN}"
    assert "x-reference-id" not in status.headers
    assert (result.status, result.provider_reference) == ("pending", ref)


async def test_a_successful_transfer_is_succeeded_with_the_amount_momo_names(
    momo: MomoProvider, fake: FakeDisbursement
) -> None:
    fake.outcome = ("SUCCESSFUL", None)
    request = payout(amount=1_050)
    result = await momo.create_payout(request)
    assert (result.status, result.amount, result.currency) == ("succeeded", 1_050, "EUR")
    assert json.loads(fake.transfer.calls.last.request.content)["amount"] == "10.50"


@pytest.mark.parametrize(
    ("reason", "code"),
    [
        ("PAYEE_NOT_FOUND", "recipient_not_found"),
        ("NOT_ENOUGH_FUNDS", "insufficient_funds"),
        ("PAYEE_NOT_ALLOWED_TO_RECEIVE", "recipient_not_allowed"),
        ("NOT_ALLOWED", "not_allowed"),
        ("SOMETHING_NEW", "payout_failed"),
    ],
)
async def test_a_transfer_momo_fails_at_once_is_a_failed_payout(
    momo: MomoProvider, fake: FakeDisbursement, reason: str, code: str
) -> None:
    fake.outcome = ("FAILED", reason)
    result = await momo.create_payout(payout())
    assert (result.status, result.failure_code) == ("failed", code)
    assert result.failure_message


async def test_a_refused_transfer_is_failed_and_not_asked_about(
    momo: MomoProvider, fake: FakeDisbursement
) -> None:
    fake.transfer.mock(
        side_effect=None, return_value=httpx.Response(400, json={"code": "INVALID_CURRENCY", "message": "x"})
    )
    result = await momo.create_payout(payout())
    assert (result.status, result.failure_code) == ("failed", "currency_not_supported")
    assert fake.transfer.call_count == 1
    assert fake.status.call_count == 0


async def test_pending_then_resolved_by_the_status_query(momo: MomoProvider, fake: FakeDisbursement) -> None:
    request = payout()
    first = await momo.create_payout(request)
    assert first.status == "pending"
    kept = fake.transfers[reference_id(request.payout_id)]

    assert (await momo.fetch_payout(ref_of(request, provider_reference=first.provider_reference))).status == (
        "pending"
    )
    kept.status = "SUCCESSFUL"
    done = await momo.fetch_payout(ref_of(request, provider_reference=first.provider_reference))
    assert (done.status, done.amount, done.currency) == ("succeeded", 5_000, "EUR")
    kept.status, kept.reason = "FAILED", "NOT_ENOUGH_FUNDS"
    failed = await momo.fetch_payout(ref_of(request))
    assert (failed.status, failed.failure_code) == ("failed", "insufficient_funds")
    assert fake.transfer.call_count == 1


async def test_a_timeout_is_never_resent_the_status_query_finds_the_transfer(
    momo: MomoProvider, fake: FakeDisbursement
) -> None:
    def lost(request: httpx.Request) -> httpx.Response:
        fake._transfer(request)  # MoMo took it; its answer never arrived
        raise httpx.ReadTimeout("timed out")

    fake.transfer.mock(side_effect=lost)
    request = payout()
    with pytest.raises(ProviderTimedOut):
        await momo.create_payout(request)
    assert fake.transfer.call_count == 1
    assert fake.status.call_count == 0

    fake.transfers[reference_id(request.payout_id)].status = "SUCCESSFUL"
    result = await momo.fetch_payout(ref_of(request))  # the reconciler's question, by our reference
    assert (result.status, result.provider_reference) == ("succeeded", reference_id(request.payout_id))
    assert fake.transfer.call_count == 1


async def test_a_transfer_momo_never_received_fails_only_after_the_grace(
    momo: MomoProvider, fake: FakeDisbursement
) -> None:
    request = payout()
    with pytest.raises(NoTransferYet):
        await momo.fetch_payout(ref_of(request, age=60))
    gone = await momo.fetch_payout(ref_of(request, age=601))
    assert (gone.status, gone.failure_code) == ("failed", "provider_not_found")
    assert fake.transfer.call_count == 0


async def test_a_409_is_the_transfer_already_made(momo: MomoProvider, fake: FakeDisbursement) -> None:
    request = payout()
    fake.transfers[reference_id(request.payout_id)] = Transfer(
        {
            "amount": "50",
            "currency": "EUR",
            "externalId": request.payout_id,
            "payee": {"partyIdType": "MSISDN", "partyId": "46733123499"},
            "payerMessage": "Payout rider-week-48",
            "payeeNote": "rider-week-48",
        },
        "SUCCESSFUL",
    )
    result = await momo.create_payout(request)
    assert result.status == "succeeded"
    assert fake.transfer.call_count == 1


async def test_a_status_naming_another_payout_is_not_trusted(
    momo: MomoProvider, fake: FakeDisbursement
) -> None:
    request = payout()
    await momo.create_payout(request)
    fake.transfers[reference_id(request.payout_id)].body["externalId"] = new_id("po")
    with pytest.raises(ProviderUnavailable, match="another externalId"):
        await momo.fetch_payout(ref_of(request))


# --- destinations, modes, configuration ----------------------------------------------------------------


async def test_only_mobile_money_of_the_environments_country_is_paid(gateway: Gateway) -> None:
    adapter = MomoProvider(
        settings(
            live={
                "base_url": LIVE_API,
                "target_environment": "mtnuganda",
                "disbursement_subscription_key": "live-sub",
                "disbursement_api_user": "7e6d5c4b-3a29-4180-9f7e-6d5c4b3a2919",
                "disbursement_api_key": "live-key",
            }
        ),
        gateway.ctx.redis,
        gateway.base_url + "/v1/webhooks/momo",
        2,
    )
    try:
        check = adapter.payout_capabilities.check_destination
        assert check is not None
        bank = PayoutDestination(type="bank_account", account_number="0123456789", bank_code="058")
        assert check(bank, "UGX", True) == (
            "invalid_destination",
            "MTN MoMo pays out to mobile_money destinations only.",
        )
        kenyan = PayoutDestination(type="mobile_money", phone="+254712345678")
        assert check(kenyan, "UGX", True) == (
            "invalid_destination",
            "MTN MoMo (mtnuganda) takes only +256 numbers.",
        )
        assert check(PayoutDestination(type="mobile_money", phone="+256772123456"), "UGX", True) is None
        assert check(kenyan, "EUR", False) is None  # the sandbox takes any number
        assert adapter.payout_capabilities.query_before_acting is True
        assert adapter.payout_capabilities.destination_types == frozenset({"mobile_money"})
    finally:
        await adapter.aclose()


async def test_test_mode_payouts_never_reach_the_live_host(
    gateway: Gateway, provider_http: respx.Router
) -> None:
    test = FakeDisbursement(provider_http)
    live = FakeDisbursement(provider_http, LIVE_API)
    adapter = MomoProvider(
        settings(
            live={
                "base_url": LIVE_API,
                "target_environment": "mtnuganda",
                "disbursement_subscription_key": "live-sub",
                "disbursement_api_user": "7e6d5c4b-3a29-4180-9f7e-6d5c4b3a2919",
                "disbursement_api_key": "live-key",
            }
        ),
        gateway.ctx.redis,
        gateway.base_url + "/v1/webhooks/momo",
        2,
    )
    try:
        assert (await adapter.create_payout(payout())).status == "pending"
        assert (test.transfer.call_count, live.transfer.call_count, live.token.call_count) == (1, 0, 0)
        assert test.transfer.calls.last.request.headers["x-target-environment"] == "sandbox"
    finally:
        await adapter.aclose()


async def test_without_disbursement_credentials_nothing_pays_out(gateway: Gateway) -> None:
    adapter = MomoProvider(
        settings(
            test={"subscription_key": "k", "api_user": MOMO_API_USER, "api_key": "s", "base_url": MOMO_API}
        ),
        gateway.ctx.redis,
        gateway.base_url + "/v1/webhooks/momo",
        2,
    )
    try:
        assert payout_side(adapter) is adapter
        assert (adapter.payouts_configured(False), adapter.payouts_configured(True)) == (False, False)
        with pytest.raises(ProviderMisconfigured):
            await adapter.create_payout(payout())
    finally:
        await adapter.aclose()


# --- callbacks ---------------------------------------------------------------------------------------


async def test_a_transfer_callback_names_the_payout_and_is_only_a_hint(
    momo: MomoProvider, fake: FakeDisbursement
) -> None:
    request = payout()
    await momo.create_payout(request)
    kept = fake.transfers[reference_id(request.payout_id)]
    kept.status = "SUCCESSFUL"
    body = orjson.dumps(kept.status_body())
    headers = {"content-type": "application/json", CALLBACK_TOKEN_HEADER: MOMO_CALLBACK_TOKEN}

    [event] = momo.verify_webhook(headers, body)
    assert event.payout is not None
    assert (event.payout.payout_id, event.payout.provider_reference) == (
        request.payout_id,
        reference_id(request.payout_id),
    )
    assert event.payout.result.status == "succeeded"
    assert (event.result, event.refund_result, event.payment_id) == (None, None, None)
    assert event.event_id == f"{reference_id(request.payout_id)}:SUCCESSFUL"
    # The same callback again is the same event (the inbox keeps it once).
    [again] = momo.verify_webhook(headers, body)
    assert again.event_id == event.event_id
    assert momo.interpret_webhook(json.loads(body)).event_id == event.event_id
