"""The API process SIGKILLed in the middle of a burst of creates, and started again.

Payments are saved-card charges at the Paystack stand-in, which takes each charge and answers it
0.3 s later, so the kill lands while charges are in flight: the payment row is committed as
`pending`, Paystack has the money, the gateway never heard. Clients keep retrying their own keys
(broken connections, then 409 while a dead request's claim or lease runs out); the restarted API
resumes each pending payment with the same Paystack reference, which Paystack refuses as a
duplicate, so the gateway asks (verify) instead of charging again.
"""

from __future__ import annotations

import asyncio
import uuid

import httpx

from faults.counting import Tally, ledger, report, until_final
from faults.peers import FakePaystack, paystack_reference
from faults.processes import FaultServers, GatewayProcess, database
from support import Merchant, wait_for

N = 40
BODY = {
    "amount": 7_300,
    "currency": "NGN",
    "provider": "paystack",
    "payment_method": "AUTH_faultsuite03",
    "customer": {"email": "amina@example.com"},
}


async def test_clients_retrying_against_a_restarted_api_get_exactly_one_payment_each(
    api: GatewayProcess,
    merchant_client: httpx.AsyncClient,
    fault_servers: FaultServers,
    fault_merchant: Merchant,
    paystack: FakePaystack,
) -> None:
    paystack.answer_after = 0.3
    keys = [f"api-kill-{uuid.uuid4()}" for _ in range(N)]
    tally = Tally()
    answered: list[str] = []
    gate = asyncio.Semaphore(8)

    async def create(key: str) -> httpx.Response:
        async with gate:
            r = await until_final(merchant_client, tally, "/v1/payments", key=key, body=BODY, deadline=90)
        answered.append(key)
        return r

    burst = asyncio.gather(*(create(k) for k in keys))

    async def mid_burst() -> bool:
        return len(answered) >= 8 and paystack.in_flight >= 4

    await wait_for(mid_burst, timeout=30)
    in_flight_at_kill = paystack.in_flight
    answered_before_kill = len(answered)
    await api.kill()
    await asyncio.sleep(0.5)  # clients find nobody home
    await api.start()
    first = await burst

    # Every key once more: the same payment, replayed.
    again_tally = Tally()
    again = await asyncio.gather(
        *(until_final(merchant_client, again_tally, "/v1/payments", key=k, body=BODY) for k in keys)
    )

    assert [r.status_code for r in first] == [201] * N, tally.summary()
    assert {r.json()["status"] for r in first} == {"succeeded"}
    ids = [r.json()["id"] for r in first]
    assert len(set(ids)) == N
    assert [r.json()["id"] for r in again] == ids
    assert set(again_tally.statuses) == {201}, again_tally.summary()
    assert again_tally.replayed == N
    # What the clients saw: broken connections while the API was dead, then 409 with Retry-After
    # while a killed request's key claim or provider lease ran out. No 500.
    assert tally.transport_errors.total() > 0, tally.summary()
    assert set(tally.statuses) <= {201, 409}, tally.summary()
    assert set(tally.codes) <= {"409 idempotency_key_in_use"}, tally.summary()

    references = {paystack_reference(i) for i in ids}
    assert set(paystack.transactions) == references  # one charge taken per payment, none twice
    charges = paystack.count("charge")
    assert set(charges) == references
    resumed = {ref for ref, n in charges.items() if n > 1}
    assert set(charges.values()) <= {1, 2}  # a resumed payment is sent once more, and refused
    assert len(resumed) >= 1  # the kill caught charges in flight
    assert paystack.count("verify") == dict.fromkeys(resumed, 1)  # and asked about instead

    async with database(fault_servers.postgres_url) as db:
        book = await ledger(db, fault_merchant.id)
    # Nothing half-written: no payment left pending, each with exactly its two events.
    assert book.payments == {"succeeded": N}
    assert book.keys_with_two_payments == 0
    assert book.events == {"payment.created": N, "payment.succeeded": N}
    assert book.repeated_events == []
    report(
        "api_sigkill",
        keys=N,
        answered_before_kill=answered_before_kill,
        provider_charges_in_flight_at_kill=in_flight_at_kill,
        requests=tally.sent + again_tally.sent,
        statuses=dict(tally.statuses),
        transport_errors=dict(tally.transport_errors),
        payments=sum(book.payments.values()),
        events=sum(book.events.values()),
        provider_transactions=len(paystack.transactions),
        provider_charge_calls=charges.total(),
        resumed_payments=len(resumed),
        provider_verify_calls=paystack.count("verify").total(),
    )
