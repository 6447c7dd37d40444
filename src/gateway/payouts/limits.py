"""A merchant's payout limits: what a payout is held to, and what the operator sets (the admin API).

A limit (per payout, per UTC day) for a merchant, mode and currency is the first of: the merchant's
row for that currency, the merchant's "*" row (any currency it has no row for), the deployment's
default for the currency (GATEWAY_PAYOUTS__MAX_PER_PAYOUT / MAX_PER_DAY), the default's "*". A null
in a merchant's row passes to the next; with none of them there is no limit. "*" never adds amounts
of different currencies: each currency has its own day's total.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from gateway.db.database import Database, Queries
from gateway.errors import NotFound
from gateway.merchants import repository as merchants
from gateway.payouts import repository
from gateway.payouts.models import PayoutLimit
from gateway.settings import PayoutSettings

ANY = "*"
Source = Literal["merchant", "default", "none"]


@dataclass(frozen=True)
class Limit:
    amount: int | None  # None: no limit
    source: Source


@dataclass(frozen=True)
class Effective:
    currency: str
    per_payout: Limit
    per_day: Limit


@dataclass(frozen=True)
class ModeLimits:
    livemode: bool
    own: list[PayoutLimit]  # the currencies' rows first, by code, then "*"
    effective: list[Effective]  # every currency named by the merchant or the defaults, then "*"


@dataclass(frozen=True)
class MerchantLimits:
    merchant_id: str
    test: ModeLimits
    live: ModeLimits


@dataclass(frozen=True)
class Draft:
    """One row as a PUT gives it (the schema has checked each field and that currencies are unique)."""

    currency: str
    max_per_payout: int | None
    max_per_day: int | None


def _pick(own: list[int | None], defaults: dict[str, int], currency: str) -> Limit:
    for amount in own:
        if amount is not None:
            return Limit(amount, "merchant")
    default = defaults.get(currency, defaults.get(ANY))
    return Limit(default, "default") if default is not None else Limit(None, "none")


def _by_currency(rows: list[PayoutLimit]) -> dict[str, PayoutLimit]:
    return {r.currency: r for r in rows}


def resolve(rows: list[PayoutLimit], settings: PayoutSettings, currency: str) -> Effective:
    """The limits for `currency` (or "*") from the merchant's rows of one mode and the defaults."""
    mine = _by_currency(rows)
    chain = [mine[c] for c in dict.fromkeys((currency, ANY)) if c in mine]
    return Effective(
        currency,
        _pick([r.max_per_payout for r in chain], settings.max_per_payout, currency),
        _pick([r.max_per_day for r in chain], settings.max_per_day, currency),
    )


async def for_payout(
    q: Queries, settings: PayoutSettings, merchant_id: str, livemode: bool, currency: str
) -> Effective:
    """What a new payout is held to (read in the payout's own transaction)."""
    return resolve(await repository.limits(q, merchant_id, livemode, currency), settings, currency)


def _order(currency: str) -> tuple[bool, str]:
    return currency == ANY, currency


def _mode(rows: list[PayoutLimit], settings: PayoutSettings, livemode: bool) -> ModeLimits:
    own = sorted((r for r in rows if r.livemode == livemode), key=lambda r: _order(r.currency))
    named = {r.currency for r in own} | set(settings.max_per_payout) | set(settings.max_per_day) | {ANY}
    return ModeLimits(livemode, own, [resolve(own, settings, c) for c in sorted(named, key=_order)])


async def show(db: Database, settings: PayoutSettings, merchant_id: str) -> MerchantLimits:
    if await merchants.get(db, merchant_id) is None:
        raise NotFound(f"No such merchant: {merchant_id!r}", param="id")
    rows = await repository.own_limits(db, merchant_id)
    return MerchantLimits(merchant_id, _mode(rows, settings, False), _mode(rows, settings, True))


async def replace(
    db: Database, settings: PayoutSettings, merchant_id: str, livemode: bool, drafts: list[Draft]
) -> MerchantLimits:
    """The merchant's rows in this mode become `drafts`, in one transaction: a payout sees the old
    rows or the new ones, never a mix; an unknown merchant is 404 with nothing written."""
    now = datetime.now(UTC)
    rows = [
        PayoutLimit(merchant_id, livemode, d.currency, d.max_per_payout, d.max_per_day, now) for d in drafts
    ]
    async with db.transaction() as tx:
        if not await repository.replace_limits(tx, merchant_id, livemode, rows):
            raise NotFound(f"No such merchant: {merchant_id!r}", param="id")
    return await show(db, settings, merchant_id)
