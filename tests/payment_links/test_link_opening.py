"""The customer's side of a payment link: /l/{slug} makes (or finds) the payment and sends the
browser to its checkout; expired, deactivated and paid single-use links answer 410; a customer-chosen
amount is checked against the link's bounds."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from gateway.payments import repository as payments
from gateway.payments import state
from payment_links.links import create_link, key, link_payments, slug_of
from ratelimits.serving import serving
from support import Gateway, Merchant, assert_problem

JSON = {"Accept": "application/json"}


@pytest.fixture
async def browser(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    """A customer's browser: its own cookie jar, no API key, redirects not followed."""
    async with httpx.AsyncClient(base_url=gateway.base_url, timeout=30) as c:
        yield c


async def payment_row(gateway: Gateway, checkout_id: str) -> dict[str, Any]:
    row = await gateway.ctx.db.fetchrow(
        "SELECT id, status, provider, amount, currency, description, payment_link_id, merchant_id, livemode"
        " FROM payments WHERE checkout_id = $1",
        checkout_id,
    )
    assert row is not None
    return dict(row)


def checkout_of(r: httpx.Response) -> str:
    assert r.status_code == 303, r.text
    m = re.fullmatch(r"/checkout/(cs_[A-Za-z0-9_-]+)", r.headers["location"])
    assert m, r.headers["location"]
    return m.group(1)


async def succeed(gateway: Gateway, payment_id: str) -> None:
    """The payment's success as a provider webhook applies it: through the state machine."""
    async with gateway.ctx.db.transaction() as tx:
        payment = await payments.lock(tx, payment_id)
        assert payment is not None
        assert state.move(tx, payment, state.S.SUCCEEDED, source="webhook")


async def confirm(
    client: httpx.AsyncClient, merchant: Merchant, payment_id: str, method: str
) -> dict[str, Any]:
    """The merchant confirms the link's payment on the sandbox (the checkout page's path)."""
    r = await client.post(
        f"/v1/payments/{payment_id}/confirm",
        json={"provider": "sandbox", "payment_method": method},
        headers=merchant.auth | key(),
    )
    assert r.status_code in (200, 402), r.text
    body = r.json()
    return dict(body.get("payment", body))


async def test_opening_a_link_makes_a_payment_and_sends_the_browser_to_its_checkout(
    gateway: Gateway, client: httpx.AsyncClient, browser: httpx.AsyncClient, merchant: Merchant
) -> None:
    link = await create_link(client, merchant, amount=2500, description="Mango crate")
    slug = slug_of(link)

    r = await browser.get(f"/l/{slug}")

    checkout = checkout_of(r)
    row = await payment_row(gateway, checkout)
    assert row["id"].startswith("pay_")
    assert (row["status"], row["provider"], row["payment_link_id"]) == (
        "requires_payment_method",
        None,
        link["id"],
    )
    assert (row["amount"], row["currency"], row["description"]) == (2500, "KES", "Mango crate")
    assert (row["merchant_id"], row["livemode"]) == (merchant.id, False)
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"gw_link_payment={checkout};")
    attrs = {a.strip().lower() for a in cookie.split(";")[1:]}
    assert {"httponly", f"path=/l/{slug}".lower(), "samesite=lax"} <= attrs
    assert "secure" not in attrs  # the test gateway's public URL is http
    assert r.headers["cache-control"] == "no-store"
    assert "ratelimit-limit" not in r.headers  # outside /v1: no key, no key limits
    events = await gateway.scalar(
        "SELECT count(*) FROM events WHERE payment_id = :p AND type = 'payment.created'", p=row["id"]
    )
    assert events == 1

    listed = await client.get("/v1/payments", params={"payment_link": link["id"]}, headers=merchant.auth)
    assert [p["id"] for p in listed.json()["data"]] == [row["id"]]


async def test_a_reload_goes_back_to_the_same_payment_and_another_browser_gets_its_own(
    gateway: Gateway, client: httpx.AsyncClient, browser: httpx.AsyncClient, merchant: Merchant
) -> None:
    link = await create_link(client, merchant)
    slug = slug_of(link)

    first = checkout_of(await browser.get(f"/l/{slug}"))
    for _ in range(3):
        assert checkout_of(await browser.get(f"/l/{slug}")) == first
    assert await link_payments(gateway, link["id"]) == 1

    async with httpx.AsyncClient(base_url=gateway.base_url) as other:
        second = checkout_of(await other.get(f"/l/{slug}"))
    assert second != first
    assert await link_payments(gateway, link["id"]) == 2

    # A forged cookie (another link's payment, or nonsense) is not followed: a new payment.
    other_link = await create_link(client, merchant)
    async with httpx.AsyncClient(base_url=gateway.base_url) as forger:
        forger.cookies.set("gw_link_payment", first, domain="127.0.0.1", path=f"/l/{slug_of(other_link)}")
        assert checkout_of(await forger.get(f"/l/{slug_of(other_link)}")) != first
    assert await link_payments(gateway, other_link["id"]) == 1


async def test_an_ended_payment_makes_way_for_a_new_one_on_a_reusable_link(
    gateway: Gateway, client: httpx.AsyncClient, browser: httpx.AsyncClient, merchant: Merchant
) -> None:
    link = await create_link(client, merchant, reusable=True)
    slug = slug_of(link)
    first = checkout_of(await browser.get(f"/l/{slug}"))
    await succeed(gateway, (await payment_row(gateway, first))["id"])

    second = checkout_of(await browser.get(f"/l/{slug}"))

    assert second != first
    assert await link_payments(gateway, link["id"]) == 2
    got = (await client.get(f"/v1/payment-links/{link['id']}", headers=merchant.auth)).json()
    assert got["active"] is True
    assert got["paid_at"] is not None


async def test_a_single_use_link_stops_after_its_first_success(
    gateway: Gateway, client: httpx.AsyncClient, browser: httpx.AsyncClient, merchant: Merchant
) -> None:
    link = await create_link(client, merchant, reusable=False)
    slug = slug_of(link)
    checkout = checkout_of(await browser.get(f"/l/{slug}"))
    assert await gateway.scalar("SELECT paid_at FROM payment_links WHERE id = :id", id=link["id"]) is None

    payment_id = (await payment_row(gateway, checkout))["id"]
    # A decline does not stop a single-use link; the customer retries the same payment.
    assert (await confirm(client, merchant, payment_id, "pm_card_declined"))["status"] == "failed"
    assert await gateway.scalar("SELECT paid_at FROM payment_links WHERE id = :id", id=link["id"]) is None
    assert (await confirm(client, merchant, payment_id, "pm_success"))["status"] == "succeeded"

    # Set with the payment's move, in its transaction.
    paid_at = await gateway.scalar("SELECT paid_at FROM payment_links WHERE id = :id", id=link["id"])
    completed_at = await gateway.scalar("SELECT completed_at FROM payments WHERE id = :id", id=payment_id)
    assert paid_at is not None
    assert completed_at is not None
    r = await browser.get(f"/l/{slug}")
    assert r.status_code == 410
    assert "payment_link_inactive" in r.text
    assert r.headers["content-type"].startswith("text/html")
    async with httpx.AsyncClient(base_url=gateway.base_url) as other:
        assert_problem(await other.get(f"/l/{slug}", headers=JSON), 410, "payment_link_inactive")
    assert await link_payments(gateway, link["id"]) == 1
    got = (await client.get(f"/v1/payment-links/{link['id']}", headers=merchant.auth)).json()
    assert (got["active"], got["paid_at"] is not None) == (False, True)


async def test_a_single_use_link_is_paid_once_even_by_two_customers_at_once(
    gateway: Gateway, client: httpx.AsyncClient, merchant: Merchant
) -> None:
    link = await create_link(client, merchant, reusable=False)
    slug = slug_of(link)
    opened = []
    for _ in range(4):  # four browsers, four payments of the one link
        async with httpx.AsyncClient(base_url=gateway.base_url) as b:
            opened.append((await payment_row(gateway, checkout_of(await b.get(f"/l/{slug}"))))["id"])
    a, b, c, d = opened

    async def confirm_raw(payment_id: str, method: str) -> httpx.Response:
        return await client.post(
            f"/v1/payments/{payment_id}/confirm",
            json={"provider": "sandbox", "payment_method": method},
            headers=merchant.auth | key(),
        )

    # A customer step under way on one payment holds the link: another customer is refused, and
    # nothing of that payment changes.
    assert (await confirm_raw(a, "pm_action_success")).json()["status"] == "requires_action"
    assert_problem(await confirm_raw(b, "pm_success"), 410, "payment_link_inactive")
    assert (
        await gateway.scalar("SELECT status FROM payments WHERE id = :id", id=b) == "requires_payment_method"
    )
    assert await gateway.scalar("SELECT count(*) FROM payment_attempts WHERE payment_id = :id", id=b) == 0
    # Once it is canceled, the link is free again; two customers at the same moment: one pays.
    assert (await client.post(f"/v1/payments/{a}/cancel", headers=merchant.auth | key())).status_code == 200
    answers = await asyncio.gather(confirm_raw(c, "pm_success"), confirm_raw(d, "pm_success"))
    assert sorted(r.status_code for r in answers) == [200, 410], [r.text for r in answers]
    paid = await gateway.scalar(
        "SELECT count(*) FROM payments WHERE payment_link_id = :l AND status = 'succeeded'", l=link["id"]
    )
    assert paid == 1
    assert_problem(await confirm_raw(b, "pm_success"), 410, "payment_link_inactive")


async def test_expired_deactivated_and_unknown_links(
    gateway: Gateway, client: httpx.AsyncClient, browser: httpx.AsyncClient, merchant: Merchant
) -> None:
    expired = await create_link(
        client, merchant, expires_at=(datetime.now(UTC) + timedelta(hours=1)).isoformat()
    )
    await gateway.execute(
        "UPDATE payment_links SET expires_at = now() - interval '1 second' WHERE id = :id", id=expired["id"]
    )
    off = await create_link(client, merchant)
    r = await client.post(f"/v1/payment-links/{off['id']}/deactivate", headers=merchant.auth)
    assert r.status_code == 200

    assert_problem(await browser.get(f"/l/{slug_of(expired)}", headers=JSON), 410, "payment_link_expired")
    assert_problem(await browser.get(f"/l/{slug_of(off)}", headers=JSON), 410, "payment_link_inactive")
    page = await browser.get(f"/l/{slug_of(expired)}")
    assert (page.status_code, "payment_link_expired" in page.text) == (410, True)
    assert page.headers["x-frame-options"] == "DENY"
    assert_problem(await browser.get("/l/no-such-link", headers=JSON), 404, "resource_missing")
    assert (await browser.get("/l/no-such-link")).status_code == 404
    for made in (expired, off):
        assert await link_payments(gateway, made["id"]) == 0
        got = (await client.get(f"/v1/payment-links/{made['id']}", headers=merchant.auth)).json()
        assert got["active"] is False


def csrf_of(page: httpx.Response) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert m, page.text
    return m.group(1)


async def test_a_customer_chosen_amount_is_held_to_the_links_bounds(
    gateway: Gateway, client: httpx.AsyncClient, browser: httpx.AsyncClient, merchant: Merchant
) -> None:
    link = await create_link(client, merchant, amount=None, min_amount=10_000, max_amount=500_000)
    slug = slug_of(link)

    page = await browser.get(f"/l/{slug}")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "<script" not in page.text
    assert "KES 100.00" in page.text
    assert "KES 5000.00" in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    token = csrf_of(page)
    assert await link_payments(gateway, link["id"]) == 0

    for amount in ("99.99", "5000.01", "0", "-5"):
        r = await browser.post(f"/l/{slug}", data={"amount": amount, "csrf_token": token})
        assert r.status_code == 422, amount
        assert r.headers["content-type"].startswith("text/html")
        assert "Choose an amount from KES 100.00 to KES 5000.00." in r.text
    r = await browser.post(f"/l/{slug}", data={"amount": "12.345", "csrf_token": token})
    assert (r.status_code, "Enter the amount as a number" in r.text) == (422, True)
    r = await browser.post(f"/l/{slug}", data={"amount": "20000", "csrf_token": token}, headers=JSON)
    problem = assert_problem(r, 422, "amount_out_of_range")
    assert (problem["min_amount"], problem["max_amount"]) == (10_000, 500_000)
    # Without the token of the form (another site's post): refused, nothing made.
    r = await browser.post(f"/l/{slug}", data={"amount": "150", "csrf_token": "forged"}, headers=JSON)
    assert_problem(r, 422, "validation_error")
    async with httpx.AsyncClient(base_url=gateway.base_url) as other:
        r = await other.post(f"/l/{slug}", data={"amount": "150", "csrf_token": token}, headers=JSON)
        assert_problem(r, 422, "validation_error")
    assert await link_payments(gateway, link["id"]) == 0

    checkout = checkout_of(await browser.post(f"/l/{slug}", data={"amount": "1,500.50", "csrf_token": token}))
    row = await payment_row(gateway, checkout)
    assert (row["amount"], row["status"], row["payment_link_id"]) == (
        150_050,
        "requires_payment_method",
        link["id"],
    )
    # The same browser: a reload of the link goes back to it; the same amount again too.
    assert checkout_of(await browser.get(f"/l/{slug}")) == checkout
    again = await browser.post(f"/l/{slug}", data={"amount": "1500.50", "csrf_token": token})
    assert checkout_of(again) == checkout
    assert await link_payments(gateway, link["id"]) == 1
    # Another amount (the customer went back and changed it): a payment of that amount.
    other_amount = checkout_of(await browser.post(f"/l/{slug}", data={"amount": "100", "csrf_token": token}))
    assert (await payment_row(gateway, other_amount))["amount"] == 10_000
    assert await link_payments(gateway, link["id"]) == 2


async def test_a_fixed_amount_link_takes_no_amount(
    gateway: Gateway, client: httpx.AsyncClient, browser: httpx.AsyncClient, merchant: Merchant
) -> None:
    link = await create_link(client, merchant, amount=1500)
    slug = slug_of(link)
    browser.cookies.set("gw_link_csrf", "t" * 43, domain="127.0.0.1", path=f"/l/{slug}")
    r = await browser.post(f"/l/{slug}", data={"amount": "1", "csrf_token": "t" * 43}, headers=JSON)
    assert_problem(r, 422, "validation_error")
    assert await link_payments(gateway, link["id"]) == 0


async def test_the_payment_list_filters_by_link(
    gateway: Gateway, client: httpx.AsyncClient, merchant: Merchant, other_merchant: Merchant
) -> None:
    one, two = await create_link(client, merchant), await create_link(client, merchant)
    made: dict[str, list[str]] = {one["id"]: [], two["id"]: []}
    for link, times in ((one, 2), (two, 1)):
        for _ in range(times):
            async with httpx.AsyncClient(base_url=gateway.base_url) as b:
                made[link["id"]].append(
                    (await payment_row(gateway, checkout_of(await b.get(f"/l/{slug_of(link)}"))))["id"]
                )
    plain = await client.post(
        "/v1/payments",
        json={"amount": 900, "currency": "KES", "provider": "sandbox", "payment_method": "pm_success"},
        headers=merchant.auth | {"Idempotency-Key": "plain-" + one["id"]},
    )
    assert plain.status_code == 201

    for link_id, ids in made.items():
        r = await client.get("/v1/payments", params={"payment_link": link_id}, headers=merchant.auth)
        assert r.status_code == 200
        assert [p["id"] for p in r.json()["data"]] == ids[::-1]
        assert {p["payment_link"] for p in r.json()["data"]} == {link_id}
    everything = await client.get("/v1/payments", params={"limit": 100}, headers=merchant.auth)
    assert len(everything.json()["data"]) == 4
    theirs = await client.get("/v1/payments", params={"payment_link": one["id"]}, headers=other_merchant.auth)
    assert theirs.json()["data"] == []


async def test_opens_that_make_payments_are_limited_per_address(gateway: Gateway, merchant: Merchant) -> None:
    """A crawler (or a chat app's link preview, in a loop) cannot fill the payments table; a browser
    going back to its own payment (its cookie) spends nothing."""
    unreached = {"live": "100000/second", "test": "100000/second", "failed_auth": "1000000/minute"}
    n = uuid.uuid4().int
    address = f"10.{n % 250}.{n // 250 % 250}.{n // 62500 % 250 + 1}"
    async with serving(gateway, address, link_opens_per_ip="3/minute", **unreached) as (client, _):
        link = await create_link(
            client, merchant, amount=1500, currency="KES", description="Tea", reusable=True
        )
        made = []
        for _ in range(3):
            client.cookies.clear()
            made.append(checkout_of(await client.get(f"/l/{slug_of(link)}")))
        assert len(set(made)) == 3
        # Back to its own payment: no new row, nothing spent.
        assert checkout_of(await client.get(f"/l/{slug_of(link)}")) == made[-1]

        client.cookies.clear()
        r = await client.get(f"/l/{slug_of(link)}")
        assert r.status_code == 429
        assert r.headers["content-type"].startswith("text/html")
        assert int(r.headers["retry-after"]) > 0
        assert "rate_limited" in r.text
        problem = assert_problem(await client.get(f"/l/{slug_of(link)}", headers=JSON), 429, "rate_limited")
        assert "payment link opens" in problem["detail"]
    assert await link_payments(gateway, link["id"]) == 3
