"""Payments: create, read, list, cancel and sync, over the provider registry and the state machine."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from gateway.db.database import Database
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
from gateway.events import repository as event_log
from gateway.events.models import Event
from gateway.kit.ids import new_id
from gateway.kit.money import format_amount
from gateway.kit.pagination import Page
from gateway.merchants.service import Principal
from gateway.payments import repository, state
from gateway.payments.models import Payment
from gateway.payments.schemas import PaymentCreate, PaymentFilters, dump, payment_json
from gateway.payments.secrets import client_secret_matches, new_checkout_id, new_client_secret
from gateway.provider_accounts.directory import Providers
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

log = structlog.get_logger("gateway.payments")


@dataclass(frozen=True)
class Rendered:
    """A finished answer: the status and the exact bytes the client gets (and a replay repeats)."""

    status: int
    body: bytes
    media_type: str = "application/json"
    # The answer repeats an earlier request's (found in PostgreSQL, Redis having forgotten it).
    replayed: bool = False


def render_payment(
    payment: Payment, request_id: str | None, *, created: bool = False, replayed: bool = False
) -> Rendered:
    """A declined payment answers 402 with the payment inside; anything else answers with the payment."""
    out = payment_json(payment)
    if payment.status == state.S.FAILED and payment.failure_code:
        body = problem_body(
            status=402,
            code=payment.failure_code,
            title="The payment was declined",
            detail=payment.failure_message or "The provider declined the payment.",
            request_id=request_id,
            payment=out,
        )
        return Rendered(402, body, "application/problem+json", replayed)
    return Rendered(201 if created else 200, dump(out), replayed=replayed)


def payment_ref(p: Payment) -> PaymentRef:
    return PaymentRef(
        payment_id=p.id,
        provider_reference=p.provider_reference,
        amount=p.amount,
        currency=p.currency,
        livemode=p.livemode,
        created_at=p.created_at,
        payment_method=p.payment_method,
        receipt=p.provider_receipt,
        customer_phone=p.customer_phone,
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
    def __init__(self, db: Database, registry: Providers, provider_timeout_seconds: float):
        self.db = db
        self.registry = registry
        self.lease = timedelta(seconds=provider_timeout_seconds * 2)

    async def _provider(self, payment: Payment) -> PaymentProvider:
        """The adapter of an existing payment: through the account it was made with."""
        try:
            provider = await self.registry.for_payment(payment.provider, payment.provider_account_id)
        except ProviderFailure as e:  # the account's credentials cannot be opened
            raise provider_error(e, payment, then="Nothing was sent to the provider.") from e
        if provider is None:
            raise ProviderUnknown(f"No provider named {payment.provider!r}.", param="provider")
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
        provider, account_id = await self.registry.for_new_payment(
            principal.merchant_id, body.provider, principal.livemode
        )
        self._check(provider, body, principal.livemode)
        row = _new_row(principal, body, idempotency_key, fingerprint, provider, self.lease, account_id)

        failure: ProviderFailure | None = None
        async with self.db.transaction() as tx:
            payment = await repository.insert(tx, row)
            if payment is not None:
                state.record_created(tx, payment, source="api")
                if provider.capabilities.in_process:
                    # Nothing leaves the process: the answer is applied in the creating transaction,
                    # so a crash before the commit leaves no trace anywhere (one commit per payment).
                    try:
                        result = await provider.create_payment(_request(payment))
                    except ProviderFailure as e:
                        failure = e
                        await repository.release_provider_lease(tx, payment.id)
                    else:
                        state.apply_result(tx, payment, result, source="api")
                        return render_payment(payment, request_id, created=True)
        if failure is not None:
            assert payment is not None  # only an inserted payment meets the provider
            raise provider_error(failure, payment) from failure
        if payment is None:
            payment = await self._resume(principal, idempotency_key, fingerprint)
            if payment.status != state.S.PENDING:
                return render_payment(payment, request_id, created=True, replayed=True)
        # The row is committed before the provider hears of it: a crash from here on leaves a row to
        # resume (a retry with the same key, or the reconciler).
        try:
            result = await provider.create_payment(_request(payment))
        except ProviderFailure as e:
            async with self.db.transaction() as tx:
                await repository.release_provider_lease(tx, payment.id)
            raise provider_error(e, payment) from e
        return render_payment(await self._apply(payment.id, result), request_id, created=True)

    async def _resume(self, principal: Principal, key: str, fingerprint: str) -> Payment:
        """A retry of a key whose payment exists: its payment, leased to this request if still pending."""
        async with self.db.transaction() as tx:
            payment = await repository.find_by_key(tx, principal.merchant_id, key)
            assert payment is not None  # the conflicting row is committed, or we would not have conflicted
            if payment.request_fingerprint != fingerprint:
                raise IdempotencyKeyReused(
                    "This Idempotency-Key was already used with a different request; use a new key."
                )
            if payment.status != state.S.PENDING:
                return payment
            # A retry of a request that never heard back from the provider: resume it, once at a time.
            if not await repository.claim_provider_lease(tx, payment.id, datetime.now(UTC) + self.lease):
                raise IdempotencyKeyInUse(
                    "This payment is being sent to the provider by another request; retry shortly.",
                    headers={"Retry-After": "1"},
                )
            return payment

    async def _apply(self, payment_id: str, result: PaymentResult) -> Payment:
        async with self.db.transaction() as tx:
            payment = await repository.lock(tx, payment_id)
            assert payment is not None
            state.apply_result(tx, payment, result, source="api")
            return payment

    async def get(self, principal: Principal, payment_id: str) -> Payment:
        # One statement on a pooled connection: no transaction to open or close.
        payment = await repository.get(self.db, principal.merchant_id, principal.livemode, payment_id)
        if payment is None:
            raise NotFound(f"No such payment: {payment_id!r}", param="id")
        return payment

    async def get_with_secret(
        self, principal: Principal, payment_id: str, client_secret: str | None
    ) -> Payment:
        """The payment a browser may see: the caller's merchant and mode, and its client secret
        (a publishable key needs the secret; a secret key does not). A wrong secret is the same 404
        as a missing payment."""
        payment = await repository.get(self.db, principal.merchant_id, principal.livemode, payment_id)
        if payment is None or (
            principal.key_type == "publishable" and not client_secret_matches(payment, client_secret)
        ):
            raise NotFound(f"No such payment: {payment_id!r}", param="id")
        return payment

    async def list(
        self, principal: Principal, filters: PaymentFilters, page: Page
    ) -> tuple[Sequence[Payment], bool]:
        return await repository.list_payments(
            self.db, principal.merchant_id, principal.livemode, filters, page
        )

    async def events(self, principal: Principal, payment_id: str, page: Page) -> tuple[Sequence[Event], bool]:
        await self.get(principal, payment_id)
        return await event_log.list_for_payment(self.db, principal.merchant_id, payment_id, page)

    async def cancel(self, principal: Principal, payment_id: str) -> Payment:
        payment = await self.get(principal, payment_id)
        if payment.status not in state.CANCELABLE:
            raise PaymentNotCancelable(
                f"A payment with status {payment.status!r} cannot be canceled.", status_now=payment.status
            )
        provider = await self._provider(payment)
        if not provider.capabilities.cancel:
            raise PaymentNotCancelable(f"{payment.provider} payments cannot be canceled.")
        try:  # no transaction (or row lock) held across the provider call
            result = await provider.cancel_payment(payment_ref(payment))
        except ProviderFailure as e:
            raise provider_error(e, payment) from e
        payment = await self._apply(payment.id, result)
        if payment.status != state.S.CANCELED:
            raise PaymentNotCancelable(
                f"The provider had already settled the payment as {payment.status!r}.",
                status_now=payment.status,
            )
        return payment

    async def sync(self, principal: Principal, payment_id: str) -> Payment:
        payment = await self.get(principal, payment_id)
        try:
            return await sync_payment(self.db, self.registry, payment_id, source="sync")
        except ProviderFailure as e:
            raise provider_error(e, payment) from e


def _new_row(
    principal: Principal,
    body: PaymentCreate,
    key: str,
    fingerprint: str,
    provider: PaymentProvider,
    lease: timedelta,
    account_id: str | None,
) -> Payment:
    now = datetime.now(UTC)
    customer = body.customer
    payment_id = new_id("pay")
    return Payment(
        id=payment_id,
        merchant_id=principal.merchant_id,
        livemode=principal.livemode,
        amount=body.amount,
        amount_refunded=0,
        currency=body.currency,
        status=state.S.PENDING,
        provider=body.provider,
        payment_method=body.payment_method,
        customer_name=customer.name if customer else None,
        customer_email=customer.email if customer else None,
        customer_phone=customer.phone if customer else None,
        customer_location=customer.location if customer else None,
        description=body.description,
        reference=body.reference,
        metadata_=body.metadata,
        return_url=body.return_url,
        provider_reference=None,
        next_action=None,
        failure_code=None,
        failure_message=None,
        idempotency_key=key,
        request_fingerprint=fingerprint,
        provider_lease_until=now + lease,
        next_reconcile_at=now + timedelta(seconds=provider.capabilities.reconcile_after_seconds),
        reconcile_attempts=0,
        created_at=now,
        updated_at=now,
        completed_at=None,
        payment_method_details=None,
        provider_receipt=None,
        provider_account_id=account_id,
        client_secret=new_client_secret(payment_id),
        checkout_id=new_checkout_id(),
    )


async def sync_payment(db: Database, registry: Providers, payment_id: str, *, source: str) -> Payment:
    """Asks the provider where a payment stands and applies the answer; the API's sync, unsigned
    callbacks and the reconciler share it. A payment still waiting for its customer past the
    provider's TTL expires. No transaction (or row lock) is held across the provider call."""
    async with db.transaction() as tx:
        payment = await repository.lock(tx, payment_id)
    assert payment is not None
    if payment.status in state.FINAL:
        return payment
    provider = await registry.for_payment(payment.provider, payment.provider_account_id)
    if provider is None:
        return payment
    result = await provider.fetch_payment(payment_ref(payment))
    async with db.transaction() as tx:
        payment = await repository.lock(tx, payment_id)
        assert payment is not None
        state.apply_result(tx, payment, result, source=source)
        ttl = provider.capabilities.action_ttl_seconds
        if (
            payment.status == state.S.REQUIRES_ACTION
            and ttl is not None
            and payment.created_at + timedelta(seconds=ttl) <= datetime.now(UTC)
        ):
            # The provider, just asked, still waits for the customer, and the customer's time is up.
            state.move(tx, payment, state.S.EXPIRED, source=source)
    return payment


def provider_error(
    e: ProviderFailure,
    payment: Payment,
    *,
    then: str = "The payment stays pending: retry with the same Idempotency-Key, or call sync.",
    refund: str | None = None,
) -> GatewayError:
    """Maps a provider failure to our error; `then` tells the client what state it left behind.
    `payment` in the problem is the payment object, as in a 402 (docs/api.md); `refund` an id."""
    ids: dict[str, Any] = {"payment": payment_json(payment)} | ({"refund": refund} if refund else {})
    if isinstance(e, ProviderTimedOut):
        return ProviderTimeout("The provider did not answer in time. " + then, **ids)
    if isinstance(e, ProviderMisconfigured):
        log.error("provider_misconfigured", error=str(e), payment_id=payment.id, refund=refund)
        return ProviderMisconfiguredError("The provider rejected the gateway's credentials. " + then, **ids)
    return ProviderError("The provider failed. " + then, **ids)
