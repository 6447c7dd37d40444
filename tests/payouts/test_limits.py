"""Payout limits per merchant: per payout and per UTC day, checked in the insert's transaction, so
racing payouts never pass the day's limit together; a refused payout writes nothing and calls no one."""

from __future__ import annotations

import asyncio

import httpx

from payouts.helpers import FAILS, SUCCEEDS, body, create, created
from support import Gateway, Merchant, assert_problem


async def own_limits(
    gateway: Gateway,
    merchant: Merchant,
    *,
    per_payout: int | None,
    per_day: int | None,
    currency: str = "KES",
) -> None:
    """The merchant's own limits (the payout_limits row an operator writes)."""
    await gateway.execute(
        "INSERT INTO payout_limits (merchant_id, livemode, currency, max_per_payout, max_per_day) "
        "VALUES (:m, false, :c, :p, :d)",
        m=merchant.id,
        c=currency,
        p=per_payout,
        d=per_day,
    )


async def day_total(gateway: Gateway, merchant: Merchant) -> int | None:
    total: int | None = await gateway.scalar(
        "SELECT total FROM payout_daily_totals WHERE merchant_id = :m AND currency = 'KES'", m=merchant.id
    )
    return total


async def count(gateway: Gateway, merchant: Merchant) -> int:
    n: int = await gateway.scalar("SELECT count(*) FROM payouts WHERE merchant_id = :m", m=merchant.id)
    return n


async def test_the_deployments_default_limit_per_payout(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    calls = gateway.calls("sandbox.create_payout")
    r = await create(client, merchant, body(amount=10_000_001))  # GATEWAY_PAYOUTS__MAX_PER_PAYOUT: 10 000 000
    problem = assert_problem(r, 422, "payout_limit_exceeded")
    assert (problem["limit"], problem["limit_amount"], problem["currency"]) == (
        "per_payout",
        10_000_000,
        "KES",
    )
    assert (await count(gateway, merchant), await day_total(gateway, merchant)) == (0, None)
    assert gateway.calls("sandbox.create_payout") == calls
    assert (await create(client, merchant, body(amount=10_000_000))).status_code == 201


async def test_a_merchants_own_limits_replace_the_defaults(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    await own_limits(gateway, merchant, per_payout=4_000, per_day=None)
    assert_problem(await create(client, merchant, body(amount=4_001)), 422, "payout_limit_exceeded")
    assert (await create(client, merchant, body(amount=4_000))).status_code == 201
    # Another currency keeps the defaults.
    assert (await create(client, merchant, body(amount=9_000, currency="UGX"))).status_code == 201


async def test_the_daily_limit_counts_what_is_pending_or_paid_and_gives_back_what_failed(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    await own_limits(gateway, merchant, per_payout=None, per_day=10_000)
    failed = await created(client, merchant, body(FAILS, amount=6_000))
    assert failed["status"] == "failed"
    assert await day_total(gateway, merchant) == 0  # the failure gave its 6 000 back
    assert (await create(client, merchant, body(SUCCEEDS, amount=6_000))).status_code == 201
    calls = gateway.calls("sandbox.create_payout")
    problem = assert_problem(await create(client, merchant, body(amount=4_001)), 422, "payout_limit_exceeded")
    assert (problem["limit"], problem["limit_amount"], problem["remaining"]) == ("per_day", 10_000, 4_000)
    assert gateway.calls("sandbox.create_payout") == calls
    assert (await count(gateway, merchant), await day_total(gateway, merchant)) == (2, 6_000)
    assert (await create(client, merchant, body(amount=4_000))).status_code == 201
    assert await day_total(gateway, merchant) == 10_000
    # More than a whole day's limit at once is refused before any row is touched.
    assert_problem(await create(client, merchant, body(amount=10_001)), 422, "payout_limit_exceeded")


async def test_two_racing_payouts_that_together_pass_the_daily_limit_exactly_one_wins(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    await own_limits(gateway, merchant, per_payout=None, per_day=10_000)
    calls = gateway.calls("sandbox.create_payout")
    answers = await asyncio.gather(*(create(client, merchant, body(amount=6_000)) for _ in range(2)))
    assert sorted(r.status_code for r in answers) == [201, 422]
    refused = next(r for r in answers if r.status_code == 422)
    assert_problem(refused, 422, "payout_limit_exceeded")
    assert gateway.calls("sandbox.create_payout") == calls + 1
    assert (await count(gateway, merchant), await day_total(gateway, merchant)) == (1, 6_000)


async def test_twenty_racing_payouts_never_pass_the_daily_limit(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    await own_limits(gateway, merchant, per_payout=None, per_day=10_000)
    answers = await asyncio.gather(*(create(client, merchant, body(amount=3_000)) for _ in range(20)))
    statuses = [r.status_code for r in answers]
    assert (statuses.count(201), statuses.count(422)) == (3, 17)
    assert (await count(gateway, merchant), await day_total(gateway, merchant)) == (3, 9_000)
    paid = await gateway.scalar(
        "SELECT sum(amount) FROM payouts WHERE merchant_id = :m AND status = 'succeeded'", m=merchant.id
    )
    assert paid == 9_000
