"""Confirms are rate-limited per payment and per client address (GATEWAY_RATE_LIMITS__CONFIRM_*), on
a gateway of the test's own with small limits (tests/ratelimits/serving.py)."""

from __future__ import annotations

import uuid

from checkout_api.shop import confirm, create, new_shop
from ratelimits.serving import serving
from support import Gateway, assert_problem


def address() -> str:
    n = uuid.uuid4().int
    return f"10.{n % 250}.{n // 250 % 250}.{n // 62500 % 250 + 1}"


async def test_confirms_of_one_payment_and_from_one_address_are_limited(gateway: Gateway) -> None:
    shop = await new_shop(gateway)
    limits = {"confirm_per_payment": "2/minute", "confirm_per_ip": "4/minute"}
    async with serving(gateway, address(), **limits) as (client, _):
        p = await create(client, shop)
        wrong = {"provider": "sandbox"}
        for _ in range(2):  # wrong secrets count too: a secret cannot be guessed at speed
            r = await confirm(client, shop.publishable, p, wrong, secret=p["client_secret"] + "x")
            assert_problem(r, 404, "resource_missing")
        r = await confirm(
            client, shop.publishable, p, {"provider": "sandbox", "payment_method": "pm_success"}
        )
        problem = assert_problem(r, 429, "rate_limited")
        assert 1 <= int(r.headers["retry-after"]) <= 60
        assert problem["detail"].startswith("Too many confirms (limit 2 per 60 s)")
        assert (await gateway.ctx.db.fetchval("SELECT status FROM payments WHERE id = $1", p["id"])) == (
            "requires_payment_method"
        )
        # The refused confirm was counted for the address too (3 of 4): one more passes, then none.
        q = await create(client, shop)
        r = await confirm(
            client, shop.publishable, q, {"provider": "sandbox", "payment_method": "pm_success"}
        )
        assert r.status_code == 200, r.text
        s = await create(client, shop)
        r = await confirm(
            client, shop.publishable, s, {"provider": "sandbox", "payment_method": "pm_success"}
        )
        assert_problem(r, 429, "rate_limited")
