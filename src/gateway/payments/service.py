"""Payments: create, confirm, read, list, cancel and sync, over the provider registry and the state
machine (answers.py renders them, sync.py asks providers, rails.py checks and addresses a rail)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from gateway.db.database import Conflict, Database
from gateway.errors import (
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    NotFound,
    PaymentLinkInactive,
    PaymentNotCancelable,
    ProviderNotConfigured,
    ProviderUnknown,
)
from gateway.events import repository as event_log
from gateway.events.models import Event
from gateway.kit.pagination import Page
from gateway.merchants.service import Principal
from gateway.payments import repository, state
from gateway.payments.answers import Rendered, provider_error, render_payment
from gateway.payments.cash_sessions import ensure_open, hold_named, only_for_cash
from gateway.payments.drafts import (
    MERCHANT_ONLY,
    Confirmation,
    checked_email,
    checked_phone,
    confirmable,
    new_row,
)
from gateway.payments.models import Payment, PaymentAttempt
from gateway.payments.rails import check_rail, payment_ref, rail_request
from gateway.payments.requests import PaymentCreate, PaymentFilters
from gateway.payments.routed import Routing, resumable
from gateway.payments.schemas import payment_view
from gateway.payments.secrets import client_secret_matches
from gateway.payments.starts import (
    apply_answer,
    apply_outcome,
    begin_attempt,
    foretell,
    start_in_tx,
    tell,
)
from gateway.payments.sync import sync_payment
from gateway.provider_accounts.directory import Providers
from gateway.providers.base import (
    PaymentProvider,
    ProviderFailure,
)
from gateway.providers.catalog import ACCOUNT_PROVIDERS
from gateway.routing_rules.service import AUTO

log = structlog.get_logger("gateway.payments")


class PaymentService:
    def __init__(self, db: Database, registry: Providers, provider_timeout_seconds: float):
        self.db = db
        self.registry = registry
        self.lease = timedelta(seconds=provider_timeout_seconds * 2)
        self.routing = Routing(db, registry, self.lease)

    async def _provider(self, payment: Payment) -> PaymentProvider:
        """The adapter of an existing payment: through the account it was made with."""
        try:
            provider = await self.registry.for_payment(payment.provider, payment.provider_account_id)
        except ProviderFailure as e:  # the account's credentials cannot be opened
            raise provider_error(e, payment, then="Nothing was sent to the provider.") from e
        if provider is None:
            raise ProviderUnknown(f"No provider named {payment.provider!r}.", param="provider")
        return provider

    async def _rail(
        self,
        principal: Principal,
        name: str,
        *,
        amount: int,
        currency: str,
        phone: str | None,
        payment_method: str | None,
    ) -> tuple[PaymentProvider, str | None]:
        """The adapter (and the merchant's account) a rail is started through, once the request is
        one it can take: the same checks for a create with a provider and a confirm."""
        provider, account_id = await self.registry.for_new_payment(
            principal.merchant_id, name, principal.livemode
        )
        check_rail(
            provider,
            amount=amount,
            currency=currency,
            phone=phone,
            payment_method=payment_method,
            livemode=principal.livemode,
        )
        return provider, account_id

    async def _start(
        self, provider: PaymentProvider, payment: Payment, return_to: str | None = None
    ) -> Payment:
        """Calls the provider for a committed, leased payment and applies its answer. The row is
        committed before the provider hears of it: a crash from here on leaves a row to resume (a
        retry with the same key, or the reconciler)."""
        try:
            result = await provider.create_payment(rail_request(payment, return_to))
        except ProviderFailure as e:
            async with self.db.transaction() as tx:
                await repository.release_provider_lease(tx, payment.id)
            raise provider_error(e, payment) from e
        return await apply_answer(self.db, payment.id, result)

    async def create(
        self,
        principal: Principal,
        body: PaymentCreate,
        *,
        idempotency_key: str,
        fingerprint: str,
        request_id: str | None,
        payment_link_id: str | None = None,
    ) -> Rendered:
        """`payment_link_id`: the payment link it is made for (create_for_link), never from the API.
        A routed payment (provider `auto`, or none from a merchant with rules) goes through
        `self.routing` (payments/routed.py); a payment link's payment always waits for its confirm."""
        only_for_cash(body.provider, body.cash_session)
        if body.provider == AUTO or (body.provider is None and payment_link_id is None):
            plan = await self.routing.plan(principal, body)
            if plan is not None:
                return await self.routing.create(
                    principal,
                    body,
                    plan,
                    idempotency_key=idempotency_key,
                    fingerprint=fingerprint,
                    request_id=request_id,
                    resume=lambda: self._resume(principal, idempotency_key, fingerprint),
                )
        provider: PaymentProvider | None = None
        account_id: str | None = None
        if body.provider is not None:
            provider, account_id = await self._rail(
                principal,
                body.provider,
                amount=body.amount,
                currency=body.currency,
                phone=body.customer.phone if body.customer else None,
                payment_method=body.payment_method,
            )
        row = new_row(principal, body, idempotency_key, fingerprint, provider, self.lease, account_id)
        row.payment_link_id = payment_link_id

        # A rail that answers in the process is asked first, so the payment is written once, answered.
        foretold = provider is not None and provider.capabilities.answer is not None and not body.cash_session
        outcome = foretell(provider, row) if provider is not None and foretold else None
        failure: ProviderFailure | None = None
        payment: Payment | None
        try:
            async with self.db.transaction() as tx:
                # The session is locked before the insert; judged open only for a new payment (a
                # retry of one already taken into it is answered as such, closed or not).
                held = await hold_named(
                    tx, principal.merchant_id, principal.livemode, body.cash_session, body.currency
                )
                if held is None:  # with the commit: the whole create is one statement
                    payment = repository.insert_at_commit(tx, row)
                else:
                    payment = await repository.insert(tx, row)
                if payment is not None:
                    ensure_open(held)
                    state.record_created(tx, payment, source="api")
                    if outcome is not None:
                        failure = apply_outcome(tx, payment, outcome)
                    elif provider is not None and provider.capabilities.in_process:
                        failure = await start_in_tx(tx, provider, payment)
        except Conflict as e:  # another request with this key got in first: nothing was written
            if e.constraint != repository.KEY_TAKEN:
                raise
            payment, failure = None, None
        if payment is not None and (provider is None or provider.capabilities.in_process):
            if provider is not None and outcome is not None:
                payment = await tell(self.db, provider, payment, outcome)
            if failure is not None:
                raise provider_error(failure, payment) from failure
            return render_payment(payment, request_id, created=True, client_secret=True)
        if payment is None:
            payment = await self._resume(principal, idempotency_key, fingerprint)
            if not resumable(payment) or payment.routing is not None:
                return render_payment(payment, request_id, created=True, replayed=True, client_secret=True)
        assert provider is not None  # a payment without a rail is never pending
        return render_payment(
            await self._start(provider, payment), request_id, created=True, client_secret=True
        )

    async def create_for_link(
        self,
        principal: Principal,
        link_id: str,
        *,
        amount: int,
        currency: str,
        description: str | None,
        idempotency_key: str,
    ) -> Payment:
        """A payment for a payment link's visitor (gateway.payment_links): the create path without a
        provider (requires_payment_method), with `payment_link_id` set. The key is the caller's, new
        per payment."""
        body = PaymentCreate(amount=amount, currency=currency, description=description)
        await self.create(
            principal,
            body,
            idempotency_key=idempotency_key,
            fingerprint=f"payment_link:{link_id}",
            request_id=None,
            payment_link_id=link_id,
        )
        payment = await repository.find_by_key(self.db, principal.merchant_id, idempotency_key)
        assert payment is not None
        return payment

    async def confirm(
        self, principal: Principal, payment_id: str, client_secret: str | None, confirmation: Confirmation
    ) -> Payment:
        """Chooses the payment's rail and starts it as a create with that provider would: the same
        checks (422s), the same account routing, lease and provider call, its answer applied through
        the state machine. Each confirm is an attempt (payment_attempts); a payment that left
        requires_payment_method is 409 payment_already_confirmed, unless it failed and the merchant
        allows retries: then a new attempt, which the provider knows under a key of its own."""
        payment = await self.get_with_secret(principal, payment_id, client_secret)
        confirmable(payment)
        if principal.key_type == "publishable" and confirmation.provider in MERCHANT_ONLY:
            raise ProviderNotConfigured(
                f"{confirmation.provider} payments are recorded by the merchant, not confirmed by the "
                "customer.",
                param="provider",
            )
        only_for_cash(confirmation.provider, confirmation.cash_session)
        phone = checked_phone(confirmation.phone) if confirmation.phone else payment.customer_phone
        email = checked_email(confirmation.email) if confirmation.email else payment.customer_email
        provider, account_id = await self._rail(
            principal,
            confirmation.provider,
            amount=payment.amount,
            currency=payment.currency,
            phone=phone,
            payment_method=confirmation.payment_method,
        )
        failure: ProviderFailure | None = None
        async with self.db.transaction() as tx:
            locked = await repository.lock(tx, payment.id)
            assert locked is not None
            payment = locked
            confirmable(payment)  # another confirm may have won the row meanwhile
            held = await hold_named(
                tx, payment.merchant_id, payment.livemode, confirmation.cash_session, payment.currency
            )
            ensure_open(held)
            if payment.payment_link_id is not None and await repository.single_use_link_taken(
                tx, payment.payment_link_id, payment.id
            ):
                raise PaymentLinkInactive(
                    "This single-use payment link is already paid, or being paid by another customer."
                )
            number = await begin_attempt(
                tx, payment, provider, account_id, confirmation, phone=phone, email=email, lease=self.lease
            )
            log.info("payment_confirmed", payment_id=payment.id, provider=provider.name, attempt=number)
            if provider.capabilities.in_process:
                failure = await start_in_tx(tx, provider, payment, confirmation.return_to)
        if provider.capabilities.in_process:
            if failure is not None:
                raise provider_error(failure, payment) from failure
            return payment
        return await self._start(provider, payment, confirmation.return_to)

    async def methods(self, merchant_id: str, livemode: bool, currency: str) -> list[str]:
        """The providers this merchant can be paid through by a customer, for that currency and mode:
        its own active accounts (or the deployment's, where accounts are shared); the sandbox only in
        test mode; cash only where the merchant has a cash account in that mode (the customer then
        pays in person and the merchant records it: a customer never confirms cash)."""
        found: list[str] = []
        for name in self.registry.names():
            provider = self.registry.get(name)
            if provider is None or currency not in provider.capabilities.currencies:
                continue
            if name in MERCHANT_ONLY:
                if await self.registry.active_account(merchant_id, name, livemode) is not None:
                    found.append(name)
                continue
            account_id = (
                await self.registry.active_account(merchant_id, name, livemode)
                if name in ACCOUNT_PROVIDERS
                else None
            )
            if self.registry.configured(name, livemode, account_id):
                found.append(name)
        # The rails that pay at once first; cash (in person) and the sandbox (test) last.
        return sorted(found, key=lambda name: name in ("cash", "sandbox"))

    async def attempts(self, principal: Principal, payment_id: str) -> list[PaymentAttempt]:
        await self.get(principal, payment_id)
        return await repository.list_attempts(self.db, payment_id)

    async def _resume(self, principal: Principal, key: str, fingerprint: str) -> Payment:
        """A retry of a key whose payment exists: its payment, leased to this request if still pending."""
        async with self.db.transaction() as tx:
            payment = await repository.find_by_key(tx, principal.merchant_id, key)
            assert payment is not None  # the conflicting row is committed, or we would not have conflicted
            if payment.request_fingerprint != fingerprint:
                raise IdempotencyKeyReused(
                    "This Idempotency-Key was already used with a different request; use a new key."
                )
            if not resumable(payment):
                return payment  # settled, or since confirmed: the confirm's own path owns its rail
            # A retry of a request that never heard back from the provider: resume it, once at a time.
            if not await repository.claim_provider_lease(tx, payment.id, datetime.now(UTC) + self.lease):
                raise IdempotencyKeyInUse(
                    "This payment is being sent to the provider by another request; retry shortly.",
                    headers={"Retry-After": "1"},
                )
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

    async def view(self, principal: Principal, payment_id: str) -> dict[str, Any]:
        """The payment as a secret or restricted key sees it (payment_json, its client secret shown),
        read and rendered from only the columns the answer shows."""
        record = await repository.get_shown(self.db, principal.merchant_id, principal.livemode, payment_id)
        if record is None:
            raise NotFound(f"No such payment: {payment_id!r}", param="id")
        return payment_view(record, client_secret=True)

    async def list(
        self, principal: Principal, filters: PaymentFilters, page: Page
    ) -> tuple[list[dict[str, Any]], bool]:
        """A page of payments, each as `view` shows it."""
        records, has_more = await repository.list_payments(
            self.db, principal.merchant_id, principal.livemode, filters, page
        )
        return [payment_view(r, client_secret=True) for r in records], has_more

    async def events(self, principal: Principal, payment_id: str, page: Page) -> tuple[Sequence[Event], bool]:
        await self.get(principal, payment_id)
        return await event_log.list_for_payment(self.db, principal.merchant_id, payment_id, page)

    async def cancel(self, principal: Principal, payment_id: str) -> Payment:
        payment = await self.get(principal, payment_id)
        if payment.status not in state.CANCELABLE:
            raise PaymentNotCancelable(
                f"A payment with status {payment.status!r} cannot be canceled.", status_now=payment.status
            )
        if payment.provider is None:  # no rail yet: nothing to tell any provider
            async with self.db.transaction() as tx:
                locked = await repository.lock(tx, payment.id)
                assert locked is not None
                state.move(tx, locked, state.S.CANCELED, source="api")
            if locked.status != state.S.CANCELED:
                raise PaymentNotCancelable(
                    f"A payment with status {locked.status!r} cannot be canceled.", status_now=locked.status
                )
            return locked
        provider = await self._provider(payment)
        if not provider.capabilities.cancel:
            raise PaymentNotCancelable(f"{payment.provider} payments cannot be canceled.")
        try:  # no transaction (or row lock) held across the provider call
            result = await provider.cancel_payment(payment_ref(payment))
        except ProviderFailure as e:
            raise provider_error(e, payment) from e
        payment = await apply_answer(self.db, payment.id, result)
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
