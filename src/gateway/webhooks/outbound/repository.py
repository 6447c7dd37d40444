from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db.repository import paginate
from gateway.events.models import Event
from gateway.kit.ids import new_id
from gateway.kit.pagination import Page
from gateway.webhooks.outbound.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint


@dataclass(frozen=True)
class Job:
    """Everything a worker needs to send one claimed delivery, read in one query."""

    delivery: WebhookDelivery
    endpoint: WebhookEndpoint
    event: Event


class EndpointRepository:
    def __init__(self, session: AsyncSession):
        self.session = session

    async def count(self, merchant_id: str, livemode: bool) -> int:
        stmt = select(func.count()).where(
            WebhookEndpoint.merchant_id == merchant_id,
            WebhookEndpoint.livemode == livemode,
            WebhookEndpoint.deleted_at.is_(None),
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def create(self, values: dict[str, Any]) -> WebhookEndpoint:
        endpoint = WebhookEndpoint(id=new_id("we"), **values)
        self.session.add(endpoint)
        await self.session.flush()
        await self.session.refresh(endpoint)
        return endpoint

    async def get(
        self, merchant_id: str, livemode: bool, endpoint_id: str, *, for_update: bool = False
    ) -> WebhookEndpoint | None:
        stmt = select(WebhookEndpoint).where(
            WebhookEndpoint.id == endpoint_id,
            WebhookEndpoint.merchant_id == merchant_id,
            WebhookEndpoint.livemode == livemode,
            WebhookEndpoint.deleted_at.is_(None),
        )
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.scalars(stmt)).first()

    async def list(
        self, merchant_id: str, livemode: bool, page: Page
    ) -> tuple[Sequence[WebhookEndpoint], bool]:
        stmt = select(WebhookEndpoint).where(
            WebhookEndpoint.merchant_id == merchant_id,
            WebhookEndpoint.livemode == livemode,
            WebhookEndpoint.deleted_at.is_(None),
        )
        return await paginate(self.session, stmt, WebhookEndpoint.id, page)

    async def disable(self, endpoint_id: str, reason: str) -> None:
        await self.session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == endpoint_id)
            .values(enabled=False, disabled_reason=reason, updated_at=func.now())
        )


class DeliveryRepository:
    def __init__(self, session: AsyncSession):
        self.session = session

    async def claim_due(self, limit: int, until: datetime) -> list[str]:
        """Leases up to `limit` due deliveries; SKIP LOCKED lets any number of workers share the queue."""
        stmt = text("""
            UPDATE webhook_deliveries SET claimed_until = :until
            WHERE id IN (
                SELECT id FROM webhook_deliveries
                WHERE status = 'pending' AND next_attempt_at <= now()
                  AND (claimed_until IS NULL OR claimed_until < now())
                ORDER BY next_attempt_at
                LIMIT :limit
                FOR UPDATE SKIP LOCKED
            )
            RETURNING id
        """)
        return list((await self.session.execute(stmt, {"until": until, "limit": limit})).scalars())

    async def jobs(self, delivery_ids: list[str]) -> list[Job]:
        stmt = (
            select(WebhookDelivery, WebhookEndpoint, Event)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .join(Event, Event.id == WebhookDelivery.event_id)
            .where(WebhookDelivery.id.in_(delivery_ids))
            .order_by(WebhookDelivery.id)
        )
        return [Job(d, e, ev) for d, e, ev in (await self.session.execute(stmt)).all()]

    async def record_attempt(
        self,
        delivery_id: str,
        *,
        status_code: int | None,
        duration_ms: int,
        response_body: str | None,
        error: str | None,
        worker: str,
    ) -> None:
        await self.session.execute(
            insert(WebhookAttempt).values(
                id=new_id("wha"),
                delivery_id=delivery_id,
                status_code=status_code,
                duration_ms=duration_ms,
                response_body=response_body,
                error=error,
                worker=worker,
            )
        )

    async def finish_attempt(
        self, delivery_id: str, *, status: str, status_code: int | None, next_attempt_at: datetime | None
    ) -> None:
        await self.session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id)
            .values(
                status=status,
                attempts=WebhookDelivery.attempts + 1,
                last_status_code=status_code,
                next_attempt_at=next_attempt_at,
                claimed_until=None,
                updated_at=func.now(),
            )
        )

    async def release(self, delivery_ids: list[str]) -> None:
        await self.session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id.in_(delivery_ids), WebhookDelivery.status == "pending")
            .values(claimed_until=None)
        )

    async def get(self, merchant_id: str, livemode: bool, delivery_id: str) -> WebhookDelivery | None:
        stmt = (
            select(WebhookDelivery)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .where(
                WebhookDelivery.id == delivery_id,
                WebhookDelivery.merchant_id == merchant_id,
                WebhookEndpoint.livemode == livemode,
            )
        )
        return (await self.session.scalars(stmt.execution_options(populate_existing=True))).first()

    async def requeue(self, delivery_id: str) -> None:
        await self.session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id)
            .values(status="pending", next_attempt_at=func.now(), updated_at=func.now())
        )

    async def list_for_endpoint(self, endpoint_id: str, page: Page) -> tuple[Sequence[WebhookDelivery], bool]:
        stmt = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
        return await paginate(self.session, stmt, WebhookDelivery.id, page)

    async def attempts(self, delivery_ids: Sequence[str]) -> dict[str, list[WebhookAttempt]]:
        stmt = (
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_(delivery_ids))
            .order_by(WebhookAttempt.id)
        )
        out: dict[str, list[WebhookAttempt]] = {d: [] for d in delivery_ids}
        for a in (await self.session.scalars(stmt)).all():
            out[a.delivery_id].append(a)
        return out
