"""A cash payment or refund names the drawer session its cash went into or came out of
(gateway/cash_drawers/ opens and closes sessions; docs/api.md, "Cash drawer sessions").

The session's row is share-locked (payments.repository.hold_cash_session) in the transaction that
records the payment or the refund, and a close locks it for update before it adds them up: so a
close waits for every payment or refund already holding its session and counts it, and one that
comes after the close finds the session closed and is refused. Nothing is ever written for a
refused one (the transaction rolls back)."""

from __future__ import annotations

from gateway.db.database import Tx
from gateway.errors import (
    CashDrawerNotOpen,
    CashSessionClosed,
    CashSessionCurrencyMismatch,
    CashSessionNotAllowed,
    NotFound,
)
from gateway.payments import repository
from gateway.payments.models import Payment
from gateway.payments.repository import HeldCashSession

CASH = "cash"


def only_for_cash(provider: str | None, cash_session: str | None) -> None:
    """422 unless a named session comes with the cash rail (checked before anything is read)."""
    if cash_session is not None and provider != CASH:
        raise CashSessionNotAllowed(
            "cash_session names the drawer session of a cash payment: use it with provider 'cash'.",
            param="cash_session",
        )


async def hold(tx: Tx, merchant_id: str, livemode: bool, session_id: str, currency: str) -> HeldCashSession:
    """The named session, share-locked: another merchant's or mode's is absent (404), and it must
    count this currency. Whether it is still open is judged by `ensure_open`, once the caller knows
    the request is not a retry of one that already succeeded."""
    held = await repository.hold_cash_session(tx, session_id, merchant_id, livemode)
    if held is None:
        raise NotFound(f"No such cash session: {session_id!r}", param="cash_session")
    if held.currency != currency:
        raise CashSessionCurrencyMismatch(
            f"Cash session {session_id!r} counts {held.currency}, not {currency}.",
            param="cash_session",
            currency=held.currency,
        )
    return held


async def hold_named(
    tx: Tx, merchant_id: str, livemode: bool, session_id: str | None, currency: str
) -> HeldCashSession | None:
    """`hold` for a session a request may name (None: it names none)."""
    return None if session_id is None else await hold(tx, merchant_id, livemode, session_id, currency)


def ensure_open(held: HeldCashSession | None) -> None:
    if held is not None and held.status != "open":
        raise CashSessionClosed(
            f"Cash session {held.id!r} of drawer {held.drawer!r} is closed: name the drawer's open session.",
            param="cash_session",
        )


async def for_refund(tx: Tx, payment: Payment, named: str | None) -> str | None:
    """The session a refund of `payment` is counted in (the caller holds the payment's row lock):
    the one it names, else, for a cash payment taken into a session, the open session of that
    session's drawer (the cash leaves the drawer it went into, whatever session is open there now);
    None for cash taken outside any drawer, and for other rails."""
    if named is not None:
        only_for_cash(payment.provider, named)
        held = await hold(tx, payment.merchant_id, payment.livemode, named, payment.currency)
        ensure_open(held)
        return held.id
    if payment.provider != CASH or payment.cash_session is None:
        return None
    drawer_open = await repository.hold_open_session_of_drawer(
        tx, payment.cash_session, payment.merchant_id, payment.livemode
    )
    if drawer_open is None:
        raise CashDrawerNotOpen(
            f"The drawer payment {payment.id!r} was taken into (session {payment.cash_session!r}) has no "
            "open session: open one there, or name the open session the cash leaves from as cash_session.",
            param="cash_session",
        )
    if drawer_open.currency != payment.currency:
        raise CashSessionCurrencyMismatch(
            f"The drawer's open session {drawer_open.id!r} counts {drawer_open.currency}, not "
            f"{payment.currency}: name a session that counts {payment.currency} as cash_session.",
            param="cash_session",
            currency=drawer_open.currency,
        )
    return drawer_open.id
