"""Paystack payouts (Transfers): the recipient then the transfer, exactly as sent, and how every answer
and transfer.* webhook is read (docs/providers/paystack.md, "Payouts"). Paystack is answered as it
answers (payouts/paystack_fake.py); webhooks are signed with hmac/hashlib (drivers/paystack.sign).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
import respx

from drivers.paystack import sign
from gateway.providers.base import ProviderTimedOut, ProviderUnavailable
from gateway.providers.payouts import PayoutRequest
from gateway.providers.paystack.adapter import PaystackProvider
from gateway.providers.paystack.payouts import NoTransferYet
from gateway.settings import PaystackSettings
from payouts.adapter_calls import bank_account, mobile_money, payout_request, ref_of
from payouts.paystack_fake import LOW_BALANCE, RECIPIENT, TRANSFER, VERIFY, FakeTransfers
from support import PAYSTACK_API, PAYSTACK_SECRET_KEY

LIVE_KEY = "sk_live_paystack0000000000000000000000000000"


@pytest.fixture
async def paystack() -> AsyncIterator[PaystackProvider]:
    adapter = PaystackProvider(
        PaystackSettings(test={"secret_key": PAYSTACK_SECRET_KEY}, base_url=PAYSTACK_API), 2
    )
    yield adapter
    await adapter.aclose()


@pytest.fixture
def fake(provider_http: respx.Router) -> FakeTransfers:
    return FakeTransfers(provider_http)


def ghana_momo(**over: Any) -> PayoutRequest:
    return payout_request(
        mobile_money("+233551234987", bank_code="MTN"), amount=12_550, currency="GHS", **over
    )


def nigerian_bank() -> PayoutRequest:
    return payout_request(bank_account("0123456789", "058"), amount=500_000, currency="NGN")


# --- recipient, then transfer --------------------------------------------------------------------------


async def test_a_payout_is_a_recipient_then_a_transfer_under_our_reference(
    paystack: PaystackProvider, fake: FakeTransfers
) -> None:
    request = ghana_momo()
    result = await paystack.create_payout(request)

    recipient = fake.recipient.calls.last.request
    assert (recipient.method, str(recipient.url)) == ("POST", RECIPIENT)
    assert recipient.headers["authorization"] == f"Bearer {PAYSTACK_SECRET_KEY}"
    assert json.loads(recipient.content) == {
        "name": "Wanjiru Kamau",
        "currency": "GHS",
        "type": "mobile_money",
        "account_number": "0551234987",
        "bank_code": "MTN",
    }
    [code] = fake.recipients.values()
    transfer = fake.transfer.calls.last.request
    assert (transfer.method, str(transfer.url)) == ("POST", TRANSFER)
    assert json.loads(transfer.content) == {
        "source": "balance",
        "amount": 12_550,
        "currency": "GHS",
        "recipient": code,
        "reference": f"{request.payout_id}-test",
        "reason": "Payout rider-week-48",
    }
    kept = fake.transfers[f"{request.payout_id}-test"]
    assert (result.status, result.provider_reference) == ("pending", kept.code)
    assert (fake.recipient.call_count, fake.transfer.call_count, fake.verify.call_count) == (1, 1, 0)


async def test_a_bank_account_recipient_takes_the_currencys_type(
    paystack: PaystackProvider, fake: FakeTransfers
) -> None:
    await paystack.create_payout(nigerian_bank())
    sent = json.loads(fake.recipient.calls.last.request.content)
    assert (sent["type"], sent["account_number"], sent["bank_code"], sent["currency"]) == (
        "nuban",
        "0123456789",
        "058",
        "NGN",
    )
    assert json.loads(fake.transfer.calls.last.request.content)["amount"] == 500_000


async def test_a_recipient_is_made_again_for_each_payout_and_paystack_answers_the_same_one(
    paystack: PaystackProvider, fake: FakeTransfers
) -> None:
    await paystack.create_payout(nigerian_bank())
    await paystack.create_payout(nigerian_bank())
    assert fake.recipient.call_count == 2
    first, second = (json.loads(c.request.content)["recipient"] for c in fake.transfer.calls)
    assert first == second
    assert len(fake.transfers) == 2


async def test_an_immediate_success_is_succeeded(paystack: PaystackProvider, fake: FakeTransfers) -> None:
    fake.initial = "success"
    result = await paystack.create_payout(ghana_momo())
    assert (result.status, result.amount, result.currency) == ("succeeded", 12_550, "GHS")


async def test_an_otp_account_is_refused_clearly(paystack: PaystackProvider, fake: FakeTransfers) -> None:
    fake.initial = "otp"
    result = await paystack.create_payout(ghana_momo())
    assert (result.status, result.failure_code) == ("failed", "transfers_otp_enabled")
    assert result.failure_message is not None
    assert "disable the transfers OTP" in result.failure_message
    assert fake.transfer.call_count == 1  # never finalized, never sent again


async def test_a_balance_too_low_is_insufficient_funds(
    paystack: PaystackProvider, fake: FakeTransfers
) -> None:
    fake.transfer.mock(side_effect=None, return_value=httpx.Response(400, json=LOW_BALANCE))
    result = await paystack.create_payout(ghana_momo())
    assert (result.status, result.failure_code) == ("failed", "insufficient_funds")
    assert result.failure_message == LOW_BALANCE["message"]


async def test_a_refused_recipient_fails_and_no_transfer_is_asked_for(
    paystack: PaystackProvider, fake: FakeTransfers
) -> None:
    fake.recipient.mock(
        side_effect=None,
        return_value=httpx.Response(422, json={"status": False, "message": "Cannot resolve account"}),
    )
    result = await paystack.create_payout(nigerian_bank())
    assert (result.status, result.failure_code, result.failure_message) == (
        "failed",
        "recipient_rejected",
        "Cannot resolve account",
    )
    assert fake.transfer.call_count == 0


async def test_a_recipient_timeout_fails_for_certain_nothing_was_sent(
    paystack: PaystackProvider, fake: FakeTransfers
) -> None:
    fake.recipient.mock(side_effect=httpx.ConnectTimeout("timed out"))
    result = await paystack.create_payout(nigerian_bank())
    assert (result.status, result.failure_code) == ("failed", "provider_unavailable")
    assert fake.transfer.call_count == 0


async def test_a_transfer_timeout_after_the_recipient_is_never_resent(
    paystack: PaystackProvider, fake: FakeTransfers
) -> None:
    def lost(request: httpx.Request) -> httpx.Response:
        fake._transfer(request)  # Paystack queued it; the answer never came back
        raise httpx.ReadTimeout("timed out")

    fake.transfer.mock(side_effect=lost)
    request = ghana_momo()
    with pytest.raises(ProviderTimedOut):
        await paystack.create_payout(request)
    assert (fake.recipient.call_count, fake.transfer.call_count) == (1, 1)

    kept = fake.transfers[f"{request.payout_id}-test"]
    kept.status = "success"
    result = await paystack.fetch_payout(ref_of(request))
    assert str(fake.verify.calls.last.request.url) == f"{VERIFY}/{request.payout_id}-test"
    assert (result.status, result.provider_reference, result.amount) == ("succeeded", kept.code, 12_550)
    assert (fake.recipient.call_count, fake.transfer.call_count) == (1, 1)


async def test_a_reference_paystack_already_holds_is_that_transfer(
    paystack: PaystackProvider, fake: FakeTransfers
) -> None:
    request = ghana_momo()
    fake.initial = "success"
    fake._transfer(
        httpx.Request(
            "POST",
            TRANSFER,
            json={
                "amount": 12_550,
                "currency": "GHS",
                "reference": f"{request.payout_id}-test",
                "reason": "x",
            },
        )
    )
    result = await paystack.create_payout(request)
    assert result.status == "succeeded"
    assert (fake.transfer.call_count, fake.verify.call_count) == (1, 1)


@pytest.mark.parametrize(
    ("status", "ours", "code"),
    [
        ("pending", "pending", None),
        ("received", "pending", None),
        ("success", "succeeded", None),
        ("failed", "failed", "transfer_failed"),
        ("reversed", "failed", "transfer_reversed"),
        ("abandoned", "failed", "transfers_otp_enabled"),
        ("rejected", "failed", "transfer_rejected"),
    ],
)
async def test_verify_statuses(
    paystack: PaystackProvider, fake: FakeTransfers, status: str, ours: str, code: str | None
) -> None:
    request = ghana_momo()
    await paystack.create_payout(request)
    fake.transfers[f"{request.payout_id}-test"].status = status
    result = await paystack.fetch_payout(ref_of(request))
    assert (result.status, result.failure_code) == (ours, code)


async def test_an_unknown_status_is_not_guessed(paystack: PaystackProvider, fake: FakeTransfers) -> None:
    request = ghana_momo()
    await paystack.create_payout(request)
    fake.transfers[f"{request.payout_id}-test"].status = "teleported"
    with pytest.raises(ProviderUnavailable):
        await paystack.fetch_payout(ref_of(request))


async def test_a_transfer_paystack_never_received_fails_only_after_the_grace(
    paystack: PaystackProvider, fake: FakeTransfers
) -> None:
    request = ghana_momo()
    with pytest.raises(NoTransferYet):
        await paystack.fetch_payout(ref_of(request, age=30))
    gone = await paystack.fetch_payout(ref_of(request, age=601))
    assert (gone.status, gone.failure_code) == ("failed", "provider_not_found")


# --- destinations -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("destination", "currency", "problem"),
    [
        (mobile_money("+233551234987", name=None, bank_code="MTN"), "GHS", "recipient's name"),
        (mobile_money("+233551234987"), "GHS", "operator's code"),
        (mobile_money("+2348012345678", bank_code="MTN"), "NGN", "mobile money in GHS, KES only"),
        (bank_account("0123456789", "058"), "USD", "bank accounts in GHS, KES, NGN, ZAR only"),
    ],
)
def test_what_paystack_cannot_pay_is_refused_first(
    paystack: PaystackProvider, destination: object, currency: str, problem: str
) -> None:
    check = paystack.payout_capabilities.check_destination
    assert check is not None
    found = check(destination, currency, False)  # type: ignore[arg-type]
    assert found is not None
    assert found[0] == "invalid_destination"
    assert problem in found[1]


async def test_kenyan_mobile_money_goes_to_mpesa_by_default(
    paystack: PaystackProvider, fake: FakeTransfers
) -> None:
    check = paystack.payout_capabilities.check_destination
    assert check is not None
    assert check(mobile_money("+254712345678"), "KES", False) is None
    await paystack.create_payout(
        payout_request(mobile_money("+254712345678"), amount=100_000, currency="KES")
    )
    sent = json.loads(fake.recipient.calls.last.request.content)
    assert (sent["type"], sent["bank_code"], sent["account_number"]) == (
        "mobile_money",
        "MPESA",
        "0712345678",
    )


# --- transfer webhooks --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "ours", "code"),
    [
        ("transfer.success", "succeeded", None),
        ("transfer.failed", "failed", "transfer_failed"),
        ("transfer.reversed", "failed", "transfer_reversed"),
    ],
)
async def test_transfer_webhooks_are_the_payouts_outcome(
    paystack: PaystackProvider, fake: FakeTransfers, name: str, ours: str, code: str | None
) -> None:
    request = ghana_momo()
    await paystack.create_payout(request)
    kept = fake.transfers[f"{request.payout_id}-test"]
    body = orjson.dumps(kept.event(name))
    [event] = paystack.verify_webhook(sign(body), body)
    assert event.payout is not None
    assert (event.payout.payout_id, event.payout.provider_reference) == (request.payout_id, kept.code)
    assert (event.payout.result.status, event.payout.result.failure_code) == (ours, code)
    assert event.event_id == f"test:{name}:{request.payout_id}-test"
    assert (event.result, event.refund_result) == (None, None)
    assert paystack.payout_capabilities.query_before_acting is False  # signed: proof


async def test_a_test_signed_event_names_no_live_payout() -> None:
    adapter = PaystackProvider(
        PaystackSettings(
            test={"secret_key": PAYSTACK_SECRET_KEY}, live={"secret_key": LIVE_KEY}, base_url=PAYSTACK_API
        ),
        2,
    )
    try:
        live = payout_request(
            bank_account("0123456789", "058"), amount=500_000, currency="NGN", livemode=True
        )
        data = {"reference": live.payout_id, "status": "success", "amount": 500_000, "currency": "NGN"}
        body = orjson.dumps({"event": "transfer.success", "data": {**data, "domain": "test"}})
        [event] = adapter.verify_webhook(sign(body), body)
        assert event.payout is not None
        assert (event.payout.payout_id, event.payout.provider_reference) == (None, None)
        signed_live = orjson.dumps({"event": "transfer.success", "data": {**data, "domain": "live"}})
        [real] = adapter.verify_webhook(sign(signed_live, LIVE_KEY), signed_live)
        assert real.payout is not None
        assert real.payout.payout_id == live.payout_id
    finally:
        await adapter.aclose()
