"""Payments without a rail, their client secret, and confirm (docs/api.md, "Checkout: client secret
and confirm"), against the real gateway, PostgreSQL and Redis; the sandbox runs in the gateway."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from auth.credentials import add_key
from checkout_api.shop import Shop, attempts, confirm, create, idem, new_shop, row
from support import Gateway, assert_problem

PUBLIC_KEYS = [
    "id",
    "object",
    "amount",
    "currency",
    "status",
    "livemode",
    "description",
    "provider",
    "next_action",
    "last_payment_error",
    "payment_methods",
]


@pytest.fixture
async def shop(gateway: Gateway) -> Shop:
    return await new_shop(gateway)


def provider_calls(gateway: Gateway) -> int:
    return sum(gateway.ctx.registry.calls.values())


async def test_a_payment_without_a_provider_waits_for_its_method(
    gateway: Gateway, client: httpx.AsyncClient, shop: Shop
) -> None:
    calls = provider_calls(gateway)
    p = await create(client, shop, locale="fr", return_url="https://shop.example/done")
    assert p["status"] == "requires_payment_method"
    assert (p["provider"], p["payment_method"], p["provider_reference"], p["next_action"]) == (
        None,
        None,
        None,
        None,
    )
    assert p["client_secret"].startswith(f"{p['id']}_secret_")
    assert len(p["client_secret"]) > len(p["id"]) + 30
    checkout_id = await gateway.scalar("SELECT checkout_id FROM payments WHERE id = :id", id=p["id"])
    assert checkout_id.startswith("cs_")
    assert p["checkout_url"].endswith(f"/checkout/{checkout_id}")
    assert p["checkout_url"].startswith("http://127.0.0.1:")
    assert p["client_secret"] not in p["checkout_url"]
    assert (p["locale"], p["allow_retries"], p["payment_link"]) == ("fr", True, None)
    assert provider_calls(gateway) == calls
    stored = await row(gateway, p["id"])
    # No lease, nothing for the reconciler to ask anyone.
    assert (stored["provider_lease_until"], stored["next_reconcile_at"], stored["attempt"]) == (None, None, 0)
    assert await attempts(gateway, p["id"]) == []
    # The secret key reads it whole, client secret included.
    got = await client.get(f"/v1/payments/{p['id']}", headers=shop.secret.auth)
    assert got.json() == p
    listed = await client.get("/v1/payments", headers=shop.secret.auth)
    assert listed.json()["data"] == [p]


@pytest.mark.parametrize(
    "body",
    [
        {"payment_method": "pm_success"},  # a method needs its provider
        {"locale": "de"},
        {"allow_retries": "sometimes"},
        {"provider": "sandbox", "payment_method": "pm_nonsense"},
    ],
)
async def test_bad_creates_write_nothing(
    gateway: Gateway, client: httpx.AsyncClient, shop: Shop, body: dict[str, Any]
) -> None:
    r = await client.post(
        "/v1/payments", json={"amount": 1500, "currency": "KES", **body}, headers=shop.secret.auth | idem()
    )
    assert_problem(r, 422, "validation_error")
    assert await gateway.scalar("SELECT count(*) FROM payments WHERE merchant_id = :m", m=shop.id) == 0


async def test_the_browser_reads_the_public_subset_with_the_client_secret(
    gateway: Gateway, client: httpx.AsyncClient, shop: Shop, other_shop: Shop
) -> None:
    p = await create(client, shop)
    r = await client.get(
        f"/v1/payments/{p['id']}", params={"client_secret": p["client_secret"]}, headers=shop.publishable.auth
    )
    assert r.status_code == 200, r.text
    public = r.json()
    assert list(public) == PUBLIC_KEYS
    assert public == {
        "id": p["id"],
        "object": "payment",
        "amount": 1500,
        "currency": "KES",
        "status": "requires_payment_method",
        "livemode": False,
        "description": "Two coffees",
        "provider": None,
        "next_action": None,
        "last_payment_error": None,
        # KES in test mode: the sandbox and the deployment's mobile money and card rails; never cash.
        "payment_methods": public["payment_methods"],
    }
    assert "sandbox" in public["payment_methods"]
    assert "mpesa" in public["payment_methods"]
    assert "cash" not in public["payment_methods"]
    assert p["client_secret"] not in r.text
    # A wrong secret, none, another payment's, or another merchant's key: 404, as a missing payment.
    q = await create(client, shop)
    secret = p["client_secret"]
    wrong = secret[:-2] + ("yy" if secret.endswith("xx") else "xx")  # never the secret itself
    for params, key in (
        ({"client_secret": wrong}, shop.publishable),
        ({}, shop.publishable),
        ({"client_secret": q["client_secret"]}, shop.publishable),
        ({"client_secret": p["client_secret"]}, other_shop.publishable),
    ):
        r = await client.get(f"/v1/payments/{p['id']}", params=params, headers=key.auth)
        assert_problem(r, 404, "resource_missing")
    # A secret no payment has (longer than any) is refused as the document says, whoever asks.
    for key in (shop.publishable, shop.secret):
        r = await client.get(f"/v1/payments/{p['id']}", params={"client_secret": "s" * 101}, headers=key.auth)
        assert_problem(r, 422, "validation_error")
    # A secret key needs no secret and still gets the whole payment.
    r = await client.get(
        f"/v1/payments/{p['id']}", params={"client_secret": "wrong"}, headers=shop.secret.auth
    )
    assert r.json() == p


@pytest.fixture
async def other_shop(gateway: Gateway) -> Shop:
    return await new_shop(gateway)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/payments"),
        ("POST", "/v1/payments"),
        ("GET", "/v1/payments/{id}/events"),
        ("GET", "/v1/payments/{id}/attempts"),
        ("POST", "/v1/payments/{id}/cancel"),
        ("POST", "/v1/payments/{id}/sync"),
        ("POST", "/v1/payments/{id}/refunds"),
        ("GET", "/v1/refunds"),
        ("GET", "/v1/events"),
    ],
)
async def test_a_publishable_key_is_refused_everywhere_else(
    gateway: Gateway, client: httpx.AsyncClient, shop: Shop, method: str, path: str
) -> None:
    p = await create(client, shop)
    url = path.format(id=p["id"])
    body = {"amount": 100, "currency": "KES"} if method == "POST" else None
    r = await client.request(
        method,
        url,
        params={"client_secret": p["client_secret"]},
        json=body,
        headers=shop.publishable.auth | idem(),
    )
    assert_problem(r, 403, "insufficient_scope")
    assert (await row(gateway, p["id"]))["status"] == "requires_payment_method"


async def test_confirm_from_the_browser_then_never_again(
    gateway: Gateway, client: httpx.AsyncClient, shop: Shop
) -> None:
    p = await create(client, shop)
    calls = gateway.calls("sandbox.create_payment")
    r = await confirm(client, shop.publishable, p, {"provider": "sandbox", "payment_method": "pm_success"})
    assert r.status_code == 200, r.text
    public = r.json()
    assert list(public) == PUBLIC_KEYS
    assert (public["status"], public["provider"], public["last_payment_error"]) == (
        "succeeded",
        "sandbox",
        None,
    )
    assert p["client_secret"] not in r.text
    assert gateway.calls("sandbox.create_payment") == calls + 1
    assert await attempts(gateway, p["id"]) == [(1, "sandbox", "succeeded", "sbx_" + p["id"][4:])]
    # The merchant sees the rail chosen and the attempt under the payment.
    full = (await client.get(f"/v1/payments/{p['id']}", headers=shop.secret.auth)).json()
    assert (full["status"], full["provider"], full["payment_method"]) == (
        "succeeded",
        "sandbox",
        "pm_success",
    )
    listed = (await client.get(f"/v1/payments/{p['id']}/attempts", headers=shop.secret.auth)).json()
    assert listed["object"] == "list"
    assert listed["has_more"] is False
    [attempt] = listed["data"]
    assert attempt["id"].startswith("att_")
    assert {k: attempt[k] for k in ("object", "payment", "number", "provider", "status", "failure_code")} == {
        "object": "payment_attempt",
        "payment": p["id"],
        "number": 1,
        "provider": "sandbox",
        "status": "succeeded",
        "failure_code": None,
    }
    # A second confirm, from the browser or the back end, whatever it asks: 409, nothing sent.
    for key in (shop.publishable, shop.secret):
        again = await confirm(client, key, p, {"provider": "sandbox", "payment_method": "pm_success"})
        problem = assert_problem(again, 409, "payment_already_confirmed")
        assert problem["status_now"] == "succeeded"
    assert gateway.calls("sandbox.create_payment") == calls + 1
    assert len(await attempts(gateway, p["id"])) == 1
    # The trail: created, pending (the confirm), succeeded; no event carries the client secret.
    events = (await client.get(f"/v1/payments/{p['id']}/events", headers=shop.secret.auth)).json()["data"]
    assert [e["type"] for e in reversed(events)] == [
        "payment.created",
        "payment.pending",
        "payment.succeeded",
    ]
    feed = await client.get("/v1/events", params={"limit": 100}, headers=shop.secret.auth)
    assert p["id"] in feed.text
    assert p["client_secret"] not in feed.text
    assert all(e["data"]["object"]["client_secret"] is None for e in feed.json()["data"])
    stored = await gateway.scalar(
        "SELECT count(*) FROM events WHERE payment_id = :id AND data::text LIKE :s",
        id=p["id"],
        s=f"%{p['client_secret']}%",
    )
    assert stored == 0


async def test_a_wrong_secret_confirms_nothing(
    gateway: Gateway, client: httpx.AsyncClient, shop: Shop
) -> None:
    p = await create(client, shop)
    calls = provider_calls(gateway)
    for secret in (p["client_secret"] + "x", f"{p['id']}_secret_guess"):
        r = await confirm(client, shop.publishable, p, {"provider": "sandbox"}, secret=secret)
        assert_problem(r, 404, "resource_missing")
    # A publishable key without any secret.
    r = await client.post(
        f"/v1/payments/{p['id']}/confirm",
        json={"provider": "sandbox"},
        headers=shop.publishable.auth | idem(),
    )
    assert_problem(r, 404, "resource_missing")
    assert provider_calls(gateway) == calls
    assert (await row(gateway, p["id"]))["status"] == "requires_payment_method"
    assert await attempts(gateway, p["id"]) == []


async def test_the_back_end_confirms_without_the_secret_and_sees_it(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    p = await create(client, shop)
    r = await confirm(client, shop.secret, p, {"provider": "sandbox", "payment_method": "pm_action_never"})
    assert r.status_code == 200, r.text
    full = r.json()
    assert (full["status"], full["client_secret"], full["checkout_url"]) == (
        "requires_action",
        p["client_secret"],
        p["checkout_url"],
    )
    # requires_action is no definitive answer: never a retry, whatever allow_retries says.
    again = await confirm(
        client, shop.publishable, p, {"provider": "sandbox", "payment_method": "pm_success"}
    )
    assert assert_problem(again, 409, "payment_already_confirmed")["status_now"] == "requires_action"


async def test_a_failed_attempt_may_be_retried_when_the_merchant_allows_it(
    gateway: Gateway, client: httpx.AsyncClient, shop: Shop
) -> None:
    p = await create(client, shop)
    calls = gateway.calls("sandbox.create_payment")
    declined = await confirm(
        client, shop.publishable, p, {"provider": "sandbox", "payment_method": "pm_card_declined"}
    )
    problem = assert_problem(declined, 402, "card_declined")
    assert list(problem["payment"]) == PUBLIC_KEYS
    assert problem["payment"]["last_payment_error"] == {
        "code": "card_declined",
        "message": "The card was declined.",
    }
    assert p["client_secret"] not in declined.text
    retried = await confirm(
        client, shop.publishable, p, {"provider": "sandbox", "payment_method": "pm_success"}
    )
    assert retried.status_code == 200, retried.text
    assert (retried.json()["status"], retried.json()["last_payment_error"]) == ("succeeded", None)
    assert gateway.calls("sandbox.create_payment") == calls + 2
    # Each attempt under the payment; the second spoke to the provider under its own key.
    assert await attempts(gateway, p["id"]) == [
        (1, "sandbox", "failed", "sbx_" + p["id"][4:]),
        (2, "sandbox", "succeeded", "sbx_" + p["id"][4:] + "_2"),
    ]
    full = (await client.get(f"/v1/payments/{p['id']}", headers=shop.secret.auth)).json()
    assert (full["status"], full["failure_code"], full["provider_reference"]) == (
        "succeeded",
        None,
        "sbx_" + p["id"][4:] + "_2",
    )
    events = (await client.get(f"/v1/payments/{p['id']}/events", headers=shop.secret.auth)).json()["data"]
    assert [(e["type"], e["data"]["previous_status"]) for e in reversed(events)] == [
        ("payment.created", None),
        ("payment.pending", "requires_payment_method"),
        ("payment.failed", "pending"),
        ("payment.pending", "failed"),
        ("payment.succeeded", "pending"),
    ]


async def test_no_retry_when_the_merchant_forbids_it(
    gateway: Gateway, client: httpx.AsyncClient, shop: Shop
) -> None:
    p = await create(client, shop, allow_retries=False)
    assert p["allow_retries"] is False
    declined = await confirm(
        client, shop.publishable, p, {"provider": "sandbox", "payment_method": "pm_card_declined"}
    )
    assert_problem(declined, 402, "card_declined")
    calls = gateway.calls("sandbox.create_payment")
    again = await confirm(
        client, shop.publishable, p, {"provider": "sandbox", "payment_method": "pm_success"}
    )
    assert assert_problem(again, 409, "payment_already_confirmed")["status_now"] == "failed"
    assert gateway.calls("sandbox.create_payment") == calls
    assert [a[2] for a in await attempts(gateway, p["id"])] == ["failed"]


async def test_a_payment_created_with_its_rail_keeps_its_first_attempt_on_retry(
    gateway: Gateway, client: httpx.AsyncClient, shop: Shop
) -> None:
    r = await client.post(
        "/v1/payments",
        json={"amount": 900, "currency": "KES", "provider": "sandbox", "payment_method": "pm_card_declined"},
        headers=shop.secret.auth | idem(),
    )
    p = assert_problem(r, 402, "card_declined")["payment"]
    assert p["client_secret"].startswith(p["id"])  # a 402 to the secret key carries the whole payment
    retried = await confirm(client, shop.secret, p, {"provider": "sandbox", "payment_method": "pm_success"})
    assert retried.json()["status"] == "succeeded"
    assert await attempts(gateway, p["id"]) == [
        (1, "sandbox", "failed", "sbx_" + p["id"][4:]),
        (2, "sandbox", "succeeded", "sbx_" + p["id"][4:] + "_2"),
    ]


async def test_confirm_validates_as_a_create_would(
    gateway: Gateway, client: httpx.AsyncClient, shop: Shop
) -> None:
    p = await create(client, shop, amount=1550)
    calls = provider_calls(gateway)
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"provider": "nowhere"}, 422, "provider_unknown"),
        ({"provider": "sandbox", "payment_method": "pm_nonsense"}, 422, "validation_error"),
        ({"provider": "mpesa", "customer": {"phone": "+254712345678"}}, 422, "validation_error"),  # KES 15.50
        ({"provider": "mpesa"}, 422, "invalid_phone"),  # nobody to prompt
        ({"provider": "mpesa", "customer": {"phone": "not a phone"}}, 422, "invalid_phone"),
        ({"provider": "sandbox", "customer": {"email": "nope"}}, 422, "invalid_email"),
        ({"provider": "cash"}, 422, "provider_not_configured"),  # cash is the merchant's to record
        ({"provider": "sandbox", "payment_method": "4242424242424242"}, 422, "card_number_not_allowed"),
        ({"provider": "sandbox", "surprise": True}, 422, "validation_error"),
    ]
    for body, status, code in cases:
        assert_problem(await confirm(client, shop.publishable, p, body), status, code)
    assert provider_calls(gateway) == calls
    assert (await row(gateway, p["id"]))["status"] == "requires_payment_method"
    assert await attempts(gateway, p["id"]) == []


async def test_an_unconfigured_provider_is_422(gateway: Gateway, client: httpx.AsyncClient) -> None:
    shop = await new_shop(gateway, livemode=True)
    r = await client.post(
        "/v1/payments", json={"amount": 1500, "currency": "KES"}, headers=shop.secret.auth | idem()
    )
    p = r.json()
    assert (r.status_code, p["livemode"]) == (201, True)
    public = await client.get(
        f"/v1/payments/{p['id']}", params={"client_secret": p["client_secret"]}, headers=shop.publishable.auth
    )
    assert "sandbox" not in public.json()["payment_methods"]  # never in live mode
    problem = assert_problem(
        await confirm(client, shop.publishable, p, {"provider": "sandbox"}), 422, "provider_not_configured"
    )
    assert problem["detail"] == "The sandbox provider has no live-mode credentials."
    assert (await row(gateway, p["id"]))["status"] == "requires_payment_method"


async def test_a_confirm_is_replayed_by_its_idempotency_key(
    gateway: Gateway, client: httpx.AsyncClient, shop: Shop
) -> None:
    p = await create(client, shop)
    key = str(uuid.uuid4())
    body = {"provider": "sandbox", "payment_method": "pm_action_never"}
    first = await confirm(client, shop.publishable, p, body, idempotency_key=key)
    calls = gateway.calls("sandbox.create_payment")
    again = await confirm(client, shop.publishable, p, body, idempotency_key=key)
    assert (first.status_code, again.status_code, again.headers["idempotent-replayed"]) == (200, 200, "true")
    assert again.content == first.content
    assert gateway.calls("sandbox.create_payment") == calls
    reused = await confirm(
        client, shop.publishable, p, {**body, "payment_method": "pm_success"}, idempotency_key=key
    )
    assert_problem(reused, 422, "idempotency_key_reused")
    missing = await client.post(
        f"/v1/payments/{p['id']}/confirm",
        json={"client_secret": p["client_secret"], **body},
        headers=shop.publishable.auth,
    )
    assert_problem(missing, 400, "idempotency_key_missing")


async def test_a_payment_waiting_for_its_method_is_canceled_without_any_provider(
    gateway: Gateway, client: httpx.AsyncClient, shop: Shop
) -> None:
    p = await create(client, shop)
    calls = provider_calls(gateway)
    r = await client.post(f"/v1/payments/{p['id']}/cancel", headers=shop.secret.auth | idem())
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["client_secret"]) == ("canceled", p["client_secret"])
    assert provider_calls(gateway) == calls
    again = await confirm(client, shop.publishable, p, {"provider": "sandbox"})
    assert assert_problem(again, 409, "payment_already_confirmed")["status_now"] == "canceled"


async def test_a_restricted_key_confirms_with_payments_write_only(
    gateway: Gateway, client: httpx.AsyncClient, shop: Shop
) -> None:
    p = await create(client, shop)
    reader = await add_key(gateway, shop.id, "restricted", scopes=["payments:read"])
    writer = await add_key(gateway, shop.id, "restricted", scopes=["payments:write"])
    assert_problem(await confirm(client, reader, p, {"provider": "sandbox"}), 403, "insufficient_scope")
    r = await confirm(client, writer, p, {"provider": "sandbox", "payment_method": "pm_success"})
    assert (r.status_code, r.json()["status"], r.json()["client_secret"]) == (
        200,
        "succeeded",
        p["client_secret"],
    )
