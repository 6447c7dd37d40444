"""The provider contract: every provider, the same scenarios, the same answers from the gateway.

Drivers (tests/drivers/) make each provider answer as it really does; this file says what the
gateway must then do. Scenarios a provider cannot have (cash has no customer step) are skipped, and
the skips are counted: when the whole file runs, each reason must have skipped exactly as many cases
as EXPECTED_SKIPS says, so a scenario that silently turns into a skip fails the run.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any, NoReturn

import httpx
import pytest
import respx

import drivers
from drivers.base import Driver
from support import Gateway, Merchant, wait_for

DRIVERS: list[Driver] = drivers.discover()


# Each reason, and how many of this file's cases it skips.
EXPECTED_SKIPS: dict[str, int] = {
    "cash has no customer step, webhooks or outages": 7,
    "cash refunds in parts": 1,
    "flutterwave refunds in parts": 1,
    "momo refunds in parts": 1,
    "paystack refunds in parts": 1,
    "sandbox refunds in parts": 1,
    "stripe refunds in parts": 1,
    "mpesa's notifications name no currency": 1,
    "paypal refunds in parts": 1,
    "razorpay refunds in parts": 1,
    "orange has no refund API": 1,
    "orange's notifications name no money": 2,
    "orange refuses notifications about no payment of ours": 1,
    "orange cannot ask about a create that timed out": 1,
    "airtel's notifications name no money": 2,
}
SKIPPED: Counter[str] = Counter()
STARTED: set[str] = set()


def skip(reason: str) -> NoReturn:
    """Every skip of this file goes through here, to be counted."""
    SKIPPED[reason] += 1
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def started(request: pytest.FixtureRequest) -> None:
    STARTED.add(request.node.nodeid)


@pytest.fixture(scope="module", autouse=True)
def skips_are_as_expected(request: pytest.FixtureRequest) -> Iterator[None]:
    """After the file: if every one of its cases ran (no -k, no -x stop), the skips match exactly."""
    yield
    cases = {item.nodeid for item in request.node.collect()}
    if cases <= STARTED:
        assert dict(SKIPPED) == EXPECTED_SKIPS, "the contract suite's skips changed"


@pytest.fixture(params=DRIVERS, ids=lambda d: d.name)
def driver(request: pytest.FixtureRequest) -> Driver:
    d: Driver = request.param
    return d


def asynchronous(driver: Driver) -> None:
    if not driver.asynchronous:
        skip(f"{driver.name} has no customer step, webhooks or outages")


async def create(client: httpx.AsyncClient, merchant: Merchant, body: dict[str, Any]) -> httpx.Response:
    return await client.post(
        "/v1/payments", json=body, headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())}
    )


async def get(client: httpx.AsyncClient, merchant: Merchant, path: str) -> dict[str, Any]:
    r = await client.get(path, headers=merchant.auth)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def trail(client: httpx.AsyncClient, merchant: Merchant, payment_id: str) -> list[tuple[str, str]]:
    data = (await get(client, merchant, f"/v1/payments/{payment_id}/events?limit=100"))["data"]
    return [(e["type"], e["source"]) for e in reversed(data)]


async def post_webhook(
    client: httpx.AsyncClient, driver: Driver, headers: dict[str, str], body: bytes
) -> int:
    r = await client.post(driver.webhook_path(headers), content=body, headers=headers)
    return r.status_code


async def waiting_payment(
    client: httpx.AsyncClient, merchant: Merchant, driver: Driver, provider_http: respx.Router
) -> dict[str, Any]:
    driver.mock_create(provider_http, "action")
    r = await create(client, merchant, driver.create_body("action"))
    assert r.status_code == 201, r.text
    p = dict(r.json())
    assert p["status"] == "requires_action"
    assert p["next_action"] is not None
    return p


async def test_payment_then_partial_refund(
    client: httpx.AsyncClient, merchant: Merchant, driver: Driver, provider_http: respx.Router
) -> None:
    if driver.asynchronous:
        p = await waiting_payment(client, merchant, driver, provider_http)
        headers, body = driver.success_webhook(p)
        assert await post_webhook(client, driver, headers, body) == 200

        async def succeeded() -> bool:
            return bool((await get(client, merchant, f"/v1/payments/{p['id']}"))["status"] == "succeeded")

        await wait_for(succeeded)
        assert ("payment.succeeded", "webhook") in await trail(client, merchant, p["id"])
    else:
        r = await create(client, merchant, driver.create_body("action"))
        assert (r.status_code, r.json()["status"]) == (201, "succeeded")
        p = dict(r.json())

    if not driver.refunds:
        r = await client.post(
            f"/v1/payments/{p['id']}/refunds",
            json={"amount": 1_000},
            headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())},
        )
        assert (r.status_code, r.json()["code"]) == (422, "refund_not_supported")
        assert (await get(client, merchant, f"/v1/payments/{p['id']}"))["status"] == "succeeded"
        return
    amount = 1_000 if driver.partial_refunds else p["amount"]
    driver.mock_refund(provider_http, p, amount)
    r = await client.post(
        f"/v1/payments/{p['id']}/refunds",
        json={"amount": amount},
        headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert r.status_code == 201, r.text
    refund = r.json()
    assert refund["amount"] == amount
    if refund["status"] == "pending":
        hook = driver.refund_webhook(p, refund)
        assert hook is not None, "a pending refund needs the provider's word to finish"
        assert await post_webhook(client, driver, *hook) == 200

        async def refunded() -> bool:
            return bool((await get(client, merchant, f"/v1/refunds/{refund['id']}"))["status"] == "succeeded")

        await wait_for(refunded)
    after = await get(client, merchant, f"/v1/payments/{p['id']}")
    expected = ("partially_refunded", 1_000) if driver.partial_refunds else ("refunded", p["amount"])
    assert (after["status"], after["amount_refunded"]) == expected


async def test_partial_refund_where_only_whole_payments_refund_is_422(
    client: httpx.AsyncClient, merchant: Merchant, driver: Driver, provider_http: respx.Router
) -> None:
    if not driver.refunds:
        skip(f"{driver.name} has no refund API")
    if driver.partial_refunds:
        skip(f"{driver.name} refunds in parts")
    p = await waiting_payment(client, merchant, driver, provider_http)
    headers, body = driver.success_webhook(p)
    assert await post_webhook(client, driver, headers, body) == 200

    async def succeeded() -> bool:
        return bool((await get(client, merchant, f"/v1/payments/{p['id']}"))["status"] == "succeeded")

    await wait_for(succeeded)
    r = await client.post(
        f"/v1/payments/{p['id']}/refunds",
        json={"amount": 1_000},
        headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert (r.status_code, r.json()["code"]) == (422, "partial_refund_not_supported")
    assert (await get(client, merchant, f"/v1/payments/{p['id']}"))["status"] == "succeeded"


async def test_decline_is_402(
    client: httpx.AsyncClient, merchant: Merchant, driver: Driver, provider_http: respx.Router
) -> None:
    asynchronous(driver)
    driver.mock_create(provider_http, "decline")
    r = await create(client, merchant, driver.create_body("decline"))
    assert r.status_code == 402, r.text
    assert r.json()["code"] == driver.decline_code
    assert r.json()["payment"]["status"] == "failed"


async def test_timeout_then_sync_resolves(
    client: httpx.AsyncClient, merchant: Merchant, driver: Driver, provider_http: respx.Router
) -> None:
    asynchronous(driver)
    if not driver.resolves_timeouts:
        skip(f"{driver.name} cannot ask about a create that timed out")
    driver.mock_create(provider_http, "timeout")
    r = await create(client, merchant, driver.create_body("timeout"))
    assert r.status_code == 504, r.text
    assert r.json()["code"] == "provider_timeout"
    p = await get(client, merchant, f"/v1/payments/{r.json()['payment']['id']}")
    assert p["status"] == "pending"
    driver.mock_fetch(provider_http, p, "succeeded")
    synced = await client.post(f"/v1/payments/{p['id']}/sync", headers=merchant.auth)
    assert synced.status_code == 200, synced.text
    assert synced.json()["status"] == "succeeded"
    assert await trail(client, merchant, p["id"]) == [
        ("payment.created", "api"),
        ("payment.succeeded", "sync"),
    ]


async def test_duplicate_webhook_changes_nothing(
    client: httpx.AsyncClient,
    gateway: Gateway,
    merchant: Merchant,
    driver: Driver,
    provider_http: respx.Router,
) -> None:
    asynchronous(driver)
    p = await waiting_payment(client, merchant, driver, provider_http)
    headers, body = driver.success_webhook(p)
    assert await post_webhook(client, driver, headers, body) == 200
    assert await post_webhook(client, driver, headers, body) == 200

    async def settled() -> bool:
        return bool((await get(client, merchant, f"/v1/payments/{p['id']}"))["status"] == "succeeded")

    await wait_for(settled)
    events = await trail(client, merchant, p["id"])
    assert [t for t, _ in events].count("payment.succeeded") == 1
    assert "payment.transition_rejected" not in [t for t, _ in events]


async def test_forged_webhook_is_rejected(
    client: httpx.AsyncClient, merchant: Merchant, driver: Driver, provider_http: respx.Router
) -> None:
    asynchronous(driver)
    p = await waiting_payment(client, merchant, driver, provider_http)
    headers, body = driver.success_webhook(p)
    forged = driver.forge(headers, body)
    r = await client.post(driver.webhook_path(forged), content=body, headers=forged)
    assert r.status_code == 401
    assert r.json()["code"] == "webhook_signature_invalid"
    assert (await get(client, merchant, f"/v1/payments/{p['id']}"))["status"] == "requires_action"


async def test_webhook_for_an_unknown_reference_is_stored_and_flagged(
    client: httpx.AsyncClient,
    gateway: Gateway,
    merchant: Merchant,
    driver: Driver,
    provider_http: respx.Router,
) -> None:
    asynchronous(driver)
    if not driver.stores_unknown_notifications:
        skip(f"{driver.name} refuses notifications about no payment of ours")
    p = await waiting_payment(client, merchant, driver, provider_http)
    ghost = "ghost_" + uuid.uuid4().hex
    headers, body = driver.success_webhook(p, reference=ghost)
    assert await post_webhook(client, driver, headers, body) == 200

    async def flagged() -> bool:
        return bool(
            await gateway.scalar(
                "SELECT count(*) FROM inbound_webhooks WHERE provider = :p AND outcome = 'unmatched' "
                "AND payload::text LIKE :g",
                p=driver.name,
                g=f"%{ghost}%",
            )
        )

    await wait_for(flagged)
    assert (await get(client, merchant, f"/v1/payments/{p['id']}"))["status"] == "requires_action"


@pytest.mark.parametrize("mismatch", ["amount", "currency"])
async def test_success_naming_other_money_is_not_applied(
    client: httpx.AsyncClient,
    gateway: Gateway,
    merchant: Merchant,
    driver: Driver,
    provider_http: respx.Router,
    mismatch: str,
) -> None:
    asynchronous(driver)
    if not driver.names_money:
        skip(f"{driver.name}'s notifications name no money")
    if mismatch == "currency" and not driver.names_currency:
        skip(f"{driver.name}'s notifications name no currency")
    p = await waiting_payment(client, merchant, driver, provider_http)
    wrong: dict[str, Any] = {"amount": p["amount"] + 100} if mismatch == "amount" else {"currency": "NGN"}
    headers, body = driver.success_webhook(p, **wrong)
    assert await post_webhook(client, driver, headers, body) == 200

    async def recorded() -> bool:
        return any(t == "payment.transition_rejected" for t, _ in await trail(client, merchant, p["id"]))

    await wait_for(recorded)
    assert (await get(client, merchant, f"/v1/payments/{p['id']}"))["status"] == "requires_action"
