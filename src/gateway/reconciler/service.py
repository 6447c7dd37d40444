"""The reconciler: asks providers about payments, refunds and payouts they never reported on.

Callbacks get lost (M-Pesa and MoMo say so outright), so every unsettled payment and refund is
queried some time after creation and then with doubling backoff, and a payment whose customer never
acted expires after the provider's TTL (after a last query), and a payment nobody confirmed (an
abandoned checkout) expires after `unconfirmed_expire_after_seconds`. Safe with any number of
replicas: rows are claimed with FOR UPDATE SKIP LOCKED by moving their next question into the future.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

import structlog

from gateway.db.database import Database
from gateway.payments import repository as payments
from gateway.payments import state
from gateway.payments.rails import refund_ref
from gateway.payments.sync import sync_payment
from gateway.payouts import repository as payouts
from gateway.payouts.service import PayoutService
from gateway.provider_accounts.directory import Providers
from gateway.providers.base import ProviderFailure
from gateway.refunds import repository as refunds
from gateway.refunds.service import apply_refund_result
from gateway.settings import PayoutSettings, ReconcilerSettings

log = structlog.get_logger("gateway.reconciler")


class Reconciler:
    def __init__(
        self,
        db: Database,
        registry: Providers,
        settings: ReconcilerSettings,
        payout_settings: PayoutSettings | None = None,
    ):
        self.db = db
        self.registry = registry
        self.settings = settings
        self.payout_settings = payout_settings or PayoutSettings()
        self.payouts = PayoutService(db, registry, self.payout_settings)

    async def run_once(self) -> int:
        """One round: claim what is due, ask, apply. Returns how many objects were asked about."""
        s = self.settings
        async with self.db.transaction() as tx:
            due_payments = await payments.claim_for_reconcile(
                tx, s.batch_size, s.backoff_seconds, s.max_backoff_seconds
            )
            due_refunds = await refunds.claim_for_reconcile(
                tx, s.batch_size, s.backoff_seconds, s.max_backoff_seconds
            )
            due_payouts = await payouts.claim_for_reconcile(
                tx, s.batch_size, s.backoff_seconds, s.max_backoff_seconds
            )
        for payment_id in due_payments:
            await self._payment(payment_id)
        for refund_id in due_refunds:
            await self._refund(refund_id)
        for payout_id in due_payouts:
            await self._payout(payout_id)
        expired = await self.expire_unconfirmed()
        expired += await self.payouts.cancel_unsubmitted(
            self.payout_settings.unsubmitted_cancel_after_seconds, s.batch_size
        )
        if due_payments or due_refunds or due_payouts or expired:
            log.info(
                "reconcile_round",
                payments=len(due_payments),
                refunds=len(due_refunds),
                payouts=len(due_payouts),
                expired=expired,
            )
        return len(due_payments) + len(due_refunds) + len(due_payouts) + expired

    async def expire_unconfirmed(self) -> int:
        """Moves payments nobody confirmed in time to `expired` (event and all, in one transaction):
        no provider was ever called for them, so there is nobody to ask first."""
        cutoff = datetime.now(UTC) - timedelta(seconds=self.settings.unconfirmed_expire_after_seconds)
        async with self.db.transaction() as tx:
            stale = await payments.lock_unconfirmed_before(tx, cutoff, self.settings.batch_size)
            for payment in stale:
                state.move(tx, payment, state.S.EXPIRED, source="reconciler")
        return len(stale)

    async def _payment(self, payment_id: str) -> None:
        try:
            await sync_payment(self.db, self.registry, payment_id, source="reconciler")
        except ProviderFailure as e:
            log.warning("reconcile_provider_failed", payment_id=payment_id, error=type(e).__name__)
        except Exception:
            log.exception("reconcile_failed", payment_id=payment_id)

    async def _refund(self, refund_id: str) -> None:
        try:
            async with self.db.transaction() as tx:
                locked = await refunds.lock_refund(tx, refund_id)
            if locked is None:
                return
            payment, refund = locked
            if refund.status != "pending":
                return
            provider = await self.registry.for_payment(payment.provider, payment.provider_account_id)
            if provider is None:
                return
            # No transaction (or row lock) held across the provider call.
            result = await provider.fetch_refund(refund_ref(refund, payment))
            async with self.db.transaction() as tx:
                await apply_refund_result(tx, refund_id, result, source="reconciler")
        except ProviderFailure as e:
            log.warning("reconcile_provider_failed", refund_id=refund_id, error=type(e).__name__)
        except Exception:
            log.exception("reconcile_failed", refund_id=refund_id)

    async def _payout(self, payout_id: str) -> None:
        """Asks about a submitted payout (fetch_payout) and applies the answer; never sends it again."""
        try:
            await self.payouts.reconcile(payout_id)
        except ProviderFailure as e:
            log.warning("reconcile_provider_failed", payout_id=payout_id, error=type(e).__name__)
        except Exception:
            log.exception("reconcile_failed", payout_id=payout_id)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.run_once()
            except Exception:
                log.exception("reconcile_round_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.settings.interval_seconds)
