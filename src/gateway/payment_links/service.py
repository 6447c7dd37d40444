"""Payment links: a merchant's reusable or single-use URL; opening it makes a payment to check out.

The payment is made through PaymentService's create path (no provider: `requires_payment_method`),
never inserted here. Whether a link still takes payments is `schemas.is_open`; a single-use link's
`paid_at` is set by the payment state machine in the transaction that moves its payment to
`succeeded` (payments.repository.mark_link_paid).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateway.db.database import Database
from gateway.errors import AmountOutOfRange, InvalidRequest, NotFound, PaymentLinkExpired, PaymentLinkInactive
from gateway.kit.ids import new_id
from gateway.kit.money import format_amount
from gateway.kit.pagination import Page
from gateway.merchants.service import Principal
from gateway.payment_links import repository
from gateway.payment_links.models import PaymentLink
from gateway.payment_links.schemas import PaymentLinkCreate
from gateway.payments import repository as payments
from gateway.payments.fields import MAX_AMOUNT
from gateway.payments.models import Payment
from gateway.payments.service import PaymentService

# A payment a returning browser may go on with; any other status makes a new one (reusable links).
RESUMABLE = frozenset({"requires_payment_method", "pending", "requires_action"})


@dataclass(frozen=True)
class Opened:
    """What opening a link gave: the payment to check out, or (payment None) the amount form."""

    link: PaymentLink
    payment: Payment | None


def _invalid(loc: str, type_: str, msg: str) -> InvalidRequest:
    return InvalidRequest(
        f"Invalid value for: {loc}", errors=[{"loc": ["body", loc], "msg": msg, "type": type_}]
    )


def check_create(body: PaymentLinkCreate, now: datetime) -> None:
    """The rules across fields (each field's own are the schema's): 422, nothing written."""
    if body.amount is not None and (body.min_amount is not None or body.max_amount is not None):
        name = "min_amount" if body.min_amount is not None else "max_amount"
        raise _invalid(
            name, "amount_range_with_amount", "min_amount and max_amount apply only without amount"
        )
    if body.min_amount is not None and body.max_amount is not None and body.min_amount > body.max_amount:
        raise _invalid("max_amount", "amount_range_invalid", "max_amount must be at least min_amount")
    if body.expires_at is not None:
        if body.expires_at.tzinfo is None:
            raise _invalid("expires_at", "timezone_required", "time zone required")
        if body.expires_at <= now:
            raise _invalid("expires_at", "expires_at_in_past", "expires_at must be in the future")


def check_open(link: PaymentLink, now: datetime) -> None:
    """410 unless the link takes payments now."""
    if not link.active:
        raise PaymentLinkInactive("This payment link has been deactivated.")
    if link.expires_at is not None and link.expires_at <= now:
        raise PaymentLinkExpired("This payment link has expired.")
    if not link.reusable and link.paid_at is not None:
        raise PaymentLinkInactive("This payment link has been paid already.")


def check_amount(link: PaymentLink, amount: int) -> None:
    """A customer-chosen amount within the link's bounds (1 and the API's maximum by default)."""
    low, high = link.min_amount or 1, link.max_amount or MAX_AMOUNT
    if not low <= amount <= high:
        shown = f"{format_amount(low, link.currency)} to {format_amount(high, link.currency)}"
        raise AmountOutOfRange(
            f"Choose an amount from {shown}.",
            min_amount=low,
            max_amount=high,
        )


class PaymentLinkService:
    def __init__(self, db: Database, payments: PaymentService):
        self.db = db
        self.payments = payments

    async def create(self, principal: Principal, body: PaymentLinkCreate) -> PaymentLink:
        now = datetime.now(UTC)
        check_create(body, now)
        async with self.db.transaction() as tx:
            return await repository.insert(
                tx,
                PaymentLink(
                    id=new_id("plink"),
                    merchant_id=principal.merchant_id,
                    livemode=principal.livemode,
                    slug=secrets.token_urlsafe(16),  # 128 random bits: the URL is the only credential
                    amount=body.amount,
                    currency=body.currency,
                    description=body.description,
                    reusable=body.reusable,
                    min_amount=body.min_amount,
                    max_amount=body.max_amount,
                    expires_at=body.expires_at,
                    active=True,
                    paid_at=None,
                    metadata_=body.metadata,
                    created_at=now,
                    updated_at=now,
                ),
            )

    async def get(self, principal: Principal, link_id: str) -> PaymentLink:
        link = await repository.get(self.db, principal.merchant_id, principal.livemode, link_id)
        if link is None:
            raise NotFound(f"No such payment link: {link_id!r}", param="id")
        return link

    async def list(self, principal: Principal, page: Page) -> tuple[Sequence[PaymentLink], bool]:
        return await repository.list_links(self.db, principal.merchant_id, principal.livemode, page)

    async def deactivate(self, principal: Principal, link_id: str) -> PaymentLink:
        """Idempotent: a deactivated link stays as it is."""
        link = await self.get(principal, link_id)
        if link.active:
            changes: dict[str, Any] = {"active": False, "updated_at": datetime.now(UTC)}
            async with self.db.transaction() as tx:
                repository.save(tx, link, changes)
            for name, value in changes.items():
                setattr(link, name, value)
        return link

    async def find(self, slug: str) -> PaymentLink:
        link = await repository.by_slug(self.db, slug)
        if link is None:
            raise NotFound("No such payment link.")
        return link

    async def open(self, slug: str, checkout_id: str | None, amount: int | None) -> Opened:
        """Opening a link's URL (GET, or POST of the amount form). `checkout_id`: the payment this
        browser made from the link before (its cookie), gone on with while it is still resumable
        (and of the amount chosen now, if one is). `amount` None on a link without one: the form."""
        link = await self.find(slug)
        check_open(link, datetime.now(UTC))
        if amount is not None:
            if link.amount is not None:
                raise InvalidRequest(
                    "This payment link has a fixed amount.",
                    errors=[
                        {
                            "loc": ["body", "amount"],
                            "msg": "the link's amount is fixed",
                            "type": "extra_forbidden",
                        }
                    ],
                )
            check_amount(link, amount)
        if checkout_id is not None:
            earlier = await payments.find_for_link(self.db, link.id, checkout_id)
            if earlier is not None and earlier.status in RESUMABLE and amount in (None, earlier.amount):
                return Opened(link, earlier)
        chosen = link.amount if link.amount is not None else amount
        if chosen is None:
            return Opened(link, None)
        payment = await self.payments.create_for_link(
            _principal(link),
            link.id,
            amount=chosen,
            currency=link.currency,
            description=link.description,
            idempotency_key=f"{link.id}:{secrets.token_urlsafe(16)}",
        )
        return Opened(link, payment)


def _principal(link: PaymentLink) -> Principal:
    """The merchant the link's payments belong to, in the link's mode (no key: the link stands for it)."""
    return Principal(merchant_id=link.merchant_id, livemode=link.livemode, key_id=link.id, key_type="secret")
