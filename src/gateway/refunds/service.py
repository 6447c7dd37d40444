"""Refunds: full or partial, several per payment, never more than was captured, however many race."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import structlog

from gateway.db.database import Database, Tx
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
from gateway.payments import cash_sessions
from gateway.payments import repository as payments
from gateway.payments import state as payment_state
from gateway.payments.answers import provider_error
from gateway.payments.models import Payment
from gateway.payments.rails import payment_ref
from gateway.provider_accounts.directory import Providers
from gateway.providers.base import PaymentProvider, ProviderFailure, RefundRequest, RefundResult
from gateway.refunds import repository, state
from gateway.refunds.models import Refund
from gateway.refunds.schemas import RefundCreate, RefundFilters

log = structlog.get_logger("gateway.refunds")

REFUNDABLE = frozenset({payment_state.S.SUCCEEDED, payment_state.S.PARTIALLY_REFUNDED})


class RefundService:
    def __init__(self, db: Database, registry: Providers, provider_timeout: float):
        self.db = db
        self.registry = registry
        self.lease = timedelta(seconds=provider_timeout * 2)

    async def create(
        self,
        principal: Principal,
        payment_id: str,
        body: RefundCreate,
        *,
        idempotency_key: str,
        fingerprint: str,
    ) -> tuple[Refund, bool]:
        """The refund, and whether the answer repeats an earlier request's (found in PostgreSQL)."""
        existing = await repository.find_by_key(self.db, principal.merchant_id, idempotency_key)
        if existing is not None:
            return await self._retry(principal, existing, fingerprint)

        async with self.db.transaction() as tx:
            # The payment's row lock serialises every refund of it: the remaining amount cannot race.
            payment = await payments.lock(tx, payment_id)
            if (
                payment is None
                or payment.merchant_id != principal.merchant_id
                or payment.livemode != principal.livemode
            ):
                raise NotFound(f"No such payment: {payment_id!r}", param="payment")
            provider = await self._provider(payment)
            refund = await self._insert(tx, principal, payment, provider, body, idempotency_key, fingerprint)
        if refund is None:  # a concurrent request with the same key won: answer as its retry
            raced = await repository.find_by_key(self.db, principal.merchant_id, idempotency_key)
            assert raced is not None
            return await self._retry(principal, raced, fingerprint)
        # Committed (and the payment's lock released) before the provider hears of it.
        request = RefundRequest(refund.id, payment_ref(payment), refund.amount, body.reason)
        return await self._send(provider, payment, refund, request), False

    async def _insert(
        self,
        tx: Tx,
        principal: Principal,
        payment: Payment,
        provider: PaymentProvider,
        body: RefundCreate,
        key: str,
        fingerprint: str,
    ) -> Refund | None:
        if payment.status not in REFUNDABLE:
            raise PaymentNotRefundable(
                f"A payment with status {payment.status!r} cannot be refunded; only succeeded or "
                "partially refunded payments can.",
                status_now=payment.status,
            )
        remaining = payment.amount - await repository.reserved_amount(tx, payment.id)
        amount = body.amount if body.amount is not None else remaining
        if remaining <= 0 or amount > remaining:
            raise RefundExceedsRemaining(
                f"At most {remaining} ({payment.currency} minor units) is left to refund.",
                remaining=remaining,
                currency=payment.currency,
            )
        if amount != payment.amount and not provider.capabilities.partial_refunds:
            raise PartialRefundNotSupported(f"{payment.provider} refunds only the whole payment.")
        # A cash refund is counted in a drawer session, share-locked like a cash payment's.
        cash_session = await cash_sessions.for_refund(tx, payment, body.cash_session)
        now = datetime.now(UTC)
        refund = await repository.insert(
            tx,
            Refund(
                id=new_id("re"),
                merchant_id=principal.merchant_id,
                payment_id=payment.id,
                livemode=principal.livemode,
                amount=amount,
                currency=payment.currency,
                status="pending",
                reason=body.reason,
                metadata_=body.metadata,
                provider_reference=None,
                failure_code=None,
                failure_message=None,
                idempotency_key=key,
                request_fingerprint=fingerprint,
                provider_lease_until=now + self.lease,
                next_reconcile_at=now + timedelta(seconds=provider.capabilities.reconcile_after_seconds),
                reconcile_attempts=0,
                created_at=now,
                updated_at=now,
                cash_session=cash_session,
            ),
        )
        if refund is not None:
            state.record_created(tx, refund, source="api")
        return refund

    async def _retry(self, principal: Principal, refund: Refund, fingerprint: str) -> tuple[Refund, bool]:
        if refund.request_fingerprint != fingerprint:
            raise IdempotencyKeyReused(
                "This Idempotency-Key was already used with a different request; use a new key."
            )
        if refund.status != "pending" or refund.provider_reference is not None:
            return refund, True
        payment = await payments.get(self.db, principal.merchant_id, principal.livemode, refund.payment_id)
        assert payment is not None
        provider = await self._provider(payment)
        if not provider.capabilities.idempotent_refunds:
            return refund, True  # sending it again could refund twice: it stays pending for reconciliation
        # The provider never answered this refund: send it again (same provider-side key), once at a time.
        if not await repository.claim_provider_lease(self.db, refund.id, datetime.now(UTC) + self.lease):
            raise IdempotencyKeyInUse(
                "This refund is being sent to the provider by another request; retry shortly.",
                headers={"Retry-After": "1"},
            )
        request = RefundRequest(refund.id, payment_ref(payment), refund.amount, refund.reason)
        return await self._send(provider, payment, refund, request), False

    async def _send(
        self, provider: PaymentProvider, payment: Payment, refund: Refund, request: RefundRequest
    ) -> Refund:
        try:
            result = await provider.refund_payment(request)
        except ProviderFailure as e:
            await repository.release_provider_lease(self.db, refund.id)
            raise provider_error(
                e,
                payment,
                refund=refund.id,
                then="The refund stays pending (its amount reserved): retry with the same Idempotency-Key.",
            ) from e
        async with self.db.transaction() as tx:
            refund, _ = await apply_refund_result(tx, refund.id, result, source="api")
        return refund

    async def _provider(self, payment: Payment) -> PaymentProvider:
        try:
            provider = await self.registry.for_payment(payment.provider, payment.provider_account_id)
        except ProviderFailure as e:  # the account's credentials cannot be opened
            raise provider_error(e, payment, then="Nothing was sent to the provider.") from e
        if provider is None or not provider.capabilities.refunds:
            raise RefundNotSupported(f"{payment.provider} payments cannot be refunded through the gateway.")
        return provider

    async def get(self, principal: Principal, refund_id: str) -> Refund:
        refund = await repository.get(self.db, principal.merchant_id, principal.livemode, refund_id)
        if refund is None:
            raise NotFound(f"No such refund: {refund_id!r}", param="id")
        return refund

    async def list(
        self, principal: Principal, filters: RefundFilters, page: Page
    ) -> tuple[Sequence[Refund], bool]:
        return await repository.list_refunds(
            self.db, principal.merchant_id, principal.livemode, filters, page
        )

    async def list_for_payment(
        self, principal: Principal, payment_id: str, page: Page
    ) -> tuple[Sequence[Refund], bool]:
        if await payments.get(self.db, principal.merchant_id, principal.livemode, payment_id) is None:
            raise NotFound(f"No such payment: {payment_id!r}", param="payment")
        return await self.list(principal, RefundFilters(payment=payment_id), page)


async def apply_refund_result(
    tx: Tx, refund_id: str, result: RefundResult, *, source: str
) -> tuple[Refund, bool]:
    """Locks the refund with its payment (in the one order) and applies; the caller's tx commits."""
    locked = await repository.lock_refund(tx, refund_id)
    assert locked is not None
    payment, refund = locked
    moved = state.apply_result(tx, payment, refund, result, source=source)
    return refund, moved
