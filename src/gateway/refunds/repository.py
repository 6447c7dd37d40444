from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db.repository import claim_due_for_reconcile, paginate
from gateway.kit.pagination import Page
from gateway.refunds.models import Refund
from gateway.refunds.schemas import RefundFilters


class RefundRepository:
    def __init__(self, session: AsyncSession):
        self.session = session

    async def get(self, merchant_id: str, livemode: bool, refund_id: str) -> Refund | None:
        stmt = select(Refund).where(
            Refund.id == refund_id, Refund.merchant_id == merchant_id, Refund.livemode == livemode
        )
        return (await self.session.scalars(stmt.execution_options(populate_existing=True))).first()

    async def lock(self, refund_id: str) -> Refund | None:
        stmt = select(Refund).where(Refund.id == refund_id).with_for_update()
        return (await self.session.scalars(stmt.execution_options(populate_existing=True))).first()

    async def get_by_idempotency_key(self, merchant_id: str, key: str) -> Refund | None:
        stmt = select(Refund).where(Refund.merchant_id == merchant_id, Refund.idempotency_key == key)
        return (await self.session.scalars(stmt.execution_options(populate_existing=True))).first()

    async def find_id(self, refund_id: str | None, provider_reference: str | None) -> str | None:
        if refund_id is not None:
            found = (await self.session.scalars(select(Refund.id).where(Refund.id == refund_id))).first()
            if found is not None:
                return found
        if provider_reference is None:
            return None
        stmt = select(Refund.id).where(Refund.provider_reference == provider_reference)
        return (await self.session.scalars(stmt)).first()

    async def find_payment_id(self, refund_id: str) -> str:
        return (
            await self.session.execute(select(Refund.payment_id).where(Refund.id == refund_id))
        ).scalar_one()

    async def reserved_amount(self, payment_id: str) -> int:
        """What pending and succeeded refunds hold of a payment (call with the payment row locked)."""
        stmt = select(func.coalesce(func.sum(Refund.amount), 0)).where(
            Refund.payment_id == payment_id, Refund.status.in_(("pending", "succeeded"))
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def insert_if_absent(self, values: dict[str, Any]) -> Refund | None:
        stmt = (
            insert(Refund)
            .values(**values)
            .on_conflict_do_nothing(index_elements=[Refund.merchant_id, Refund.idempotency_key])
            .returning(Refund)
        )
        return (await self.session.scalars(stmt)).first()

    async def claim_provider_lease(self, refund_id: str, until: datetime) -> bool:
        stmt = (
            update(Refund)
            .where(
                Refund.id == refund_id,
                Refund.status == "pending",
                Refund.provider_reference.is_(None),
                or_(Refund.provider_lease_until.is_(None), Refund.provider_lease_until < func.now()),
            )
            .values(provider_lease_until=until)
            .returning(Refund.id)
        )
        return (await self.session.execute(stmt)).first() is not None

    async def release_provider_lease(self, refund_id: str) -> None:
        await self.session.execute(
            update(Refund).where(Refund.id == refund_id).values(provider_lease_until=None)
        )

    async def list(
        self, merchant_id: str, livemode: bool, filters: RefundFilters, page: Page
    ) -> tuple[Sequence[Refund], bool]:
        stmt = select(Refund).where(Refund.merchant_id == merchant_id, Refund.livemode == livemode)
        if filters.status is not None:
            stmt = stmt.where(Refund.status == filters.status)
        if filters.payment is not None:
            stmt = stmt.where(Refund.payment_id == filters.payment)
        if filters.created_gte is not None:
            stmt = stmt.where(Refund.created_at >= filters.created_gte)
        if filters.created_lt is not None:
            stmt = stmt.where(Refund.created_at < filters.created_lt)
        return await paginate(self.session, stmt, Refund.id, page)

    async def claim_for_reconcile(self, limit: int, backoff: float, max_backoff: float) -> Sequence[str]:
        return await claim_due_for_reconcile(
            self.session, "refunds", ("pending",), limit=limit, backoff=backoff, max_backoff=max_backoff
        )
