"""Fallback along a payment's route: an outage before the provider took the payment (no connection,
5xx, 429) moves it to the next provider, as a new attempt under its own key, recorded on the payment
and in its events; a decline or a timeout never does."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
import respx

from drivers.flutterwave import DRIVER as FLUTTERWAVE
from drivers.paystack import DRIVER as PAYSTACK
from drivers.paystack import reference as paystack_reference
from drivers.paystack import transaction, verify_answer
from drivers.stripe import DRIVER as STRIPE
from drivers.stripe import RETURN_URL, event, payment_intent, pi_id_for, signed
from support import FLUTTERWAVE_API, PAYSTACK_API, STRIPE_API, Merchant, assert_problem, wait_for

ROUTE = [{"provider": "stripe", "currency": "KES"}, {"provider": "paystack"}]
STRIPE_OUTAGE = {"error": {"type": "api_error", "message": "Stripe is temporarily unavailable."}}


def new_key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


def payload(**extra: Any) -> dict[str, Any]:
    return {
        "amount": 5_000,
        "currency": "KES",
        "provider": "auto",
        "customer": {"name": "Amina Otieno", "email": "amina@example.com"},
        "return_url": RETURN_URL,
    } | extra


async def put_rules(client: httpx.AsyncClient, merchant: Merchant, rules: list[dict[str, Any]]) -> None:
    r = await client.put("/v1/routing-rules", json={"rules": rules}, headers=merchant.auth)
    assert r.status_code == 200, r.text


async def attempts_of(
    client: httpx.AsyncClient, merchant: Merchant, payment_id: str
) -> list[tuple[Any, ...]]:
    r = await client.get(f"/v1/payments/{payment_id}/attempts", headers=merchant.auth)
    return [(a["number"], a["provider"], a["status"], a["failure_code"]) for a in r.json()["data"]]


async def event_types(client: httpx.AsyncClient, merchant: Merchant, payment_id: str) -> list[str]:
    r = await client.get(f"/v1/payments/{payment_id}/events", headers=merchant.auth)
    return [e["type"] for e in reversed(r.json()["data"])]


async def get_payment(client: httpx.AsyncClient, merchant: Merchant, payment_id: str) -> dict[str, Any]:
    r = await client.get(f"/v1/payments/{payment_id}", headers=merchant.auth)
    assert r.status_code == 200
    out: dict[str, Any] = r.json()
    return out


async def test_a_503_moves_the_payment_to_the_next_provider_and_both_attempts_are_recorded(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    await put_rules(client, merchant, ROUTE)
    stripe = provider_http.post(f"{STRIPE_API}/v1/payment_intents").respond(503, json=STRIPE_OUTAGE)
    PAYSTACK.mock_create(provider_http, "action")
    paystack = provider_http.routes[-1]
    key = new_key()

    r = await client.post("/v1/payments", json=payload(), headers=merchant.auth | key)
    assert r.status_code == 201, r.text
    p = r.json()
    assert (p["provider"], p["status"]) == ("paystack", "requires_action")
    assert p["routing"] == {
        "route": ["stripe", "paystack"],
        "attempts": [
            {"number": 1, "provider": "stripe", "outcome": "provider_unavailable"},
            {"number": 2, "provider": "paystack", "outcome": "current"},
        ],
    }
    assert (stripe.call_count, paystack.call_count) == (1, 1)
    # Paystack heard of attempt 2 under its own key, never the payment's bare id.
    sent = json.loads(paystack.calls.last.request.content)
    assert sent["reference"] == paystack_reference(f"{p['id']}_2")
    assert await attempts_of(client, merchant, p["id"]) == [
        (1, "stripe", "failed", "provider_unavailable"),
        (2, "paystack", "requires_action", None),
    ]
    assert await event_types(client, merchant, p["id"]) == [
        "payment.created",
        "payment.rerouted",
        "payment.requires_action",
    ]
    events = (await client.get(f"/v1/payments/{p['id']}/events", headers=merchant.auth)).json()["data"]
    rerouted = next(e for e in events if e["type"] == "payment.rerouted")
    assert rerouted["data"]["object"]["status"] == "pending"
    assert rerouted["data"]["object"]["rerouted"] == {
        "from_provider": "stripe",
        "to_provider": "paystack",
        "attempt": 2,
        "reason": "provider_unavailable",
    }
    assert rerouted["data"]["object"]["provider"] == "paystack"

    # A replay of the key answers the same, and asks no provider again.
    replay = await client.post("/v1/payments", json=payload(), headers=merchant.auth | key)
    assert (replay.status_code, replay.json()) == (201, p)
    assert replay.headers["idempotent-replayed"] == "true"
    assert (stripe.call_count, paystack.call_count) == (1, 1)

    # A late word from the first provider about attempt 1 moves nothing.
    pi = payment_intent(
        pi_id_for(p["id"]), amount=5_000, currency="kes", status="succeeded", payment_id=p["id"]
    )
    headers, body = signed(event("payment_intent.succeeded", pi))
    assert (await client.post("/v1/webhooks/stripe", content=body, headers=headers)).status_code == 200
    assert (await get_payment(client, merchant, p["id"]))["status"] == "requires_action"

    # The provider that took it settles it, and refunds it.
    headers, body = PAYSTACK.success_webhook(p)
    assert (
        await client.post(PAYSTACK.webhook_path(headers), content=body, headers=headers)
    ).status_code == 200

    async def succeeded() -> bool:
        return bool((await get_payment(client, merchant, p["id"]))["status"] == "succeeded")

    await wait_for(succeeded)
    done = await get_payment(client, merchant, p["id"])
    assert (done["status"], done["provider"]) == ("succeeded", "paystack")
    assert await attempts_of(client, merchant, p["id"]) == [
        (1, "stripe", "failed", "provider_unavailable"),
        (2, "paystack", "succeeded", None),
    ]
    PAYSTACK.mock_refund(provider_http, done, 1_000)
    r = await client.post(
        f"/v1/payments/{p['id']}/refunds", json={"amount": 1_000}, headers=merchant.auth | new_key()
    )
    assert r.status_code in (200, 201), r.text
    assert stripe.call_count == 1


async def test_no_connection_moves_the_payment_on_too(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    await put_rules(client, merchant, [{"provider": "paystack"}, {"provider": "flutterwave"}])
    paystack = provider_http.post(f"{PAYSTACK_API}/transaction/initialize").mock(
        side_effect=httpx.ConnectError("connection refused")
    )
    FLUTTERWAVE.mock_create(provider_http, "action")
    flutterwave = provider_http.routes[-1]
    r = await client.post("/v1/payments", json=payload(), headers=merchant.auth | new_key())
    assert r.status_code == 201, r.text
    assert (r.json()["provider"], r.json()["status"]) == ("flutterwave", "requires_action")
    assert (paystack.call_count, flutterwave.call_count) == (1, 1)
    assert str(flutterwave.calls.last.request.url) == f"{FLUTTERWAVE_API}/v3/payments"
    assert json.loads(flutterwave.calls.last.request.content)["tx_ref"] == f"{r.json()['id']}_2"


async def test_a_decline_is_the_answer_and_no_other_provider_is_asked(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    await put_rules(client, merchant, ROUTE)
    STRIPE.mock_create(provider_http, "decline")
    stripe = provider_http.routes[-1]
    paystack = provider_http.post(f"{PAYSTACK_API}/transaction/initialize").respond(500)
    r = await client.post(
        "/v1/payments",
        json=payload(payment_method="pm_card_visa_chargeDeclined"),
        headers=merchant.auth | new_key(),
    )
    problem = assert_problem(r, 402, "card_declined")
    p = problem["payment"]
    assert (p["status"], p["provider"]) == ("failed", "stripe")
    assert p["routing"]["attempts"] == [{"number": 1, "provider": "stripe", "outcome": "current"}]
    assert (stripe.call_count, paystack.call_count) == (1, 0)
    assert await attempts_of(client, merchant, p["id"]) == [(1, "stripe", "failed", "card_declined")]
    assert await event_types(client, merchant, p["id"]) == ["payment.created", "payment.failed"]


async def test_a_timeout_leaves_the_payment_pending_for_the_reconciler(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    await put_rules(client, merchant, ROUTE)
    STRIPE.mock_create(provider_http, "timeout")
    stripe = provider_http.routes[-1]
    paystack = provider_http.post(f"{PAYSTACK_API}/transaction/initialize").respond(500)
    r = await client.post(
        "/v1/payments", json=payload(payment_method="pm_card_visa"), headers=merchant.auth | new_key()
    )
    problem = assert_problem(r, 504, "provider_timeout")
    payment_id = problem["payment"]["id"]
    p = await get_payment(client, merchant, payment_id)
    assert (p["status"], p["provider"]) == ("pending", "stripe")
    assert p["routing"]["attempts"] == [{"number": 1, "provider": "stripe", "outcome": "current"}]
    assert (stripe.call_count, paystack.call_count) == (1, 0)
    assert await attempts_of(client, merchant, payment_id) == [(1, "stripe", "pending", None)]
    assert await event_types(client, merchant, payment_id) == ["payment.created"]


@pytest.mark.parametrize("outage", [503, 429])
async def test_a_retry_after_every_provider_failed_resumes_the_last_one_under_its_key(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router, outage: int
) -> None:
    await put_rules(client, merchant, ROUTE)
    stripe = provider_http.post(f"{STRIPE_API}/v1/payment_intents").respond(outage, json=STRIPE_OUTAGE)
    paystack = provider_http.post(f"{PAYSTACK_API}/transaction/initialize").respond(outage)
    key = new_key()
    r = await client.post("/v1/payments", json=payload(), headers=merchant.auth | key)
    p = assert_problem(r, 502, "provider_error")["payment"]
    assert (p["status"], p["provider"]) == ("pending", "paystack")
    assert (stripe.call_count, paystack.call_count) == (1, 1)

    # Paystack is back: the retry goes to it, under attempt 2's key; Stripe is not asked again.
    paystack.respond(200)
    PAYSTACK.mock_create(provider_http, "action")
    paystack.mock(side_effect=provider_http.routes[-1].side_effect)
    r = await client.post("/v1/payments", json=payload(), headers=merchant.auth | key)
    assert r.status_code == 201, r.text
    assert (r.json()["id"], r.json()["provider"], r.json()["status"]) == (
        p["id"],
        "paystack",
        "requires_action",
    )
    assert (stripe.call_count, paystack.call_count) == (1, 2)
    refs = {json.loads(c.request.content)["reference"] for c in paystack.calls}
    assert refs == {paystack_reference(f"{p['id']}_2")}
    assert await attempts_of(client, merchant, p["id"]) == [
        (1, "stripe", "failed", "provider_unavailable"),
        (2, "paystack", "requires_action", None),
    ]


async def test_sync_asks_the_provider_that_took_it_about_its_attempt(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    await put_rules(client, merchant, ROUTE)
    provider_http.post(f"{STRIPE_API}/v1/payment_intents").respond(502, json=STRIPE_OUTAGE)
    PAYSTACK.mock_create(provider_http, "action")
    r = await client.post("/v1/payments", json=payload(), headers=merchant.auth | new_key())
    p = r.json()
    assert p["provider"] == "paystack"
    ref = paystack_reference(f"{p['id']}_2")
    verify = provider_http.get(f"{PAYSTACK_API}/transaction/verify/{ref}").respond(
        200, json=verify_answer(transaction(ref, 5_000, "KES", "success"))
    )
    r = await client.post(f"/v1/payments/{p['id']}/sync", headers=merchant.auth)
    assert (r.status_code, r.json()["status"], r.json()["provider"]) == (200, "succeeded", "paystack")
    assert verify.call_count == 1


async def test_an_in_process_rail_falls_back_and_is_fallen_back_to(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    # The sandbox's simulated 500 (answered inside the creating transaction) moves the payment on.
    await put_rules(client, merchant, [{"provider": "sandbox"}, {"provider": "stripe"}])
    STRIPE.mock_create(provider_http, "action")
    stripe = provider_http.routes[-1]
    r = await client.post(
        "/v1/payments", json=payload(payment_method="pm_provider_error"), headers=merchant.auth | new_key()
    )
    assert r.status_code == 201, r.text
    assert (r.json()["provider"], r.json()["status"], stripe.call_count) == ("stripe", "requires_action", 1)
    assert await event_types(client, merchant, r.json()["id"]) == [
        "payment.created",
        "payment.rerouted",
        "payment.requires_action",
    ]

    # An outage at Stripe moves it to the sandbox, which answers inside the rerouting transaction.
    await put_rules(client, merchant, [{"provider": "stripe"}, {"provider": "sandbox"}])
    stripe.mock(side_effect=None).respond(503, json=STRIPE_OUTAGE)
    r = await client.post(
        "/v1/payments", json=payload(payment_method="pm_success"), headers=merchant.auth | new_key()
    )
    assert r.status_code == 201, r.text
    p = r.json()
    assert (p["provider"], p["status"], stripe.call_count) == ("sandbox", "succeeded", 2)
    assert [a["outcome"] for a in p["routing"]["attempts"]] == ["provider_unavailable", "current"]
    assert await event_types(client, merchant, p["id"]) == [
        "payment.created",
        "payment.rerouted",
        "payment.succeeded",
    ]
    assert await attempts_of(client, merchant, p["id"]) == [
        (1, "stripe", "failed", "provider_unavailable"),
        (2, "sandbox", "succeeded", None),
    ]


async def test_a_retry_after_a_timeout_never_falls_back_whatever_the_provider_answers_now(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    # The timed-out call may have made a charge at Stripe: an outage on the retry proves nothing
    # about it, so the payment stays on Stripe and Paystack is never asked.
    await put_rules(client, merchant, ROUTE)
    STRIPE.mock_create(provider_http, "timeout")
    stripe = provider_http.routes[-1]
    paystack = provider_http.post(f"{PAYSTACK_API}/transaction/initialize").respond(500)
    key = new_key()
    body = payload(payment_method="pm_card_visa")
    p = assert_problem(
        await client.post("/v1/payments", json=body, headers=merchant.auth | key), 504, "provider_timeout"
    )["payment"]
    stripe.mock(side_effect=None).respond(503, json=STRIPE_OUTAGE)
    r = await client.post("/v1/payments", json=body, headers=merchant.auth | key)
    assert assert_problem(r, 502, "provider_error")["payment"]["id"] == p["id"]
    assert (stripe.call_count, paystack.call_count) == (2, 0)
    got = await get_payment(client, merchant, p["id"])
    assert (got["status"], got["provider"]) == ("pending", "stripe")
    assert got["routing"]["attempts"] == [{"number": 1, "provider": "stripe", "outcome": "current"}]
    assert await event_types(client, merchant, p["id"]) == ["payment.created"]
