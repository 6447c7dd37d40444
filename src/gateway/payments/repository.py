from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db.repository import claim_due_for_reconcile, paginate
from gateway.kit.pagination import Page
from gateway.payments.models import Payment
from gateway.payments.schemas import PaymentFilters


class PaymentRepository:
    def __init__(self, session: AsyncSession):
        self.session = session

    async def get(
        self, merchant_id: str, livemode: bool, payment_id: str, *, for_update: bool = False
    ) -> Payment | None:
        stmt = select(Payment).where(
            Payment.id == payment_id, Payment.merchant_id == merchant_id, Payment.livemode == livemode
        )
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.scalars(stmt.execution_options(populate_existing=True))).first()

    async def lock(self, payment_id: str) -> Payment | None:
        """Loads a payment and holds its row lock until the transaction ends (any caller, any merchant)."""
        stmt = select(Payment).where(Payment.id == payment_id).with_for_update()
        return (await self.session.scalars(stmt.execution_options(populate_existing=True))).first()

    async def get_any(self, payment_id: str) -> Payment | None:
        return await self.session.get(Payment, payment_id)

    async def status_of(self, payment_id: str) -> str | None:
        return (await self.session.execute(select(Payment.status).where(Payment.id == payment_id))).scalar()

    async def find_id_by_provider_reference(self, provider: str, reference: str) -> str | None:
        stmt = select(Payment.id).where(Payment.provider == provider, Payment.provider_reference == reference)
        return (await self.session.scalars(stmt)).first()

    async def get_by_idempotency_key(self, merchant_id: str, key: str) -> Payment | None:
        stmt = select(Payment).where(Payment.merchant_id == merchant_id, Payment.idempotency_key == key)
        return (await self.session.scalars(stmt)).first()

    async def insert_if_absent(self, values: dict[str, Any]) -> Payment | None:
        """Inserts unless (merchant, idempotency key) exists; None means another request got there first."""
        stmt = (
            insert(Payment)
            .values(**values)
            .on_conflict_do_nothing(index_elements=[Payment.merchant_id, Payment.idempotency_key])
            .returning(Payment)
        )
        return (await self.session.scalars(stmt)).first()

    async def claim_provider_lease(self, payment_id: str, until: datetime) -> bool:
        """Takes the right to call the provider for a still-pending payment whose last attempt has ended."""
        stmt = (
            update(Payment)
            .where(
                Payment.id == payment_id,
                Payment.status == "pending",
                or_(Payment.provider_lease_until.is_(None), Payment.provider_lease_until < func.now()),
            )
            .values(provider_lease_until=until)
            .returning(Payment.id)
        )
        return (await self.session.execute(stmt)).first() is not None

    async def release_provider_lease(self, payment_id: str) -> None:
        await self.session.execute(
            update(Payment).where(Payment.id == payment_id).values(provider_lease_until=None)
        )

    async def list(
        self, merchant_id: str, livemode: bool, filters: PaymentFilters, page: Page
    ) -> tuple[Sequence[Payment], bool]:
        stmt = select(Payment).where(Payment.merchant_id == merchant_id, Payment.livemode == livemode)
        if filters.status is not None:
            stmt = stmt.where(Payment.status == filters.status)
        if filters.provider is not None:
            stmt = stmt.where(Payment.provider == filters.provider)
        if filters.reference is not None:
            stmt = stmt.where(Payment.reference == filters.reference)
        if filters.customer_email is not None:
            stmt = stmt.where(Payment.customer_email == filters.customer_email)
        if filters.created_gte is not None:
            stmt = stmt.where(Payment.created_at >= filters.created_gte)
        if filters.created_lt is not None:
            stmt = stmt.where(Payment.created_at < filters.created_lt)
        return await paginate(self.session, stmt, Payment.id, page)

    async def claim_for_reconcile(self, limit: int, backoff: float, max_backoff: float) -> Sequence[str]:
        return await claim_due_for_reconcile(
            self.session,
            "payments",
            ("pending", "requires_action", "processing"),
            limit=limit,
            backoff=backoff,
            max_backoff=max_backoff,
        )
