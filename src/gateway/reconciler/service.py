"""The reconciler: asks providers about payments and refunds they never reported on.

Callbacks get lost (M-Pesa and MoMo say so outright), so every unsettled payment and refund is
queried some time after creation and then with doubling backoff, and a payment whose customer never
acted expires after the provider's TTL (after a last query). Safe with any number of replicas: rows
are claimed with FOR UPDATE SKIP LOCKED by moving their next question into the future.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.payments.repository import PaymentRepository
from gateway.payments.service import refund_ref, sync_payment
from gateway.providers.base import ProviderFailure
from gateway.providers.registry import ProviderRegistry
from gateway.refunds.repository import RefundRepository
from gateway.refunds.service import apply_refund_result
from gateway.settings import ReconcilerSettings

log = structlog.get_logger("gateway.reconciler")


class Reconciler:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        registry: ProviderRegistry,
        settings: ReconcilerSettings,
    ):
        self.sessionmaker = sessionmaker
        self.registry = registry
        self.settings = settings

    async def run_once(self) -> int:
        """One round: claim what is due, ask, apply. Returns how many objects were asked about."""
        s = self.settings
        async with self.sessionmaker() as session:
            payments = await PaymentRepository(session).claim_for_reconcile(
                s.batch_size, s.backoff_seconds, s.max_backoff_seconds
            )
            refunds = await RefundRepository(session).claim_for_reconcile(
                s.batch_size, s.backoff_seconds, s.max_backoff_seconds
            )
            await session.commit()
        for payment_id in payments:
            await self._payment(payment_id)
        for refund_id in refunds:
            await self._refund(refund_id)
        if payments or refunds:
            log.info("reconcile_round", payments=len(payments), refunds=len(refunds))
        return len(payments) + len(refunds)

    async def _payment(self, payment_id: str) -> None:
        async with self.sessionmaker() as session:
            try:
                await sync_payment(session, self.registry, payment_id, source="reconciler")
            except ProviderFailure as e:
                log.warning("reconcile_provider_failed", payment_id=payment_id, error=type(e).__name__)
            except Exception:
                log.exception("reconcile_failed", payment_id=payment_id)

    async def _refund(self, refund_id: str) -> None:
        async with self.sessionmaker() as session:
            try:
                repo = RefundRepository(session)
                refund = await repo.lock(refund_id)
                payment = await PaymentRepository(session).lock(refund.payment_id) if refund else None
                provider = self.registry.get(payment.provider) if payment else None
                if refund is None or payment is None or provider is None or refund.status != "pending":
                    return
                ref = refund_ref(refund, payment)
                await session.commit()
                result = await provider.fetch_refund(ref)
                await apply_refund_result(session, refund_id, result, source="reconciler")
                await session.commit()
            except ProviderFailure as e:
                log.warning("reconcile_provider_failed", refund_id=refund_id, error=type(e).__name__)
            except Exception:
                log.exception("reconcile_failed", refund_id=refund_id)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.run_once()
            except Exception:
                log.exception("reconcile_round_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.settings.interval_seconds)
