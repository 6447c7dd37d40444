"""What the rail tests hand an adapter's payout side directly: a PayoutRequest as the payouts service
builds it, and the PayoutRef the reconciler asks with."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.kit.ids import new_id
from gateway.providers.payouts import PayoutDestination, PayoutRef, PayoutRequest


def mobile_money(
    phone: str, name: str | None = "Wanjiru Kamau", bank_code: str | None = None
) -> PayoutDestination:
    return PayoutDestination(type="mobile_money", phone=phone, name=name, bank_code=bank_code)


def bank_account(
    account_number: str, bank_code: str, name: str | None = "Adaeze Okafor"
) -> PayoutDestination:
    return PayoutDestination(
        type="bank_account", account_number=account_number, bank_code=bank_code, name=name
    )


def payout_request(
    destination: PayoutDestination, *, amount: int, currency: str, livemode: bool = False, **over: Any
) -> PayoutRequest:
    values: dict[str, Any] = {
        "payout_id": new_id("po"),
        "amount": amount,
        "currency": currency,
        "destination": destination,
        "livemode": livemode,
        "created_at": datetime.now(UTC),
        "reference": "rider-week-48",
        **over,
    }
    return PayoutRequest(**values)


def ref_of(request: PayoutRequest, *, provider_reference: str | None = None, age: float = 0) -> PayoutRef:
    """The reconciler's question about `request`, submitted `age` seconds ago."""
    at = datetime.now(UTC) - timedelta(seconds=age)
    return PayoutRef(
        payout_id=request.payout_id,
        provider_reference=provider_reference,
        amount=request.amount,
        currency=request.currency,
        destination=request.destination,
        livemode=request.livemode,
        created_at=at,
        submitted_at=at,
    )
