"""Refunds: full or partial, several per payment, never more than was captured, however many race."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.errors import (
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    NotFound,
    PartialRefundNotSupported,
    PaymentNotRefundable,
    RefundExceedsRemaining,
    RefundNotSupported,
)
from gateway.kit.ids import new_id
from gateway.kit.pagination import Page
from gateway.merchants.service import Principal
from gateway.payments import state as payment_state
from gateway.payments.models import Payment
from gateway.payments.repository import PaymentRepository
from gateway.payments.service import payment_ref, provider_error
from gateway.providers.base import PaymentProvider, ProviderFailure, RefundRequest, RefundResult
from gateway.providers.registry import ProviderRegistry
from gateway.refunds import state
from gateway.refunds.models import Refund
from gateway.refunds.repository import RefundRepository
from gateway.refunds.schemas import RefundCreate, RefundFilters

log = structlog.get_logger("gateway.refunds")

REFUNDABLE = frozenset({payment_state.S.SUCCEEDED, payment_state.S.PARTIALLY_REFUNDED})


class RefundService:
    def __init__(self, session: AsyncSession, registry: ProviderRegistry, provider_timeout: float):
        self.session = session
        self.registry = registry
        self.repo = RefundRepository(session)
        self.payments = PaymentRepository(session)
        self.lease = timedelta(seconds=provider_timeout * 2)

    async def create(
        self,
        principal: Principal,
        payment_id: str,
        body: RefundCreate,
        *,
        idempotency_key: str,
        fingerprint: str,
    ) -> Refund:
        existing = await self.repo.get_by_idempotency_key(principal.merchant_id, idempotency_key)
        if existing is not None:
            return await self._retry(principal, existing, fingerprint)

        # The payment's row lock serialises every refund of it: the remaining amount cannot race.
        payment = await self.payments.get(
            principal.merchant_id, principal.livemode, payment_id, for_update=True
        )
        if payment is None:
            raise NotFound(f"No such payment: {payment_id!r}", param="payment")
        provider = self._provider(payment)
        if payment.status not in REFUNDABLE:
            raise PaymentNotRefundable(
                f"A payment with status {payment.status!r} cannot be refunded; only succeeded or "
                "partially refunded payments can.",
                status_now=payment.status,
            )
        remaining = payment.amount - await self.repo.reserved_amount(payment.id)
        amount = body.amount if body.amount is not None else remaining
        if remaining <= 0 or amount > remaining:
            raise RefundExceedsRemaining(
                f"At most {remaining} ({payment.currency} minor units) is left to refund.",
                remaining=remaining,
                currency=payment.currency,
            )
        if amount != payment.amount and not provider.capabilities.partial_refunds:
            raise PartialRefundNotSupported(f"{payment.provider} refunds only the whole payment.")

        now = datetime.now(UTC)
        refund = await self.repo.insert_if_absent(
            {
                "id": new_id("re"),
                "merchant_id": principal.merchant_id,
                "payment_id": payment.id,
                "livemode": principal.livemode,
                "amount": amount,
                "currency": payment.currency,
                "status": "pending",
                "reason": body.reason,
                "metadata_": body.metadata,
                "idempotency_key": idempotency_key,
                "request_fingerprint": fingerprint,
                "provider_lease_until": now + self.lease,
                "next_reconcile_at": now + timedelta(seconds=provider.capabilities.reconcile_after_seconds),
                "created_at": now,
                "updated_at": now,
            }
        )
        if refund is None:  # a concurrent request with the same key won: answer as its retry
            await self.session.rollback()
            raced = await self.repo.get_by_idempotency_key(principal.merchant_id, idempotency_key)
            assert raced is not None
            return await self._retry(principal, raced, fingerprint)
        await state.record_created(self.session, refund, source="api")
        ref = payment_ref(payment)
        # Committed (and the payment's lock released) before the provider hears of it.
        await self.session.commit()
        return await self._send(provider, refund, RefundRequest(refund.id, ref, amount, body.reason))

    async def _retry(self, principal: Principal, refund: Refund, fingerprint: str) -> Refund:
        if refund.request_fingerprint != fingerprint:
            raise IdempotencyKeyReused(
                "This Idempotency-Key was already used with a different request; use a new key."
            )
        if refund.status != "pending" or refund.provider_reference is not None:
            return refund
        payment = await self.payments.get(principal.merchant_id, principal.livemode, refund.payment_id)
        assert payment is not None
        if not self._provider(payment).capabilities.idempotent_refunds:
            return refund  # sending it again could refund twice: it stays pending for reconciliation
        # The provider never answered this refund: send it again (same provider-side key), once at a time.
        if not await self.repo.claim_provider_lease(refund.id, datetime.now(UTC) + self.lease):
            raise IdempotencyKeyInUse(
                "This refund is being sent to the provider by another request; retry shortly.",
                headers={"Retry-After": "1"},
            )
        request = RefundRequest(refund.id, payment_ref(payment), refund.amount, refund.reason)
        await self.session.commit()
        return await self._send(self._provider(payment), refund, request)

    async def _send(self, provider: PaymentProvider, refund: Refund, request: RefundRequest) -> Refund:
        try:
            result = await provider.refund_payment(request)
        except ProviderFailure as e:
            await self.repo.release_provider_lease(refund.id)
            await self.session.commit()
            raise provider_error(
                e,
                refund.payment_id,
                refund=refund.id,
                then="The refund stays pending (its amount reserved): retry with the same Idempotency-Key.",
            ) from e
        refund, _ = await apply_refund_result(self.session, refund.id, result, source="api")
        await self.session.commit()
        return refund

    def _provider(self, payment: Payment) -> PaymentProvider:
        provider = self.registry.get(payment.provider)
        if provider is None or not provider.capabilities.refunds:
            raise RefundNotSupported(f"{payment.provider} payments cannot be refunded through the gateway.")
        return provider

    async def get(self, principal: Principal, refund_id: str) -> Refund:
        refund = await self.repo.get(principal.merchant_id, principal.livemode, refund_id)
        if refund is None:
            raise NotFound(f"No such refund: {refund_id!r}", param="id")
        return refund

    async def list(
        self, principal: Principal, filters: RefundFilters, page: Page
    ) -> tuple[Sequence[Refund], bool]:
        return await self.repo.list(principal.merchant_id, principal.livemode, filters, page)

    async def list_for_payment(
        self, principal: Principal, payment_id: str, page: Page
    ) -> tuple[Sequence[Refund], bool]:
        if await self.payments.get(principal.merchant_id, principal.livemode, payment_id) is None:
            raise NotFound(f"No such payment: {payment_id!r}", param="payment")
        return await self.list(principal, RefundFilters(payment=payment_id), page)


async def apply_refund_result(
    session: AsyncSession, refund_id: str, result: RefundResult, *, source: str
) -> tuple[Refund, bool]:
    """Locks the payment, then the refund (always in that order) and applies; the caller commits."""
    refunds = RefundRepository(session)
    payment = await PaymentRepository(session).lock(await refunds.find_payment_id(refund_id))
    refund = await refunds.lock(refund_id)
    assert payment is not None
    assert refund is not None
    moved = await state.apply_result(session, payment, refund, result, source=source)
    return refund, moved
