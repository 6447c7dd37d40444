"""What a payment says about how it was paid (`payment_method_details`), for every provider.

Each driver (tests/drivers/) makes its provider pay the payment with the provider's own payload
shapes and says what the gateway must then show; this file checks the payment (GET), its events'
data.object (the same rendering the merchant's webhooks send) and that no full card or phone number
the provider sent reaches an event. (No log call of the gateway takes a number or a payload.)
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import orjson
import pytest
import respx

import drivers
from drivers.base import Driver
from support import Gateway, Merchant, wait_for

DRIVERS: list[Driver] = drivers.discover()
NO_QUERY = {"sandbox": "the sandbox's customer-step scenario never ends by itself (its webhook does)"}


@pytest.fixture(params=DRIVERS, ids=lambda d: d.name)
def driver(request: pytest.FixtureRequest) -> Driver:
    d: Driver = request.param
    return d


async def get(client: httpx.AsyncClient, merchant: Merchant, path: str) -> dict[str, Any]:
    r = await client.get(path, headers=merchant.auth)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def pay(
    client: httpx.AsyncClient, merchant: Merchant, driver: Driver, router: respx.Router, via: str
) -> dict[str, Any]:
    """A payment of `driver`'s provider, waiting for its customer and then paid; the provider says so
    by its webhook or, asked by a sync, by its status query."""
    headers = {**merchant.auth, "Idempotency-Key": str(uuid.uuid4())}
    driver.mock_create(router, "action")
    r = await client.post("/v1/payments", json=driver.create_body("action"), headers=headers)
    assert r.status_code == 201, r.text
    p = dict(r.json())
    if not driver.asynchronous:
        return p
    assert (p["status"], p["payment_method_details"]) == ("requires_action", None)
    if via == "webhook":
        hook_headers, body = driver.success_webhook(p)
        r = await client.post(driver.webhook_path(hook_headers), content=body, headers=hook_headers)
        assert r.status_code == 200, r.text
    else:
        driver.mock_fetch(router, p, "succeeded")
        r = await client.post(f"/v1/payments/{p['id']}/sync", headers=merchant.auth)
        assert r.status_code == 200, r.text

    async def succeeded() -> bool:
        return bool((await get(client, merchant, f"/v1/payments/{p['id']}"))["status"] == "succeeded")

    await wait_for(succeeded)
    return await get(client, merchant, f"/v1/payments/{p['id']}")


def _without_merchant_input(data: dict[str, Any]) -> dict[str, Any]:
    """An event's payment without what echoes the merchant's own request (customer.phone, and the
    prompt's phone in next_action): what is left is what the gateway itself said."""
    return {**data, "customer": {**data["customer"], "phone": None}, "next_action": None}


@pytest.mark.parametrize("via", ["webhook", "query"])
async def test_a_paid_payment_says_how_it_was_paid(
    client: httpx.AsyncClient,
    merchant: Merchant,
    gateway: Gateway,
    driver: Driver,
    provider_http: respx.Router,
    via: str,
) -> None:
    if not driver.asynchronous and via == "query":
        pytest.skip(f"{driver.name} answers at once: nothing to query")
    if via == "query" and driver.name in NO_QUERY:
        pytest.skip(NO_QUERY[driver.name])
    p = await pay(client, merchant, driver, provider_http, via)
    expected = driver.method_details(p, via)
    assert p["payment_method_details"] == expected

    events = (await get(client, merchant, f"/v1/payments/{p['id']}/events?limit=100"))["data"]
    by_type = {e["type"]: e["data"]["object"] for e in events}
    assert by_type["payment.succeeded"]["payment_method_details"] == expected
    assert by_type["payment.created"]["payment_method_details"] is None

    rows = await gateway.ctx.db.fetch("SELECT type, data FROM events WHERE payment_id = $1", p["id"])
    assert sorted(r["type"] for r in rows) == sorted(e["type"] for e in events)
    said = orjson.dumps([_without_merchant_input(r["data"]) for r in rows]).decode()
    for number in driver.full_numbers(p):
        # In any format: the last nine digits (a national number) are already too much.
        assert number[-9:] not in said, f"{number} in an event"
