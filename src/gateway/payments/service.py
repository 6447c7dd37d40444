"""Payments: create, read, list, cancel and sync, over the provider registry and the state machine."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.errors import (
    CurrencyNotSupported,
    GatewayError,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    InvalidPhone,
    InvalidRequest,
    NotFound,
    PaymentNotCancelable,
    ProviderError,
    ProviderMisconfiguredError,
    ProviderNotConfigured,
    ProviderTimeout,
    ProviderUnknown,
    problem_body,
)
from gateway.events.models import Event
from gateway.events.repository import EventRepository
from gateway.kit.ids import new_id
from gateway.kit.money import format_amount
from gateway.kit.pagination import Page
from gateway.merchants.service import Principal
from gateway.payments import state
from gateway.payments.models import Payment
from gateway.payments.repository import PaymentRepository
from gateway.payments.schemas import PaymentCreate, PaymentFilters, payment_out
from gateway.providers.base import (
    Customer,
    PaymentProvider,
    PaymentRef,
    PaymentRequest,
    PaymentResult,
    ProviderFailure,
    ProviderMisconfigured,
    ProviderTimedOut,
    RefundRef,
)
from gateway.providers.registry import ProviderRegistry

log = structlog.get_logger("gateway.payments")


@dataclass(frozen=True)
class Rendered:
    """A finished answer: the status and the exact bytes the client gets (and a replay repeats)."""

    status: int
    body: bytes
    media_type: str = "application/json"


def render_payment(payment: Payment, request_id: str | None, *, created: bool = False) -> Rendered:
    """A declined payment answers 402 with the payment inside; anything else answers with the payment."""
    out = payment_out(payment)
    if payment.status == state.S.FAILED and payment.failure_code:
        body = problem_body(
            status=402,
            code=payment.failure_code,
            title="The payment was declined",
            detail=payment.failure_message or "The provider declined the payment.",
            request_id=request_id,
            payment=out.model_dump(mode="json"),
        )
        return Rendered(402, body, "application/problem+json")
    return Rendered(201 if created else 200, out.model_dump_json().encode())


def payment_ref(p: Payment) -> PaymentRef:
    return PaymentRef(
        payment_id=p.id,
        provider_reference=p.provider_reference,
        amount=p.amount,
        currency=p.currency,
        livemode=p.livemode,
        created_at=p.created_at,
        payment_method=p.payment_method,
    )


def refund_ref(refund: Any, payment: Payment) -> RefundRef:
    return RefundRef(
        refund_id=refund.id,
        provider_reference=refund.provider_reference,
        payment=payment_ref(payment),
        amount=refund.amount,
        created_at=refund.created_at,
    )


def _request(p: Payment) -> PaymentRequest:
    return PaymentRequest(
        payment_id=p.id,
        amount=p.amount,
        currency=p.currency,
        livemode=p.livemode,
        created_at=p.created_at,
        payment_method=p.payment_method,
        customer=Customer(p.customer_name, p.customer_email, p.customer_phone, p.customer_location),
        description=p.description,
        reference=p.reference,
        metadata=p.metadata_,
        return_url=p.return_url,
    )


class PaymentService:
    def __init__(self, session: AsyncSession, registry: ProviderRegistry, provider_timeout: float):
        self.session = session
        self.registry = registry
        self.repo = PaymentRepository(session)
        self.lease = timedelta(seconds=provider_timeout * 2)

    def _provider(self, name: str) -> PaymentProvider:
        provider = self.registry.get(name)
        if provider is None:
            raise ProviderUnknown(
                f"No provider named {name!r}. Available: {', '.join(self.registry.names())}.",
                param="provider",
            )
        return provider

    def _check(self, provider: PaymentProvider, body: PaymentCreate, livemode: bool) -> None:
        if not provider.is_configured(livemode):
            mode = "live" if livemode else "test"
            raise ProviderNotConfigured(f"The {provider.name} provider has no {mode}-mode credentials.")
        if body.currency not in provider.capabilities.currencies:
            raise CurrencyNotSupported(
                f"{provider.name} does not take {body.currency}.",
                param="currency",
                supported=sorted(provider.capabilities.currencies),
            )
        check_phone = provider.capabilities.check_phone
        if check_phone is not None:
            problem = check_phone(body.customer.phone if body.customer else None, livemode)
            if problem is not None:
                raise InvalidPhone(
                    problem,
                    errors=[{"loc": ["body", "customer", "phone"], "type": "invalid_phone", "msg": problem}],
                )
        caps = provider.capabilities
        if body.amount % caps.amount_multiple_of:
            step = format_amount(caps.amount_multiple_of, body.currency)
            amount = format_amount(body.amount, body.currency)
            raise InvalidRequest(
                f"{provider.name} takes only multiples of {step}; {amount} is not one.",
                errors=[
                    {
                        "loc": ["body", "amount"],
                        "type": "amount_not_supported",
                        "msg": f"must be a multiple of {caps.amount_multiple_of} ({step})",
                    }
                ],
            )
        methods = provider.capabilities.payment_methods
        if methods is not None and body.payment_method is not None and body.payment_method not in methods:
            raise InvalidRequest(
                f"{provider.name} does not know the payment method {body.payment_method!r}.",
                errors=[
                    {
                        "loc": ["body", "payment_method"],
                        "type": "invalid_payment_method",
                        "msg": f"one of: {', '.join(sorted(methods))}",
                    }
                ],
            )

    async def create(
        self,
        principal: Principal,
        body: PaymentCreate,
        *,
        idempotency_key: str,
        fingerprint: str,
        request_id: str | None,
    ) -> Rendered:
        provider = self._provider(body.provider)
        self._check(provider, body, principal.livemode)

        payment, created = await self._insert_or_find(principal, body, idempotency_key, fingerprint, provider)
        if not created:
            if payment.status != state.S.PENDING:
                return render_payment(payment, request_id, created=True)
            # A retry of a request that never heard back from the provider: resume it, once at a time.
            if not await self.repo.claim_provider_lease(payment.id, datetime.now(UTC) + self.lease):
                await self.session.rollback()
                raise IdempotencyKeyInUse(
                    "This payment is being sent to the provider by another request; retry shortly.",
                    headers={"Retry-After": "1"},
                )
            await self.session.commit()

        try:
            result = await provider.create_payment(_request(payment))
        except ProviderFailure as e:
            await self.repo.release_provider_lease(payment.id)
            await self.session.commit()
            raise provider_error(e, payment.id) from e
        return render_payment(await self._apply(payment.id, result, "api"), request_id, created=True)

    async def _insert_or_find(
        self, principal: Principal, body: PaymentCreate, key: str, fingerprint: str, provider: PaymentProvider
    ) -> tuple[Payment, bool]:
        # Insert first: a new key (the common case) costs one statement; a retry finds its row on conflict.
        now = datetime.now(UTC)
        customer = body.customer
        existing = await self.repo.insert_if_absent(
            {
                "id": new_id("pay"),
                "merchant_id": principal.merchant_id,
                "livemode": principal.livemode,
                "amount": body.amount,
                "currency": body.currency,
                "status": state.S.PENDING,
                "provider": body.provider,
                "payment_method": body.payment_method,
                "customer_name": customer.name if customer else None,
                "customer_email": customer.email if customer else None,
                "customer_phone": customer.phone if customer else None,
                "customer_location": customer.location if customer else None,
                "description": body.description,
                "reference": body.reference,
                "metadata_": body.metadata,
                "return_url": body.return_url,
                "idempotency_key": key,
                "request_fingerprint": fingerprint,
                "provider_lease_until": now + self.lease,
                "next_reconcile_at": now + timedelta(seconds=provider.capabilities.reconcile_after_seconds),
                "created_at": now,
                "updated_at": now,
            }
        )
        if existing is not None:
            await state.record_created(self.session, existing, source="api")
            # Committed before the provider hears of it: a crash from here on leaves a row to resume.
            await self.session.commit()
            return existing, True
        existing = await self.repo.get_by_idempotency_key(principal.merchant_id, key)
        assert existing is not None  # the conflicting row is committed, or we would not have conflicted
        if existing.request_fingerprint != fingerprint:
            raise IdempotencyKeyReused(
                "This Idempotency-Key was already used with a different request; use a new key."
            )
        return existing, False

    async def _apply(self, payment_id: str, result: PaymentResult, source: str) -> Payment:
        payment = await self.repo.lock(payment_id)
        assert payment is not None
        await state.apply_result(self.session, payment, result, source=source)
        await self.session.commit()
        return payment

    async def get(self, principal: Principal, payment_id: str) -> Payment:
        payment = await self.repo.get(principal.merchant_id, principal.livemode, payment_id)
        if payment is None:
            raise NotFound(f"No such payment: {payment_id!r}", param="id")
        return payment

    async def list(
        self, principal: Principal, filters: PaymentFilters, page: Page
    ) -> tuple[Sequence[Payment], bool]:
        return await self.repo.list(principal.merchant_id, principal.livemode, filters, page)

    async def events(self, principal: Principal, payment_id: str, page: Page) -> tuple[Sequence[Event], bool]:
        await self.get(principal, payment_id)
        return await EventRepository(self.session).list_for_payment(principal.merchant_id, payment_id, page)

    async def cancel(self, principal: Principal, payment_id: str) -> Payment:
        payment = await self.get(principal, payment_id)
        if payment.status not in state.CANCELABLE:
            raise PaymentNotCancelable(
                f"A payment with status {payment.status!r} cannot be canceled.", status_now=payment.status
            )
        provider = self._provider(payment.provider)
        if not provider.capabilities.cancel:
            raise PaymentNotCancelable(f"{payment.provider} payments cannot be canceled.")
        ref = payment_ref(payment)
        await self.session.commit()  # no transaction (or row lock) held across the provider call
        try:
            result = await provider.cancel_payment(ref)
        except ProviderFailure as e:
            raise provider_error(e, payment.id) from e
        payment = await self._apply(payment.id, result, "api")
        if payment.status != state.S.CANCELED:
            raise PaymentNotCancelable(
                f"The provider had already settled the payment as {payment.status!r}.",
                status_now=payment.status,
            )
        return payment

    async def sync(self, principal: Principal, payment_id: str) -> Payment:
        await self.get(principal, payment_id)
        try:
            return await sync_payment(self.session, self.registry, payment_id, source="sync")
        except ProviderFailure as e:
            raise provider_error(e, payment_id) from e


async def sync_payment(
    session: AsyncSession, registry: ProviderRegistry, payment_id: str, *, source: str
) -> Payment:
    """Asks the provider where a payment stands and applies the answer; the API's sync and the
    reconciler share it. A payment still waiting for its customer past the provider's TTL expires."""
    repo = PaymentRepository(session)
    payment = await repo.lock(payment_id)
    assert payment is not None
    provider = registry.get(payment.provider)
    if payment.status in state.FINAL or provider is None:
        await session.commit()
        return payment
    ref = payment_ref(payment)
    await session.commit()  # no transaction (or row lock) held across the provider call
    result = await provider.fetch_payment(ref)
    payment = await repo.lock(payment_id)
    assert payment is not None
    await state.apply_result(session, payment, result, source=source)
    ttl = provider.capabilities.action_ttl_seconds
    if (
        payment.status == state.S.REQUIRES_ACTION
        and ttl is not None
        and payment.created_at + timedelta(seconds=ttl) <= datetime.now(UTC)
    ):
        # The provider, just asked, still waits for the customer, and the customer's time is up.
        await state.move(session, payment, state.S.EXPIRED, source=source)
    await session.commit()
    return payment


def provider_error(
    e: ProviderFailure,
    payment_id: str,
    *,
    then: str = "The payment stays pending: retry with the same Idempotency-Key, or call sync.",
    refund: str | None = None,
) -> GatewayError:
    """Maps a provider failure to our error; `then` tells the client what state it left behind."""
    ids: dict[str, Any] = {"payment": payment_id} | ({"refund": refund} if refund else {})
    if isinstance(e, ProviderTimedOut):
        return ProviderTimeout("The provider did not answer in time. " + then, **ids)
    if isinstance(e, ProviderMisconfigured):
        log.error("provider_misconfigured", error=str(e), **ids)
        return ProviderMisconfiguredError("The provider rejected the gateway's credentials. " + then, **ids)
    return ProviderError("The provider failed. " + then, **ids)
