"""What the fault suite counts: a merchant's client that retries its own key as a generated client
would and tallies every answer, and the merchant's books as PostgreSQL holds them."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass, field
from typing import Any

import httpx

from faults.processes import GatewayProcess
from gateway.db.database import Database
from support import Merchant

# Every answer of the API must come within this (seconds): an outage is answered, never waited out.
ANSWER_BOUND = 10.0
# What a merchant's client retries with the same key (500 too, as clients with retries do; the tests
# say whether any came); anything else is the request's answer.
RETRIED = frozenset({409, 500, 503})


@contextlib.asynccontextmanager
async def merchant_client_of(api: GatewayProcess, merchant: Merchant) -> AsyncIterator[httpx.AsyncClient]:
    """The merchant's client of the API process; every answer must come within ANSWER_BOUND."""
    limits = httpx.Limits(max_connections=50)
    async with httpx.AsyncClient(
        base_url=api.base_url, headers=merchant.auth, timeout=ANSWER_BOUND, limits=limits
    ) as c:
        yield c


# --- a merchant's client ----------------------------------------------------------------------------


@dataclass
class Tally:
    """Every answer (and every broken connection) the clients got."""

    statuses: Counter[int] = field(default_factory=Counter)
    codes: Counter[str] = field(default_factory=Counter)  # problem codes, with their status
    transport_errors: Counter[str] = field(default_factory=Counter)
    unavailable_without_retry_after: int = 0
    replayed: int = 0
    slowest: float = 0.0

    @property
    def sent(self) -> int:
        return self.statuses.total() + self.transport_errors.total()

    def record(self, r: httpx.Response, seconds: float) -> None:
        self.statuses[r.status_code] += 1
        self.slowest = max(self.slowest, seconds)
        if r.headers.get("content-type", "").startswith("application/problem+json"):
            self.codes[f"{r.status_code} {r.json().get('code')}"] += 1
        if r.status_code == 503 and "retry-after" not in r.headers:
            self.unavailable_without_retry_after += 1
        if r.headers.get("idempotent-replayed") == "true":
            self.replayed += 1

    def summary(self) -> str:
        return (
            f"sent={self.sent} statuses={dict(sorted(self.statuses.items()))} codes={dict(self.codes)} "
            f"transport_errors={dict(self.transport_errors)} replayed={self.replayed} "
            f"slowest={self.slowest:.2f}s"
        )


async def until_final(
    client: httpx.AsyncClient,
    tally: Tally,
    url: str,
    *,
    key: str,
    body: dict[str, Any] | None = None,
    retried: Collection[int] = RETRIED,
    deadline: float = 60.0,
) -> httpx.Response:
    """POSTs with `key` until the answer is not one a client retries; the same key every time."""
    give_up = time.monotonic() + deadline
    while True:
        started = time.monotonic()
        wait = 0.1
        try:
            r = await client.post(url, json=body, headers={"Idempotency-Key": key})
        except httpx.TransportError as e:  # the API is down or the connection broke: retry
            tally.transport_errors[type(e).__name__] += 1
            tally.slowest = max(tally.slowest, time.monotonic() - started)
        else:
            tally.record(r, time.monotonic() - started)
            if r.status_code not in retried:
                return r
            with contextlib.suppress(ValueError):
                wait = float(r.headers.get("retry-after", wait))
        if time.monotonic() > give_up:
            raise AssertionError(f"{url} with key {key} did not finish in {deadline:.0f}s: {tally.summary()}")
        await asyncio.sleep(min(wait, 1.0))  # Retry-After, capped so the suite stays quick


def report(fault: str, **figures: object) -> None:
    """The figures of a fault, one line (shown with `pytest -s` or `-rP`; the closing note quotes them)."""
    print(f"FAULT {fault}: " + " ".join(f"{k}={v}" for k, v in figures.items()), flush=True)


# --- what PostgreSQL holds --------------------------------------------------------------------------


@dataclass
class Ledger:
    payments: Counter[str]  # by status
    refunds: Counter[str]  # by status
    events: Counter[str]  # by type
    # (type, object) pairs with more than one event: one transition, one event
    repeated_events: list[tuple[str, str, int]]
    keys_with_two_payments: int
    amount_refunded: dict[str, int]  # per payment
    refunded_by_refunds: dict[str, int]  # succeeded refunds' sum, per payment


async def ledger(db: Database, merchant_id: str) -> Ledger:
    payments = await db.fetch(
        "SELECT id, status, amount_refunded FROM payments WHERE merchant_id = $1", merchant_id
    )
    refunds = await db.fetch(
        "SELECT payment_id, status, amount FROM refunds WHERE merchant_id = $1", merchant_id
    )
    events = await db.fetch(
        "SELECT type, coalesce(refund_id, payment_id) AS object, count(*) AS n FROM events "
        "WHERE merchant_id = $1 GROUP BY 1, 2",
        merchant_id,
    )
    doubled = await db.fetchval(
        "SELECT count(*) FROM (SELECT idempotency_key FROM payments WHERE merchant_id = $1 "
        "GROUP BY 1 HAVING count(*) > 1) AS d",
        merchant_id,
    )
    by_refunds: Counter[str] = Counter()
    for r in refunds:
        if r["status"] == "succeeded":
            by_refunds[r["payment_id"]] += r["amount"]
    return Ledger(
        payments=Counter(p["status"] for p in payments),
        refunds=Counter(r["status"] for r in refunds),
        events=Counter({t: n for t, n in _sum_by_type(events).items()}),
        repeated_events=sorted((e["type"], e["object"], e["n"]) for e in events if e["n"] > 1),
        keys_with_two_payments=int(doubled),
        amount_refunded={p["id"]: p["amount_refunded"] for p in payments},
        refunded_by_refunds={p["id"]: by_refunds[p["id"]] for p in payments},
    )


def _sum_by_type(rows: list[Any]) -> Counter[str]:
    out: Counter[str] = Counter()
    for row in rows:
        out[row["type"]] += row["n"]
    return out
