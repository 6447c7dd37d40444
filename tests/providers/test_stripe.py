"""Stripe: the exact requests the gateway sends through the SDK, and what it makes of Stripe's answers.

Stripe's HTTP is answered by respx at STRIPE_API with bodies shaped as docs/providers/stripe.md shows
(builders in tests/drivers/stripe.py); webhooks are signed with the SDK's own signing helper.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

import httpx
import pytest
import respx
import stripe
import structlog

from drivers.stripe import (
    RETURN_URL,
    VISA_CARD,
    VISA_DETAILS,
    card_error,
    charge,
    event,
    form,
    payment_intent,
    pi_id_for,
    redirect_action,
    refund_object,
    search_result,
    signed,
)
from gateway.merchants.service import create_merchant
from gateway.providers.base import (
    PaymentRef,
    PaymentRequest,
    ProviderUnavailable,
    RefundRef,
    WebhookPayloadError,
)
from gateway.providers.stripe import amounts
from gateway.providers.stripe import notifications as nt
from gateway.providers.stripe import transformers as tf
from gateway.providers.stripe.adapter import StripeProvider
from gateway.settings import StripeSettings
from support import STRIPE_API, STRIPE_SECRET_KEY, STRIPE_WEBHOOK_SECRET, Gateway, Merchant, wait_for

PI_URL = f"{STRIPE_API}/v1/payment_intents"
REFUNDS_URL = f"{STRIPE_API}/v1/refunds"
RETURN_URL_FORM = quote_plus(RETURN_URL)
Responder = Callable[[httpx.Request], httpx.Response]


# Helpers


def key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


async def create(
    client: httpx.AsyncClient, merchant: Merchant, headers: dict[str, str] | None = None, **body: Any
) -> httpx.Response:
    body = {"amount": 5_000, "currency": "KES", "provider": "stripe", **body}
    return await client.post("/v1/payments", json=body, headers={**merchant.auth, **(headers or key())})


async def get(client: httpx.AsyncClient, merchant: Merchant, path: str) -> dict[str, Any]:
    r = await client.get(path, headers=merchant.auth)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def trail(client: httpx.AsyncClient, merchant: Merchant, payment_id: str) -> list[tuple[str, str]]:
    data = (await get(client, merchant, f"/v1/payments/{payment_id}/events?limit=100"))["data"]
    return [(e["type"], e["source"]) for e in reversed(data)]


async def webhook(client: httpx.AsyncClient, headers: dict[str, str], body: bytes) -> httpx.Response:
    return await client.post("/v1/webhooks/stripe", content=body, headers=headers)


async def settles(client: httpx.AsyncClient, merchant: Merchant, path: str, status: str) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    async def done() -> bool:
        seen.update(await get(client, merchant, path))
        return bool(seen["status"] == status)

    await wait_for(done)
    return seen


def assert_stripe_post(request: httpx.Request, idempotency_key: str) -> None:
    """What the SDK must put on every POST we make: our key, our idempotency key, a form body."""
    assert request.method == "POST"
    assert request.headers["Authorization"] == f"Bearer {STRIPE_SECRET_KEY}"
    assert request.headers["Idempotency-Key"] == idempotency_key
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert request.headers["Stripe-Version"] == stripe.api_version


def intents(status: str, **extra: Any) -> Responder:
    """Answers POST /v1/payment_intents with a PaymentIntent made from the request, as Stripe does."""

    def answer(request: httpx.Request) -> httpx.Response:
        f = form(request)
        payment_id = f["metadata[gateway_payment_id]"]
        pi_id = pi_id_for(payment_id)
        fields: dict[str, Any] = {
            "amount": int(f["amount"]),
            "currency": f["currency"],
            "status": status,
            "payment_id": payment_id,
            "flow": f["metadata[gateway_flow]"],
            "payment_method": f.get("payment_method"),
        }
        if status == "requires_action" and "return_url" in f:
            fields["next_action"] = redirect_action(pi_id, f["return_url"])
        return httpx.Response(200, json=payment_intent(pi_id, **{**fields, **extra}))

    return answer


def stripe_host(router: respx.Router) -> respx.Route:
    """Every other request to Stripe: it should get none (asserted by call_count)."""
    return router.route(host="stripe.test").mock(return_value=httpx.Response(500))


async def paid(
    client: httpx.AsyncClient, merchant: Merchant, router: respx.Router, amount: int = 5_000
) -> dict[str, Any]:
    router.post(PI_URL).mock(side_effect=intents("succeeded"))
    r = await create(client, merchant, amount=amount, payment_method="pm_card_visa")
    assert (r.status_code, r.json()["status"]) == (201, "succeeded"), r.text
    return dict(r.json())


async def waiting(client: httpx.AsyncClient, merchant: Merchant, router: respx.Router) -> dict[str, Any]:
    router.post(PI_URL).mock(side_effect=intents("requires_action"))
    r = await create(client, merchant, payment_method="pm_card_threeDSecure2Required", return_url=RETURN_URL)
    assert (r.status_code, r.json()["status"]) == (201, "requires_action"), r.text
    return dict(r.json())


def pi_for(payment: dict[str, Any], status: str, **extra: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "amount": payment["amount"],
        "currency": payment["currency"].lower(),
        "status": status,
        "payment_id": payment["id"],
    }
    return payment_intent(payment["provider_reference"], **{**fields, **extra})


# Creating payments: the exact requests


async def test_create_and_confirm_with_a_payment_method(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    route = provider_http.post(PI_URL).mock(side_effect=intents("succeeded"))
    r = await create(
        client,
        merchant,
        payment_method="pm_card_visa",
        return_url=RETURN_URL,
        reference="order_1042",
        description="Order 1042",
    )
    assert r.status_code == 201, r.text
    p = r.json()
    assert (p["status"], p["provider_reference"], p["next_action"]) == ("succeeded", pi_id_for(p["id"]), None)
    assert route.call_count == 1
    request = route.calls.last.request
    assert_stripe_post(request, p["id"])
    assert request.url == PI_URL
    assert request.content.decode() == (
        "amount=5000&currency=kes&payment_method=pm_card_visa&confirm=true"
        f"&automatic_payment_methods[enabled]=true&return_url={RETURN_URL_FORM}"
        f"&metadata[gateway_payment_id]={p['id']}&metadata[gateway_flow]=server"
        "&metadata[gateway_reference]=order_1042&description=Order+1042&expand[0]=latest_charge"
    )


async def test_three_d_secure_is_a_redirect_then_webhooks_settle_it(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    p = await waiting(client, merchant, provider_http)
    pi_id = p["provider_reference"]
    assert p["next_action"] == {
        "type": "redirect_to_url",
        "redirect_to_url": {
            "url": f"https://hooks.stripe.com/3d_secure_2/hosted?merchant=acct_1Gw&payment_intent={pi_id}",
            "return_url": RETURN_URL,
        },
    }
    r = await webhook(client, *signed(event("payment_intent.processing", pi_for(p, "processing"))))
    assert r.status_code == 200
    await settles(client, merchant, f"/v1/payments/{p['id']}", "processing")
    r = await webhook(client, *signed(event("payment_intent.succeeded", pi_for(p, "succeeded"))))
    assert r.status_code == 200
    await settles(client, merchant, f"/v1/payments/{p['id']}", "succeeded")
    assert await trail(client, merchant, p["id"]) == [
        ("payment.created", "api"),
        ("payment.requires_action", "api"),
        ("payment.processing", "webhook"),
        ("payment.succeeded", "webhook"),
    ]


async def test_without_a_return_url_redirects_are_off_and_stripe_js_finishes_3ds(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    use_sdk = {"type": "use_stripe_sdk", "use_stripe_sdk": {"type": "three_d_secure_redirect"}}
    route = provider_http.post(PI_URL).mock(side_effect=intents("requires_action", next_action=use_sdk))
    r = await create(client, merchant, payment_method="pm_card_threeDSecure2Required")
    assert r.status_code == 201, r.text
    p = r.json()
    request = route.calls.last.request
    assert request.content.decode() == (
        "amount=5000&currency=kes&payment_method=pm_card_threeDSecure2Required&confirm=true"
        "&automatic_payment_methods[enabled]=true&automatic_payment_methods[allow_redirects]=never"
        f"&metadata[gateway_payment_id]={p['id']}&metadata[gateway_flow]=server&expand[0]=latest_charge"
    )
    assert p["status"] == "requires_action"
    assert p["next_action"]["type"] == "use_client_secret"
    assert p["next_action"]["use_client_secret"]["client_secret"].startswith(
        f"{p['provider_reference']}_secret_"
    )


async def test_without_a_payment_method_the_merchant_gets_the_client_secret(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    route = provider_http.post(PI_URL).mock(
        side_effect=intents("requires_payment_method", payment_method=None)
    )
    r = await create(client, merchant)
    assert r.status_code == 201, r.text
    p = r.json()
    request = route.calls.last.request
    assert_stripe_post(request, p["id"])
    assert request.content.decode() == (
        "amount=5000&currency=kes&automatic_payment_methods[enabled]=true"
        f"&metadata[gateway_payment_id]={p['id']}&metadata[gateway_flow]=client&expand[0]=latest_charge"
    )
    assert p["status"] == "requires_action"
    secret = p["next_action"]["use_client_secret"]["client_secret"]
    assert (p["next_action"]["type"], secret.startswith(p["provider_reference"] + "_secret_")) == (
        "use_client_secret",
        True,
    )

    # The customer's first card is declined in the browser: they may try another on the same intent.
    declined = pi_for(
        p,
        "requires_payment_method",
        flow="client",
        last_payment_error={"type": "card_error", "code": "card_declined", "decline_code": "generic_decline"},
    )
    hook = signed(event("payment_intent.payment_failed", declined))
    assert (await webhook(client, *hook)).status_code == 200
    r = await webhook(
        client, *signed(event("payment_intent.succeeded", pi_for(p, "succeeded", flow="client")))
    )
    assert r.status_code == 200
    await settles(client, merchant, f"/v1/payments/{p['id']}", "succeeded")
    assert [t for t, _ in await trail(client, merchant, p["id"])] == [
        "payment.created",
        "payment.requires_action",
        "payment.succeeded",
    ]


@pytest.mark.parametrize(
    ("currency", "amount", "stripe_amount"),
    [
        ("USD", 1_050, 1_050),
        ("JPY", 500, 500),  # zero-decimal at Stripe and in ISO 4217
        ("XOF", 5_000, 5_000),
        ("UGX", 5_000, 500_000),  # zero-decimal in ISO 4217, two-decimal ("always 00") at Stripe
        ("ISK", 5_000, 500_000),
        ("MGA", 15_000, 150),  # two-decimal in ISO 4217, zero-decimal at Stripe
        ("BHD", 1_230, 1_230),  # three-decimal, last digit 0
    ],
)
async def test_amounts_in_stripe_units(
    client: httpx.AsyncClient,
    merchant: Merchant,
    provider_http: respx.Router,
    currency: str,
    amount: int,
    stripe_amount: int,
) -> None:
    route = provider_http.post(PI_URL).mock(side_effect=intents("requires_action"))
    r = await create(
        client,
        merchant,
        amount=amount,
        currency=currency,
        payment_method="pm_card_visa",
        return_url=RETURN_URL,
    )
    assert r.status_code == 201, r.text
    p = r.json()
    assert form(route.calls.last.request)["amount"] == str(stripe_amount)
    assert form(route.calls.last.request)["currency"] == currency.lower()
    # Stripe's word on the money, in its units, matches ours: the success is applied.
    r = await webhook(
        client, *signed(event("payment_intent.succeeded", pi_for(p, "succeeded", amount=stripe_amount)))
    )
    assert r.status_code == 200
    await settles(client, merchant, f"/v1/payments/{p['id']}", "succeeded")


@pytest.mark.parametrize(("currency", "amount"), [("MGA", 15_050), ("BHD", 1_234), ("KWD", 5)])
async def test_amounts_stripe_cannot_take_are_refused_before_any_request(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router, currency: str, amount: int
) -> None:
    anything = stripe_host(provider_http)
    r = await create(client, merchant, amount=amount, currency=currency, payment_method="pm_card_visa")
    assert r.status_code == 402, r.text
    assert r.json()["code"] == "amount_not_supported"
    assert r.json()["payment"]["status"] == "failed"
    assert anything.call_count == 0


async def test_currencies_stripe_does_not_take_are_422(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    anything = stripe_host(provider_http)
    r = await create(client, merchant, currency="IQD", payment_method="pm_card_visa")
    assert (r.status_code, r.json()["code"]) == (422, "currency_not_supported")
    assert anything.call_count == 0


# Declines and outages


@pytest.mark.parametrize(
    ("code", "decline_code", "ours"),
    [
        ("card_declined", "generic_decline", "card_declined"),
        ("card_declined", "insufficient_funds", "insufficient_funds"),
        ("card_declined", "lost_card", "card_declined"),  # Stripe: show only a generic decline
        ("expired_card", None, "expired_card"),
        ("incorrect_cvc", None, "incorrect_cvc"),
        ("card_declined", "authentication_required", "authentication_required"),
    ],
)
async def test_card_errors_are_402_with_our_decline_code(
    client: httpx.AsyncClient,
    merchant: Merchant,
    provider_http: respx.Router,
    code: str,
    decline_code: str | None,
    ours: str,
) -> None:
    def declined(request: httpx.Request) -> httpx.Response:
        payment_id = form(request)["metadata[gateway_payment_id]"]
        pi = payment_intent(
            pi_id_for(payment_id),
            amount=5_000,
            currency="kes",
            status="requires_payment_method",
            payment_id=payment_id,
        )
        return httpx.Response(402, json=card_error(code, decline_code, "Your card was declined.", pi))

    route = provider_http.post(PI_URL).mock(side_effect=declined)
    r = await create(client, merchant, payment_method="pm_card_visa_chargeDeclined")
    assert r.status_code == 402, r.text
    body = r.json()
    assert (body["code"], body["detail"]) == (ours, "Your card was declined.")
    assert body["payment"]["status"] == "failed"
    assert body["payment"]["provider_reference"] == pi_id_for(body["payment"]["id"])
    assert route.call_count == 1


@pytest.mark.parametrize(
    ("answer", "status", "code"),
    [
        (
            httpx.Response(
                401,
                json={
                    "error": {
                        "type": "invalid_request_error",
                        "message": "Invalid API Key provided: sk_test_****0000",
                    }
                },
            ),
            502,
            "provider_misconfigured",
        ),
        (
            httpx.Response(
                403,
                json={
                    "error": {
                        "type": "invalid_request_error",
                        "message": "The provided key does not have access.",
                    }
                },
            ),
            502,
            "provider_misconfigured",
        ),
        (
            httpx.Response(500, json={"error": {"type": "api_error", "message": "Something went wrong."}}),
            502,
            "provider_error",
        ),
        (
            httpx.Response(429, json={"error": {"type": "invalid_request_error", "code": "rate_limit"}}),
            502,
            "provider_error",
        ),
        (httpx.ReadTimeout("no answer"), 504, "provider_timeout"),
        (httpx.ConnectError("connection refused"), 502, "provider_error"),
    ],
    ids=["401", "403", "500", "429", "timeout", "connect"],
)
async def test_outages_leave_the_payment_pending(
    client: httpx.AsyncClient,
    merchant: Merchant,
    provider_http: respx.Router,
    answer: httpx.Response | Exception,
    status: int,
    code: str,
) -> None:
    route = provider_http.post(PI_URL)
    if isinstance(answer, Exception):
        route.mock(side_effect=answer)
    else:
        route.mock(return_value=answer)
    with structlog.testing.capture_logs() as logs:
        r = await create(client, merchant, payment_method="pm_card_visa")
    assert (r.status_code, r.json()["code"]) == (status, code), r.text
    assert route.call_count == 1  # the SDK never retries on its own (max_network_retries=0)
    p = await get(client, merchant, f"/v1/payments/{r.json()['payment']['id']}")
    assert p["status"] == "pending"
    assert STRIPE_SECRET_KEY not in repr(logs)
    if code == "provider_misconfigured":
        assert any(e["event"] == "stripe_credentials_rejected" and e["log_level"] == "error" for e in logs)


async def test_a_retry_after_a_timeout_sends_the_same_create_and_stripe_replays_it(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    replay = intents("succeeded")
    answers = iter([httpx.ReadTimeout("no answer")])

    def answer(request: httpx.Request) -> httpx.Response:
        error = next(answers, None)
        if error is not None:
            raise error
        return replay(request)

    route = provider_http.post(PI_URL).mock(side_effect=answer)
    headers = key()
    first = await create(client, merchant, headers, payment_method="pm_card_visa", return_url=RETURN_URL)
    assert first.status_code == 504, first.text
    again = await create(client, merchant, headers, payment_method="pm_card_visa", return_url=RETURN_URL)
    assert again.status_code == 201, again.text
    assert again.json()["status"] == "succeeded"
    assert route.call_count == 2
    one, two = (c.request for c in route.calls)
    assert one.headers["Idempotency-Key"] == two.headers["Idempotency-Key"] == again.json()["id"]
    assert one.content == two.content  # same key, same parameters: Stripe replays rather than refuses


# Sync


async def test_sync_after_a_timeout_finds_the_intent_by_search_then_by_id(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    provider_http.post(PI_URL).mock(side_effect=httpx.ReadTimeout("no answer"))
    r = await create(client, merchant, payment_method="pm_card_threeDSecure2Required", return_url=RETURN_URL)
    assert r.status_code == 504, r.text
    payment_id = r.json()["payment"]["id"]
    pi_id = pi_id_for(payment_id)

    # Stripe's search has not indexed it yet: we know nothing, so nothing changes.
    search = provider_http.get(f"{PI_URL}/search").mock(
        return_value=httpx.Response(200, json=search_result())
    )
    r = await client.post(f"/v1/payments/{payment_id}/sync", headers=merchant.auth)
    assert (r.status_code, r.json()["code"]) == (502, "provider_error"), r.text
    assert (await get(client, merchant, f"/v1/payments/{payment_id}"))["status"] == "pending"
    request = search.calls.last.request
    assert request.headers["Authorization"] == f"Bearer {STRIPE_SECRET_KEY}"
    assert dict(request.url.params) == {
        "query": f"metadata['gateway_payment_id']:'{payment_id}'",
        "limit": "10",
        "expand[0]": "data.latest_charge",
    }

    # Indexed: the search answers, and from then on the id is known.
    waiting_pi = payment_intent(
        pi_id,
        amount=5_000,
        currency="kes",
        status="requires_action",
        payment_id=payment_id,
        next_action=redirect_action(pi_id),
    )
    search.mock(return_value=httpx.Response(200, json=search_result(waiting_pi)))
    r = await client.post(f"/v1/payments/{payment_id}/sync", headers=merchant.auth)
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["provider_reference"]) == ("requires_action", pi_id)
    assert r.json()["next_action"]["type"] == "redirect_to_url"

    retrieve = provider_http.get(f"{PI_URL}/{pi_id}").mock(
        return_value=httpx.Response(
            200,
            json=payment_intent(
                pi_id, amount=5_000, currency="kes", status="succeeded", payment_id=payment_id
            ),
        )
    )
    r = await client.post(f"/v1/payments/{payment_id}/sync", headers=merchant.auth)
    assert (r.status_code, r.json()["status"]) == (200, "succeeded"), r.text
    assert retrieve.call_count == 1
    assert retrieve.calls.last.request.method == "GET"
    assert search.call_count == 2
    assert await trail(client, merchant, payment_id) == [
        ("payment.created", "api"),
        ("payment.requires_action", "sync"),
        ("payment.succeeded", "sync"),
    ]


async def test_sync_maps_a_failed_authentication(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    p = await waiting(client, merchant, provider_http)
    failed = pi_for(
        p,
        "requires_payment_method",
        last_payment_error={
            "type": "invalid_request_error",
            "code": "payment_intent_authentication_failure",
            "message": "We are unable to authenticate your payment method.",
        },
    )
    provider_http.get(f"{PI_URL}/{p['provider_reference']}").mock(
        return_value=httpx.Response(200, json=failed)
    )
    r = await client.post(f"/v1/payments/{p['id']}/sync", headers=merchant.auth)
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["failure_code"], r.json()["failure_message"]) == (
        "failed",
        "authentication_failed",
        "We are unable to authenticate your payment method.",
    )


# Cancel


async def test_cancel(client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router) -> None:
    p = await waiting(client, merchant, provider_http)
    route = provider_http.post(f"{PI_URL}/{p['provider_reference']}/cancel").mock(
        return_value=httpx.Response(
            200, json=pi_for(p, "canceled", cancellation_reason="requested_by_customer")
        )
    )
    r = await client.post(f"/v1/payments/{p['id']}/cancel", headers={**merchant.auth, **key()})
    assert (r.status_code, r.json()["status"]) == (200, "canceled"), r.text
    assert route.call_count == 1
    assert_stripe_post(route.calls.last.request, f"{p['id']}-cancel")
    assert route.calls.last.request.content == b""


async def test_cancel_too_late_answers_where_the_payment_stands(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    p = await waiting(client, merchant, provider_http)
    succeeded = pi_for(p, "succeeded")
    provider_http.post(f"{PI_URL}/{p['provider_reference']}/cancel").mock(
        return_value=httpx.Response(
            400,
            json={
                "error": {
                    "type": "invalid_request_error",
                    "code": "payment_intent_unexpected_state",
                    "message": "You cannot cancel this PaymentIntent because it has a status of succeeded.",
                    "payment_intent": succeeded,
                }
            },
        )
    )
    provider_http.get(f"{PI_URL}/{p['provider_reference']}").mock(
        return_value=httpx.Response(200, json=succeeded)
    )
    r = await client.post(f"/v1/payments/{p['id']}/cancel", headers={**merchant.auth, **key()})
    assert (r.status_code, r.json()["code"], r.json()["status_now"]) == (
        409,
        "payment_not_cancelable",
        "succeeded",
    )
    assert (await get(client, merchant, f"/v1/payments/{p['id']}"))["status"] == "succeeded"


# Refunds


def refunds(status: str, payment: dict[str, Any]) -> Responder:
    def answer(request: httpx.Request) -> httpx.Response:
        f = form(request)
        refund_id = f["metadata[gateway_refund_id]"]
        return httpx.Response(
            200,
            json=refund_object(
                "re_3" + refund_id.split("_", 1)[1],
                amount=int(f["amount"]),
                currency=payment["currency"].lower(),
                payment_intent_id=f["payment_intent"],
                status=status,
                refund_id=refund_id,
                payment_id=payment["id"],
            ),
        )

    return answer


async def test_partial_then_full_refund(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    p = await paid(client, merchant, provider_http)
    route = provider_http.post(REFUNDS_URL).mock(side_effect=refunds("succeeded", p))
    r = await client.post(
        f"/v1/payments/{p['id']}/refunds",
        json={"amount": 1_000, "reason": "requested_by_customer"},
        headers={**merchant.auth, **key()},
    )
    assert (r.status_code, r.json()["status"]) == (201, "succeeded"), r.text
    first = r.json()
    assert first["provider_reference"] == "re_3" + first["id"].split("_", 1)[1]
    request = route.calls.last.request
    assert_stripe_post(request, first["id"])
    assert request.url == REFUNDS_URL
    assert request.content.decode() == (
        f"payment_intent={p['provider_reference']}&amount=1000"
        f"&metadata[gateway_refund_id]={first['id']}&metadata[gateway_payment_id]={p['id']}"
        "&reason=requested_by_customer"
    )
    assert (await get(client, merchant, f"/v1/payments/{p['id']}"))["status"] == "partially_refunded"

    # The rest, without an amount: we still name it (exactly what is left), and no reason ("other"
    # is not one of Stripe's).
    r = await client.post(
        f"/v1/payments/{p['id']}/refunds", json={"reason": "other"}, headers={**merchant.auth, **key()}
    )
    assert (r.status_code, r.json()["status"], r.json()["amount"]) == (201, "succeeded", 4_000), r.text
    assert route.calls.last.request.content.decode() == (
        f"payment_intent={p['provider_reference']}&amount=4000"
        f"&metadata[gateway_refund_id]={r.json()['id']}&metadata[gateway_payment_id]={p['id']}"
    )
    after = await get(client, merchant, f"/v1/payments/{p['id']}")
    assert (after["status"], after["amount_refunded"]) == ("refunded", 5_000)


async def test_a_refund_stripe_refuses_fails(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    p = await paid(client, merchant, provider_http)
    provider_http.post(REFUNDS_URL).mock(
        return_value=httpx.Response(
            400,
            json={
                "error": {
                    "type": "invalid_request_error",
                    "code": "charge_already_refunded",
                    "message": "Charge ch_3 has already been refunded.",
                }
            },
        )
    )
    r = await client.post(f"/v1/payments/{p['id']}/refunds", json={}, headers={**merchant.auth, **key()})
    assert r.status_code == 201, r.text
    assert (r.json()["status"], r.json()["failure_code"]) == ("failed", "refund_rejected")
    assert (await get(client, merchant, f"/v1/payments/{p['id']}"))["status"] == "succeeded"


async def test_refund_webhooks(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    p = await paid(client, merchant, provider_http)
    provider_http.post(REFUNDS_URL).mock(side_effect=refunds("pending", p))

    async def pending_refund(amount: int) -> dict[str, Any]:
        r = await client.post(
            f"/v1/payments/{p['id']}/refunds", json={"amount": amount}, headers={**merchant.auth, **key()}
        )
        assert (r.status_code, r.json()["status"]) == (201, "pending"), r.text
        return dict(r.json())

    def stripe_refund(refund: dict[str, Any], status: str, **extra: Any) -> dict[str, Any]:
        return refund_object(
            refund["provider_reference"],
            amount=refund["amount"],
            currency="kes",
            payment_intent_id=p["provider_reference"],
            status=status,
            refund_id=refund["id"],
            payment_id=p["id"],
            **extra,
        )

    # refund.failed
    one = await pending_refund(1_000)
    hook = signed(
        event("refund.failed", stripe_refund(one, "failed", failure_reason="expired_or_canceled_card"))
    )
    assert (await webhook(client, *hook)).status_code == 200
    failed = await settles(client, merchant, f"/v1/refunds/{one['id']}", "failed")
    assert (failed["failure_code"], failed["failure_message"]) == (
        "refund_failed",
        "Stripe could not refund the payment (expired_or_canceled_card).",
    )

    # charge.refunded, naming its refunds (older API versions, or expanded): the latest is the news.
    two = await pending_refund(2_000)
    charge = {
        "id": "ch_3" + p["provider_reference"][4:],
        "object": "charge",
        "amount": 5_000,
        "amount_refunded": 2_000,
        "currency": "kes",
        "payment_intent": p["provider_reference"],
        "refunded": False,
        "refunds": {
            "object": "list",
            "data": [
                {**stripe_refund(two, "succeeded"), "created": int(time.time())},
                {**stripe_refund(one, "failed"), "created": int(time.time()) - 60},
            ],
            "has_more": False,
        },
        "livemode": False,
    }
    assert (await webhook(client, *signed(event("charge.refunded", charge)))).status_code == 200
    await settles(client, merchant, f"/v1/refunds/{two['id']}", "succeeded")

    # refund.updated
    three = await pending_refund(500)
    assert (
        await webhook(client, *signed(event("refund.updated", stripe_refund(three, "succeeded"))))
    ).status_code == 200
    await settles(client, merchant, f"/v1/refunds/{three['id']}", "succeeded")
    after = await get(client, merchant, f"/v1/payments/{p['id']}")
    assert (after["status"], after["amount_refunded"]) == ("partially_refunded", 2_500)


# Webhooks: verification (construct_event, 300 s tolerance) and mapping


async def test_webhook_signature_tolerance_is_300_seconds(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    p = await waiting(client, merchant, provider_http)
    payload = event("payment_intent.processing", pi_for(p, "processing"))
    stale = signed(payload, timestamp=int(time.time()) - 301)
    r = await webhook(client, *stale)
    assert (r.status_code, r.json()["code"]) == (401, "webhook_signature_invalid")
    fresh = signed(payload, timestamp=int(time.time()) - 240)
    assert (await webhook(client, *fresh)).status_code == 200
    await settles(client, merchant, f"/v1/payments/{p['id']}", "processing")


async def test_webhook_with_a_rotated_secret_verifies_on_any_v1(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    p = await waiting(client, merchant, provider_http)
    headers, body = signed(event("payment_intent.processing", pi_for(p, "processing")))
    t, good = headers["Stripe-Signature"].split(",")
    headers["Stripe-Signature"] = f"{t},v1={'0' * 64},{good},v0={'1' * 64}"
    assert (await webhook(client, headers, body)).status_code == 200
    await settles(client, merchant, f"/v1/payments/{p['id']}", "processing")


@pytest.mark.parametrize("case", ["missing", "empty", "garbage", "wrong_mode"])
async def test_webhooks_that_do_not_verify_are_401(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router, case: str
) -> None:
    p = await waiting(client, merchant, provider_http)
    pi = pi_for(p, "succeeded")
    if case == "wrong_mode":
        # Signed with the test endpoint's secret, claiming to be a live event.
        pi["livemode"] = True
    headers, body = signed(event("payment_intent.succeeded", pi))
    if case == "missing":
        del headers["Stripe-Signature"]
    elif case == "empty":
        headers["Stripe-Signature"] = ""
    elif case == "garbage":
        headers["Stripe-Signature"] = "not a signature"
    r = await webhook(client, headers, body)
    assert (r.status_code, r.json()["code"]) == (401, "webhook_signature_invalid")
    assert (await get(client, merchant, f"/v1/payments/{p['id']}"))["status"] == "requires_action"


async def test_a_signed_body_that_is_not_json_is_400(client: httpx.AsyncClient) -> None:
    header = stripe.WebhookSignature.generate_signature_header("not json", STRIPE_WEBHOOK_SECRET)
    r = await webhook(client, {"Stripe-Signature": header}, b"not json")
    assert (r.status_code, r.json()["code"]) == (400, "webhook_malformed")


@pytest.mark.parametrize(
    ("event_type", "stripe_status", "ours"),
    [
        ("payment_intent.payment_failed", "requires_payment_method", "failed"),
        ("payment_intent.canceled", "canceled", "canceled"),
        ("payment_intent.processing", "processing", "processing"),
        ("payment_intent.succeeded", "succeeded", "succeeded"),
    ],
)
async def test_payment_intent_webhooks(
    client: httpx.AsyncClient,
    merchant: Merchant,
    provider_http: respx.Router,
    event_type: str,
    stripe_status: str,
    ours: str,
) -> None:
    p = await waiting(client, merchant, provider_http)
    extra: dict[str, Any] = {}
    if event_type == "payment_intent.payment_failed":
        extra["last_payment_error"] = {
            "type": "card_error",
            "code": "card_declined",
            "decline_code": "insufficient_funds",
            "message": "Your card has insufficient funds.",
        }
    r = await webhook(client, *signed(event(event_type, pi_for(p, stripe_status, **extra))))
    assert r.status_code == 200
    after = await settles(client, merchant, f"/v1/payments/{p['id']}", ours)
    if ours == "failed":
        assert (after["failure_code"], after["failure_message"]) == (
            "insufficient_funds",
            "Your card has insufficient funds.",
        )


async def test_requires_action_webhook_sets_the_next_action(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    provider_http.post(PI_URL).mock(side_effect=intents("requires_payment_method", payment_method=None))
    p = (await create(client, merchant)).json()
    assert p["next_action"]["type"] == "use_client_secret"
    # Stripe.js confirmed with a return_url and the card wants 3-D Secure.
    pi = pi_for(p, "requires_action", flow="client", next_action=redirect_action(p["provider_reference"]))
    assert (await webhook(client, *signed(event("payment_intent.requires_action", pi)))).status_code == 200

    async def redirected() -> bool:
        now = await get(client, merchant, f"/v1/payments/{p['id']}")
        return bool(now["next_action"]["type"] == "redirect_to_url")

    await wait_for(redirected)


# GET /v1/providers, modes


async def test_providers_lists_stripe_configured_in_test_mode_only(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    data = {p["name"]: p for p in (await get(client, merchant, "/v1/providers"))["data"]}
    s = data["stripe"]
    assert s["configured"] is True
    assert s["flows"] == ["client_secret", "direct", "redirect"]
    assert (s["refunds"], s["partial_refunds"], s["cancel"]) == (True, True, True)
    assert set(s["currencies"]) == amounts.STRIPE_CURRENCIES
    assert {"KES", "NGN", "ZAR", "UGX", "TZS", "USD", "EUR", "XOF", "JPY", "BHD"} <= set(s["currencies"])

    live = await create_merchant(gateway.ctx.db, "Live shop", livemode=True)
    live_auth = {"Authorization": f"Bearer {live.secret_key}"}
    r = await client.get("/v1/providers", headers=live_auth)
    assert {p["name"]: p["configured"] for p in r.json()["data"]}["stripe"] is False
    r = await client.post(
        "/v1/payments",
        json={"amount": 5_000, "currency": "KES", "provider": "stripe", "payment_method": "pm_card_visa"},
        headers={**live_auth, **key()},
    )
    assert (r.status_code, r.json()["code"]) == (422, "provider_not_configured")


# The adapter on its own (no gateway around it)


@pytest.fixture
async def adapter() -> AsyncIterator[StripeProvider]:
    provider = StripeProvider(
        StripeSettings(
            test_secret_key=STRIPE_SECRET_KEY, test_webhook_secret=STRIPE_WEBHOOK_SECRET, api_base=STRIPE_API
        ),
        2.0,
    )
    yield provider
    await provider.aclose()


def request_for(payment_method: str | None) -> PaymentRequest:
    return PaymentRequest(
        payment_id="pay_01jdpz0000000000000000000a",
        amount=5_000,
        currency="KES",
        livemode=False,
        created_at=datetime.now(UTC),
        payment_method=payment_method,
    )


@pytest.mark.parametrize(
    ("payment_method", "code"),
    [
        ("4242424242424242", "card_number_not_allowed"),
        ("4000 0025 0000 3155", "card_number_not_allowed"),
        ("4000-0000-0000-9995", "card_number_not_allowed"),
        ("tok_visa", "invalid_payment_method"),
        ("card_1Gw", "invalid_payment_method"),
        ("pm_card_visa&amount=1", "invalid_payment_method"),
    ],
)
async def test_anything_but_a_pm_token_never_reaches_stripe(
    adapter: StripeProvider, provider_http: respx.Router, payment_method: str, code: str
) -> None:
    anything = stripe_host(provider_http)
    with structlog.testing.capture_logs() as logs:
        result = await adapter.create_payment(request_for(payment_method))
    assert (result.status, result.failure_code) == ("failed", code)
    assert payment_method not in (result.failure_message or "")
    assert payment_method not in repr(logs)
    assert anything.call_count == 0


def test_is_configured_by_the_modes_secret_key() -> None:
    both = StripeProvider(StripeSettings(test_secret_key="sk_test_1", live_secret_key="sk_live_1"), 2.0)
    test_only = StripeProvider(StripeSettings(test_secret_key="sk_test_1"), 2.0)
    blank = StripeProvider(StripeSettings(test_secret_key="  ", live_secret_key=None), 2.0)
    assert (both.is_configured(False), both.is_configured(True)) == (True, True)
    assert (test_only.is_configured(False), test_only.is_configured(True)) == (True, False)
    assert (blank.is_configured(False), blank.is_configured(True)) == (False, False)
    assert both.capabilities.action_ttl_seconds is None


async def test_aclose_closes_each_modes_http_client() -> None:
    provider = StripeProvider(StripeSettings(test_secret_key="sk_test_1", live_secret_key="sk_live_1"), 2.0)
    clients = [mode.http._client_async for mode in provider._modes.values()]
    assert len(clients) == 2
    assert not any(c.is_closed for c in clients)
    await provider.aclose()
    assert all(c.is_closed for c in clients)


async def test_fetch_refund_by_id_and_by_our_id_in_the_intents_refunds(
    adapter: StripeProvider, provider_http: respx.Router
) -> None:
    payment = PaymentRef(
        payment_id="pay_01jdpz0000000000000000000a",
        provider_reference="pi_3Gw",
        amount=5_000,
        currency="KES",
        livemode=False,
        created_at=datetime.now(UTC),
    )
    mine = refund_object(
        "re_3Mine",
        amount=1_000,
        currency="kes",
        payment_intent_id="pi_3Gw",
        status="succeeded",
        refund_id="re_01jdpz0000000000000000000b",
        payment_id=payment.payment_id,
    )
    other = {**mine, "id": "re_3Other", "metadata": {"gateway_refund_id": "re_other"}}
    retrieve = provider_http.get(f"{REFUNDS_URL}/re_3Mine").mock(return_value=httpx.Response(200, json=mine))
    listing = provider_http.get(REFUNDS_URL).mock(
        return_value=httpx.Response(
            200, json={"object": "list", "url": "/v1/refunds", "has_more": False, "data": [other, mine]}
        )
    )
    ref = RefundRef("re_01jdpz0000000000000000000b", "re_3Mine", payment, 1_000, datetime.now(UTC))
    result = await adapter.fetch_refund(ref)
    assert (result.status, result.provider_reference, result.amount, result.currency) == (
        "succeeded",
        "re_3Mine",
        1_000,
        "KES",
    )
    assert retrieve.call_count == 1

    # A refund whose create timed out: found among the PaymentIntent's refunds (strongly consistent).
    result = await adapter.fetch_refund(RefundRef(ref.refund_id, None, payment, 1_000, ref.created_at))
    assert (result.status, result.provider_reference) == ("succeeded", "re_3Mine")
    assert dict(listing.calls.last.request.url.params) == {"payment_intent": "pi_3Gw", "limit": "100"}

    # Not there: nothing is concluded from absence.
    with pytest.raises(ProviderUnavailable):
        await adapter.fetch_refund(
            RefundRef("re_01jdpz0000000000000000000c", None, payment, 1_000, ref.created_at)
        )


# Transformers (pure)


@pytest.mark.parametrize("currency", sorted(amounts.STRIPE_CURRENCIES))
def test_every_currency_round_trips_through_stripe_units(currency: str) -> None:
    # An amount every currency can take, in any of its units (a multiple of 1 000: whole in minor
    # units of up to three decimals, last digit 0), written out rather than derived from the gateway.
    amount = 123_000
    stripe_amount = amounts.to_stripe_amount(amount, currency)
    assert amounts.from_stripe_amount(stripe_amount, currency) == amount


def test_stripe_units_where_they_differ_from_iso() -> None:
    assert amounts.to_stripe_amount(5, "UGX") == 500
    assert amounts.to_stripe_amount(5, "ISK") == 500
    assert amounts.to_stripe_amount(500, "MGA") == 5
    assert amounts.from_stripe_amount(500, "UGX") == 5
    assert amounts.from_stripe_amount(5, "MGA") == 500
    with pytest.raises(amounts.UnsupportedAmount):
        amounts.to_stripe_amount(550, "MGA")
    with pytest.raises(amounts.UnsupportedAmount):
        amounts.to_stripe_amount(5_124, "KWD")
    assert amounts.to_stripe_amount(5_120, "KWD") == 5_120
    with pytest.raises(amounts.UnsupportedAmount):
        amounts.to_stripe_amount(100, "IQD")
    with pytest.raises(ValueError, match="whole number"):
        amounts.from_stripe_amount(550, "ISK")


@pytest.mark.parametrize(
    ("value", "pan"),
    [
        ("4242424242424242", True),
        ("5555 5555 5555 4444", True),
        ("4000-0000-0000-0002", True),
        ("378282246310005", True),  # Amex, 15 digits
        ("4242424242424241", False),  # fails Luhn
        ("42424242", False),
        ("pm_card_visa", False),
        ("pm_4242424242424242", False),
    ],
)
def test_card_numbers_are_recognised(value: str, pan: bool) -> None:
    assert tf.looks_like_card_number(value) is pan


@pytest.mark.parametrize(
    ("status", "extra", "ours", "next_action_type"),
    [
        ("succeeded", {}, "succeeded", None),
        ("processing", {}, "processing", None),
        ("requires_capture", {}, "processing", None),
        ("canceled", {}, "canceled", None),
        ("requires_action", {"next_action": redirect_action("pi_3Gw")}, "requires_action", "redirect_to_url"),
        (
            "requires_action",
            {"next_action": {"type": "use_stripe_sdk"}},
            "requires_action",
            "use_client_secret",
        ),
        ("requires_payment_method", {"flow": "client"}, "requires_action", "use_client_secret"),
        ("requires_confirmation", {"flow": "client"}, "requires_action", "use_client_secret"),
        ("requires_payment_method", {"last_payment_error": {"code": "card_declined"}}, "failed", None),
    ],
)
def test_payment_intent_statuses(
    status: str, extra: dict[str, Any], ours: str, next_action_type: str | None
) -> None:
    pi = payment_intent("pi_3Gw", amount=1_050, currency="usd", status=status, payment_id="pay_x", **extra)
    result = tf.payment_result(pi)
    assert (result.status, result.provider_reference, result.amount, result.currency) == (
        ours,
        "pi_3Gw",
        1_050,
        "USD",
    )
    assert (result.next_action or {}).get("type") == next_action_type


def test_events_we_do_not_act_on_are_kept_without_a_result() -> None:
    pi = payment_intent(
        "pi_3Gw", amount=1_050, currency="usd", status="requires_payment_method", payment_id="pay_x"
    )
    for event_type in ("payment_intent.created", "charge.succeeded", "customer.created"):
        mapped = nt.interpret(event(event_type, pi))
        assert (mapped.result, mapped.refund_result, mapped.event_type) == (None, None, event_type)
    charge_without_refunds = {
        "id": "ch_3Gw",
        "object": "charge",
        "amount": 1_050,
        "currency": "usd",
        "refunded": True,
    }
    assert nt.interpret(event("charge.refunded", charge_without_refunds)).refund_result is None
    with pytest.raises(WebhookPayloadError):
        nt.interpret({"id": "evt_1", "type": "payment_intent.succeeded", "data": {}})
    with pytest.raises(WebhookPayloadError):
        nt.interpret(event("payment_intent.succeeded", {**pi, "status": "teleported"}))


def test_a_wait_without_anything_to_show_is_not_applied() -> None:
    # An Elements customer's declined attempt: still waiting for them, with their client secret.
    pi = payment_intent(
        "pi_3Gw",
        amount=1_050,
        currency="usd",
        status="requires_payment_method",
        payment_id="pay_x",
        flow="client",
        last_payment_error={"type": "card_error", "code": "card_declined"},
    )
    mapped = nt.interpret(event("payment_intent.payment_failed", pi))
    assert mapped.result is not None
    assert (mapped.result.status, mapped.payment_id, mapped.provider_reference) == (
        "requires_action",
        "pay_x",
        "pi_3Gw",
    )
    assert mapped.result.next_action == {
        "type": "use_client_secret",
        "use_client_secret": {"client_secret": pi["client_secret"]},
    }
    # Without a client secret in the payload there is nothing to show: the merchant keeps theirs.
    bare = {
        **pi,
        "status": "requires_action",
        "client_secret": None,
        "next_action": {"type": "use_stripe_sdk"},
    }
    assert nt.interpret(event("payment_intent.requires_action", bare)).result is None


def test_checks_for_before_a_payment_exists() -> None:
    # Pure checks a service can run before storing anything (to answer 422 rather than fail the payment).
    assert tf.payment_method_problem(None) is None
    assert tf.payment_method_problem("pm_card_visa") is None
    assert tf.payment_method_problem("4242 4242 4242 4242") == (
        "card_number_not_allowed",
        tf.CARD_NUMBER_REFUSED,
    )
    assert tf.payment_method_problem("tok_visa") == ("invalid_payment_method", tf.NOT_A_TOKEN)
    assert amounts.amount_problem(15_000, "MGA") is None
    assert (
        amounts.amount_problem(15_050, "MGA")
        == "Stripe takes MGA in whole units only: amount must be a multiple of 100"
    )
    assert (
        amounts.amount_problem(1_234, "BHD") == "Stripe takes BHD amounts only in multiples of 10 (0.010 BHD)"
    )
    assert amounts.amount_problem(1_230, "BHD") is None


# How it was paid: the charge's payment_method_details.card


async def test_a_confirmed_payment_shows_the_card_of_its_expanded_charge(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    provider_http.post(PI_URL).mock(side_effect=intents("succeeded", expanded=True))
    r = await create(client, merchant, payment_method="pm_card_visa")
    assert (r.status_code, r.json()["status"]) == (201, "succeeded"), r.text
    p = r.json()
    assert p["payment_method_details"] == VISA_DETAILS
    assert (await get(client, merchant, f"/v1/payments/{p['id']}"))["payment_method_details"] == VISA_DETAILS
    events = (await get(client, merchant, f"/v1/payments/{p['id']}/events"))["data"]
    assert [(e["type"], e["data"]["object"]["payment_method_details"]) for e in events] == [
        ("payment.succeeded", VISA_DETAILS),
        ("payment.created", None),
    ]


async def test_a_declined_card_is_named_by_the_payment_method_in_stripes_error(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    def declined(request: httpx.Request) -> httpx.Response:
        payment_id = form(request)["metadata[gateway_payment_id]"]
        pi = payment_intent(
            pi_id_for(payment_id),
            amount=5_000,
            currency="kes",
            status="requires_payment_method",
            payment_id=payment_id,
        )
        body = card_error("card_declined", "insufficient_funds", "Your card has insufficient funds.", pi)
        # Stripe's error names the PaymentMethod it tried, its card as a Charge would describe it.
        card = {**VISA_CARD, "last4": "9995", "funding": "debit"}
        body["error"]["payment_method"] = {
            "id": "pm_1Nx",
            "object": "payment_method",
            "type": "card",
            "card": card,
        }
        return httpx.Response(402, json=body)

    provider_http.post(PI_URL).mock(side_effect=declined)
    r = await create(client, merchant, payment_method="pm_card_visa_chargeDeclinedInsufficientFunds")
    assert (r.status_code, r.json()["code"]) == (402, "insufficient_funds"), r.text
    card = {**VISA_DETAILS, "last4": "9995", "funding": "debit"}
    assert r.json()["payment"]["payment_method_details"] == card
    p = await get(client, merchant, f"/v1/payments/{r.json()['payment']['id']}")
    assert (p["status"], p["payment_method_details"]) == ("failed", card)


async def test_charge_succeeded_settles_a_payment_with_its_card(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, provider_http: respx.Router
) -> None:
    p = await waiting(client, merchant, provider_http)
    pi_id = p["provider_reference"]
    meta = {"gateway_payment_id": p["id"], "gateway_flow": "server"}
    hook = signed(event("charge.succeeded", charge(pi_id, amount=5_000, currency="kes", metadata=meta)))
    assert (await webhook(client, *hook)).status_code == 200
    after = await settles(client, merchant, f"/v1/payments/{p['id']}", "succeeded")
    assert after["payment_method_details"] == VISA_DETAILS
    events = (await get(client, merchant, f"/v1/payments/{p['id']}/events"))["data"]
    assert (events[0]["type"], events[0]["data"]["object"]["payment_method_details"]) == (
        "payment.succeeded",
        VISA_DETAILS,
    )
    # payment_intent.succeeded, after it, changes nothing (and keeps the card).
    late = event("payment_intent.succeeded", pi_for(p, "succeeded"))
    assert (await webhook(client, *signed(late))).status_code == 200

    async def processed() -> bool:
        sql = "SELECT outcome FROM inbound_webhooks WHERE provider = 'stripe' AND provider_event_id = :id"
        return bool(await gateway.scalar(sql, id=late["id"]) == "no_change")

    await wait_for(processed)
    assert (await get(client, merchant, f"/v1/payments/{p['id']}"))["payment_method_details"] == VISA_DETAILS
    assert [t for t, _ in await trail(client, merchant, p["id"])] == [
        "payment.created",
        "payment.requires_action",
        "payment.succeeded",
    ]


async def test_charge_succeeded_after_payment_intent_succeeded_adds_the_card(
    client: httpx.AsyncClient, merchant: Merchant, provider_http: respx.Router
) -> None:
    p = await waiting(client, merchant, provider_http)
    assert (
        await webhook(client, *signed(event("payment_intent.succeeded", pi_for(p, "succeeded"))))
    ).status_code == 200
    after = await settles(client, merchant, f"/v1/payments/{p['id']}", "succeeded")
    assert after["payment_method_details"] is None  # the PaymentIntent names its charge by id only
    meta = {"gateway_payment_id": p["id"], "gateway_flow": "server"}
    obj = charge(p["provider_reference"], amount=5_000, currency="kes", metadata=meta)
    assert (await webhook(client, *signed(event("charge.succeeded", obj)))).status_code == 200

    async def carded() -> bool:
        details = (await get(client, merchant, f"/v1/payments/{p['id']}"))["payment_method_details"]
        return bool(details == VISA_DETAILS)

    await wait_for(carded)
    # A detail added to a settled payment is no status change: no second payment.succeeded.
    assert [t for t, _ in await trail(client, merchant, p["id"])] == [
        "payment.created",
        "payment.requires_action",
        "payment.succeeded",
    ]


def test_an_uncaptured_or_failed_charge_moves_nothing() -> None:
    obj = charge("pi_3abc", amount=5_000, currency="kes", metadata={}, status="failed")
    assert nt.interpret(event("charge.failed", obj)).result is None
    assert (
        nt.interpret(event("charge.succeeded", {**obj, "status": "succeeded", "captured": False})).result
        is None
    )
