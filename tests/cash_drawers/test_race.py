"""A cash payment (or refund) and the close of its session racing: the payment is either counted
by the close or refused, never taken and left out of the total.

The payment's transaction holds its session FOR SHARE (payments.repository.hold_cash_session); the
close locks it FOR UPDATE before adding up. The first two tests pin the order with a lock of the
test's own: a transaction here holds the merchant's row FOR UPDATE, so a payment or a refund (rows
that reference the merchant) waits at its insert, mid-transaction, until the test lets go; for the
close, which writes no such row (its event: `events` has no foreign keys), the transaction also
holds the events table in SHARE mode, so the close waits at its event's insert. Without the
session lock, the first test's close adds up before the waiting payment commits (expected misses
it) and the second test's payment is taken into a session its close has already counted."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator

import httpx

from cash_drawers.drawers import close_session, drawer_name, opened, pay_cash, refund
from support import Gateway, Merchant, assert_problem, wait_for

ROUNDS = 25
PAYMENTS_PER_ROUND = 6


@contextlib.asynccontextmanager
async def merchant_row_held(
    gateway: Gateway, merchant: Merchant, events: bool = False
) -> AsyncIterator[None]:
    """A transaction of the test's own holding the merchant's row: an insert that references it (its
    foreign key takes KEY SHARE) waits until the block ends; with `events`, any insert of an event
    too. Nothing is written."""
    async with gateway.ctx.db.connection() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            await conn.execute("SELECT 1 FROM merchants WHERE id = $1 FOR UPDATE", merchant.id)
            if events:
                await conn.execute("LOCK TABLE events IN SHARE MODE")
            yield
        finally:
            await tx.rollback()


async def waiting_on_locks(gateway: Gateway) -> int:
    """Transactions about a cash session waiting on a lock: one that holds a session's row (a payment's
    or a refund's FOR SHARE, the close's FOR UPDATE), or whose statement asks for one. Not the app's
    other work, which the events table's lock may hold up as well."""
    return int(
        await gateway.scalar(
            "SELECT count(*) FROM pg_stat_activity a WHERE a.datname = current_database()"
            " AND a.wait_event_type = 'Lock' AND (a.query LIKE '%cash_sessions%' OR EXISTS ("
            " SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND l.granted"
            " AND l.relation = 'cash_sessions'::regclass))"
        )
    )


async def until_waiting(gateway: Gateway, n: int) -> None:
    async def enough() -> bool:
        return await waiting_on_locks(gateway) >= n

    await wait_for(enough)


async def test_a_close_waits_for_the_payment_in_flight_and_counts_it(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    drawer = drawer_name()
    s = await opened(client, merchant, drawer, opening_float=1_000)
    async with merchant_row_held(gateway, merchant):
        payment = asyncio.create_task(pay_cash(client, merchant, s["id"], 500))
        await until_waiting(gateway, 1)  # the payment, mid-transaction, its session held
        close = asyncio.create_task(close_session(client, merchant, drawer, s["id"], 1_500))
        await until_waiting(gateway, 2)
        await asyncio.sleep(0.2)
        assert not payment.done()
        assert not close.done()
    paid, closed = await payment, await close
    assert paid.status_code == 201, paid.text
    assert closed.status_code == 200, closed.text
    c = closed.json()
    assert (c["payments_total"], c["expected"], c["difference"]) == (500, 1_500, 0)


async def test_a_payment_after_the_close_began_is_refused(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    drawer = drawer_name()
    s = await opened(client, merchant, drawer, opening_float=1_000)
    async with merchant_row_held(gateway, merchant, events=True):
        close = asyncio.create_task(close_session(client, merchant, drawer, s["id"], 1_000))
        await until_waiting(gateway, 1)  # the close, its totals read, waiting to write its event
        payment = asyncio.create_task(pay_cash(client, merchant, s["id"], 500))
        await until_waiting(gateway, 2)
        await asyncio.sleep(0.2)
        assert not payment.done()
    closed, refused = await close, await payment
    assert closed.status_code == 200, closed.text
    assert (closed.json()["payments_total"], closed.json()["expected"]) == (0, 1_000)
    assert_problem(refused, 409, "cash_session_closed")
    assert await gateway.scalar("SELECT count(*) FROM payments WHERE cash_session = :s", s=s["id"]) == 0


async def test_a_close_waits_for_the_refund_in_flight_and_counts_it(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    drawer = drawer_name()
    s = await opened(client, merchant, drawer, opening_float=1_000)
    p = await pay_cash(client, merchant, s["id"], 800)
    assert p.status_code == 201
    async with merchant_row_held(gateway, merchant):
        back = asyncio.create_task(refund(client, merchant, p.json()["id"], 300))
        await until_waiting(gateway, 1)
        close = asyncio.create_task(close_session(client, merchant, drawer, s["id"], 1_500))
        await until_waiting(gateway, 2)
        await asyncio.sleep(0.2)
        assert not back.done()
    refunded, closed = await back, await close
    assert refunded.status_code == 201, refunded.text
    assert refunded.json()["cash_session"] == s["id"]
    c = closed.json()
    assert (c["payments_total"], c["refunds_total"], c["expected"], c["difference"]) == (800, 300, 1_500, 0)


async def test_payments_and_a_close_racing_never_lose_a_payment(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    """No lock of the test's: payments and the close on separate connections, the close thrown in
    at a random moment among them, many times. Every payment answered 201 is in the total; every
    other one was refused as closed and left nothing behind."""
    rng = random.Random(16)
    taken_total = refused_total = 0
    for _ in range(ROUNDS):
        drawer = drawer_name()
        s = await opened(client, merchant, drawer, opening_float=10_000)
        amounts = [rng.randint(1, 5_000) for _ in range(PAYMENTS_PER_ROUND)]

        # Payments spread over 60 ms, the close somewhere among them: some get in, some come after.
        delays = [rng.uniform(0, 0.06) for _ in amounts]
        close_delay = rng.uniform(0.01, 0.04)

        async def pay_after(delay: float, amount: int) -> httpx.Response:
            await asyncio.sleep(delay)
            return await pay_cash(client, merchant, s["id"], amount)  # noqa: B023

        async def close_after(delay: float) -> httpx.Response:
            await asyncio.sleep(delay)
            return await close_session(client, merchant, drawer, s["id"], 0)  # noqa: B023

        *payments, closed = await asyncio.gather(
            *(pay_after(d, a) for d, a in zip(delays, amounts, strict=True)), close_after(close_delay)
        )
        assert closed.status_code == 200, closed.text
        taken = [a for a, r in zip(amounts, payments, strict=True) if r.status_code == 201]
        for r in payments:
            if r.status_code != 201:
                assert_problem(r, 409, "cash_session_closed")
        c = closed.json()
        assert c["payments_total"] == sum(taken), (c, taken)
        assert c["expected"] == 10_000 + sum(taken)
        in_db = await gateway.scalar(
            "SELECT coalesce(sum(amount), 0) FROM payments WHERE cash_session = :s", s=s["id"]
        )
        assert in_db == sum(taken)
        taken_total += len(taken)
        refused_total += PAYMENTS_PER_ROUND - len(taken)
    # Both outcomes happened: the race was run, not avoided.
    assert taken_total > 0
    assert refused_total > 0
