"""Flutterwave payouts (v3 Transfers): the transfer exactly as sent, how every answer is read, the
status queries the reconciler makes, and transfer.completed webhooks as hints (docs/providers/
flutterwave.md, "Payouts"). Flutterwave is answered as it answers (payouts/flutterwave_fake.py).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
import respx

from gateway.providers.base import ProviderTimedOut, ProviderUnavailable
from gateway.providers.flutterwave.adapter import FlutterwaveProvider
from gateway.providers.flutterwave.payouts import NoTransferYet
from gateway.providers.payouts import PayoutRequest
from gateway.settings import FlutterwaveSettings
from payouts.adapter_calls import bank_account, mobile_money, payout_request, ref_of
from payouts.flutterwave_fake import LOW_BALANCE, TRANSFERS, FakeTransfers, verif_hash
from support import FLUTTERWAVE_API, FLUTTERWAVE_SECRET_HASH, FLUTTERWAVE_SECRET_KEY

SENDER = {
    "transfer_sender": "Duka Ltd",
    "transfer_sender_country": "KE",
    "transfer_sender_mobile": "254700111222",
}


@pytest.fixture
async def flutterwave() -> AsyncIterator[FlutterwaveProvider]:
    mode = {"secret_key": FLUTTERWAVE_SECRET_KEY, "secret_hash": FLUTTERWAVE_SECRET_HASH, **SENDER}
    adapter = FlutterwaveProvider(FlutterwaveSettings(test=mode, base_url=FLUTTERWAVE_API), 2)
    yield adapter
    await adapter.aclose()


@pytest.fixture
def fake(provider_http: respx.Router) -> FakeTransfers:
    return FakeTransfers(provider_http)


def nigerian_bank(**over: Any) -> PayoutRequest:
    return payout_request(bank_account("0690000040", "044"), amount=550_050, currency="NGN", **over)


def sent(fake: FakeTransfers) -> Any:
    return json.loads(fake.create.calls.last.request.content, parse_float=Decimal)


async def test_a_bank_transfer_is_sent_with_our_reference_and_the_exact_amount(
    flutterwave: FlutterwaveProvider, fake: FakeTransfers
) -> None:
    request = nigerian_bank()
    result = await flutterwave.create_payout(request)
    call = fake.create.calls.last.request
    assert (call.method, str(call.url)) == ("POST", TRANSFERS)
    assert call.headers["authorization"] == f"Bearer {FLUTTERWAVE_SECRET_KEY}"
    assert b'"amount":5500.50' in call.content  # the exact major-unit literal, not a float's digits
    assert sent(fake) == {
        "account_bank": "044",
        "account_number": "0690000040",
        "amount": Decimal("5500.50"),
        "currency": "NGN",
        "reference": request.payout_id,
        "narration": "Payout rider-week-48",
        "beneficiary_name": "Adaeze Okafor",
        "meta": {"sender": "Duka Ltd", "sender_country": "KE", "mobile_number": "254700111222"},
    }
    kept = fake.transfers[request.payout_id]
    assert (result.status, result.provider_reference) == ("pending", str(kept.id))


async def test_mobile_money_goes_to_the_operator_with_the_full_number(
    flutterwave: FlutterwaveProvider, fake: FakeTransfers
) -> None:
    await flutterwave.create_payout(
        payout_request(mobile_money("+254712345678"), amount=120_000, currency="KES")
    )
    body = sent(fake)
    assert (body["account_bank"], body["account_number"], body["amount"]) == ("MPS", "254712345678", 1200)
    await flutterwave.create_payout(
        payout_request(mobile_money("+256772123456", bank_code="MTN"), amount=5_000, currency="UGX")
    )
    body = sent(fake)
    assert (body["account_bank"], body["account_number"], body["amount"]) == ("MTN", "256772123456", 5000)


async def test_a_refusal_is_failed_and_a_low_balance_is_insufficient_funds(
    flutterwave: FlutterwaveProvider, fake: FakeTransfers
) -> None:
    fake.create.mock(
        side_effect=None,
        return_value=httpx.Response(400, json={"status": "error", "message": LOW_BALANCE, "data": None}),
    )
    result = await flutterwave.create_payout(nigerian_bank())
    assert (result.status, result.failure_code, result.failure_message) == (
        "failed",
        "insufficient_funds",
        LOW_BALANCE,
    )
    fake.create.mock(
        return_value=httpx.Response(
            400, json={"status": "error", "message": "Please enable IP Whitelisting", "data": None}
        )
    )
    result = await flutterwave.create_payout(nigerian_bank())
    assert (result.status, result.failure_code) == ("failed", "transfer_rejected")


async def test_new_then_successful_by_the_status_query(
    flutterwave: FlutterwaveProvider, fake: FakeTransfers
) -> None:
    request = nigerian_bank()
    first = await flutterwave.create_payout(request)
    kept = fake.transfers[request.payout_id]
    assert (
        await flutterwave.fetch_payout(ref_of(request, provider_reference=first.provider_reference))
    ).status == ("pending")
    kept.status, kept.complete_message = "SUCCESSFUL", "Transaction was successful"
    done = await flutterwave.fetch_payout(ref_of(request, provider_reference=first.provider_reference))
    assert (done.status, done.amount, done.currency) == ("succeeded", 550_050, "NGN")
    assert str(fake.by_id.calls.last.request.url) == f"{TRANSFERS}/{kept.id}"
    kept.status, kept.complete_message = "FAILED", LOW_BALANCE
    failed = await flutterwave.fetch_payout(ref_of(request, provider_reference=first.provider_reference))
    assert (failed.status, failed.failure_code, failed.failure_message) == (
        "failed",
        "insufficient_funds",
        LOW_BALANCE,
    )
    assert fake.create.call_count == 1


async def test_a_timeout_is_never_resent_the_reference_finds_the_transfer(
    flutterwave: FlutterwaveProvider, fake: FakeTransfers
) -> None:
    def lost(request: httpx.Request) -> httpx.Response:
        fake._create(request)
        raise httpx.ReadTimeout("timed out")

    fake.create.mock(side_effect=lost)
    request = nigerian_bank()
    with pytest.raises(ProviderTimedOut):
        await flutterwave.create_payout(request)
    fake.transfers[request.payout_id].status = "SUCCESSFUL"
    result = await flutterwave.fetch_payout(ref_of(request))  # no Flutterwave id known: by our reference
    assert fake.listed.calls.last.request.url.params["reference"] == request.payout_id
    assert (result.status, result.provider_reference) == (
        "succeeded",
        str(fake.transfers[request.payout_id].id),
    )
    assert fake.create.call_count == 1


async def test_a_reference_flutterwave_already_holds_is_that_transfer(
    flutterwave: FlutterwaveProvider, fake: FakeTransfers
) -> None:
    request = nigerian_bank()
    await flutterwave.create_payout(request)
    fake.transfers[request.payout_id].status = "SUCCESSFUL"
    again = await flutterwave.create_payout(request)  # never done by the gateway; Flutterwave's 400 read
    assert again.status == "succeeded"
    assert fake.create.call_count == 2
    assert len(fake.transfers) == 1


async def test_a_transfer_naming_another_reference_is_not_trusted(
    flutterwave: FlutterwaveProvider, fake: FakeTransfers
) -> None:
    request = nigerian_bank()
    first = await flutterwave.create_payout(request)
    fake.transfers[request.payout_id].body["reference"] = "someone-else"
    with pytest.raises(ProviderUnavailable):
        await flutterwave.fetch_payout(ref_of(request, provider_reference=first.provider_reference))


async def test_a_transfer_flutterwave_never_received_fails_only_after_the_grace(
    flutterwave: FlutterwaveProvider, fake: FakeTransfers
) -> None:
    request = nigerian_bank()
    with pytest.raises(NoTransferYet):
        await flutterwave.fetch_payout(ref_of(request, age=30))
    gone = await flutterwave.fetch_payout(ref_of(request, age=601))
    assert (gone.status, gone.failure_code) == ("failed", "provider_not_found")


@pytest.mark.parametrize(
    ("destination", "problem"),
    [
        (bank_account("0690000040", "044", name=None), "beneficiary's name"),
        (mobile_money("+233241234567"), "operator"),
        (mobile_money("0241234567", bank_code="MTN"), "E.164"),
    ],
)
def test_what_flutterwave_cannot_pay_is_refused_first(
    flutterwave: FlutterwaveProvider, destination: Any, problem: str
) -> None:
    check = flutterwave.payout_capabilities.check_destination
    assert check is not None
    found = check(destination, "GHS", False)
    assert found is not None
    assert found[0] == "invalid_destination"
    assert problem in found[1]


async def test_transfer_completed_is_a_hint_naming_the_payout(
    flutterwave: FlutterwaveProvider, fake: FakeTransfers
) -> None:
    request = nigerian_bank()
    await flutterwave.create_payout(request)
    kept = fake.transfers[request.payout_id]
    kept.status = "SUCCESSFUL"
    [event] = flutterwave.verify_webhook(verif_hash(), kept.webhook())
    assert event.payout is not None
    assert (event.payout.payout_id, event.payout.provider_reference) == (request.payout_id, str(kept.id))
    assert event.payout.result.status == "succeeded"
    assert event.event_id == f"transfer.completed:{kept.id}:SUCCESSFUL"
    assert flutterwave.payout_capabilities.query_before_acting is True
    # The older shape some accounts still get names the same transfer.
    legacy = json.dumps({"event.type": "Transfer", "transfer": kept.data()}).encode()
    [old] = flutterwave.verify_webhook(verif_hash(), legacy)
    assert old.payout is not None
    assert old.payout.payout_id == request.payout_id
    # A reference not of ours names no payout.
    other = json.loads(kept.webhook())
    other["data"]["reference"] = "akhlm-pstmnpyt-r02ens007_PMCKDU_1"
    [foreign] = flutterwave.verify_webhook(verif_hash(), json.dumps(other).encode())
    assert foreign.payout is not None
    assert (foreign.payout.payout_id, foreign.payout.provider_reference) == (None, None)
