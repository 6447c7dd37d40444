"""Payouts: money going out through a rail, sent to the provider at most once, within the limits.

The order that makes "at most once" hold (docs/architecture.md):
1. one transaction checks the limits (the day's total row locked by its upsert), inserts the payout
   (pending, submitted_at NULL) and appends payout.created; it commits;
2. one statement claims the submission (submitted_at = now() where it is NULL) and commits;
3. the provider is called, with no transaction open: whatever happens now (a crash, a timeout, a lost
   answer), submitted_at is set and nothing ever sends this payout again;
4. the answer is applied through the state machine. No answer: the payout stays pending and the
   reconciler asks fetch_payout later.
A request that died between 1 and 2 left a payout never sent: a retry with its Idempotency-Key sends
it (2-4), the merchant may cancel it, and the reconciler cancels it after a while.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import structlog

from gateway.db.database import Database, Tx
from gateway.errors import (
    CurrencyNotSupported,
    IdempotencyKeyReused,
    InvalidDestination,
    InvalidRequest,
    NotFound,
    PayoutLimitExceeded,
    PayoutNotCancelable,
    PayoutsNotSupported,
    ProviderMisconfiguredError,
    ProviderNotConfigured,
)
from gateway.kit.ids import new_id
from gateway.kit.money import format_amount
from gateway.kit.pagination import Page
from gateway.merchants.service import Principal
from gateway.payouts import limits, repository, state
from gateway.payouts.models import Payout
from gateway.payouts.schemas import PayoutCreate, PayoutFilters, destination_of
from gateway.provider_accounts.directory import Providers
from gateway.providers.base import ProviderFailure, ProviderMisconfigured
from gateway.providers.payouts import (
    PayoutProvider,
    PayoutRef,
    PayoutRequest,
    PayoutResult,
    PayoutUpdate,
    payout_failed,
)
from gateway.settings import PayoutSettings

log = structlog.get_logger("gateway.payouts")


class _Raced(Exception):
    """Another request with the same Idempotency-Key inserted first: roll this one back."""


class PayoutService:
    def __init__(self, db: Database, registry: Providers, settings: PayoutSettings):
        self.db = db
        self.registry = registry
        self.settings = settings

    # --- create --------------------------------------------------------------------------------

    async def create(
        self, principal: Principal, body: PayoutCreate, *, idempotency_key: str, fingerprint: str
    ) -> tuple[Payout, bool]:
        """The payout, and whether the answer repeats an earlier request's (found in PostgreSQL)."""
        existing = await repository.find_by_key(self.db, principal.merchant_id, idempotency_key)
        if existing is not None:
            return await self._retry(existing, fingerprint)
        provider, account_id = await self._rail(principal, body)
        try:
            payout = await self.prepare(principal, body, provider, account_id, idempotency_key, fingerprint)
        except _Raced:
            raced = await repository.find_by_key(self.db, principal.merchant_id, idempotency_key)
            assert raced is not None
            return await self._retry(raced, fingerprint)
        return await self.submit(payout, provider), False

    async def _rail(self, principal: Principal, body: PayoutCreate) -> tuple[PayoutProvider, str | None]:
        """The rail's payout side; refuses (422) what it cannot pay, before anything is stored or sent."""
        provider, account_id = await self.registry.for_new_payout(
            principal.merchant_id, body.provider, principal.livemode
        )
        if provider is None:
            raise PayoutsNotSupported(f"{body.provider} cannot pay out.", param="provider")
        if not provider.payouts_configured(principal.livemode):  # the merchant's account's, or ours
            mode = "live" if principal.livemode else "test"
            whose = "Your provider account has" if account_id else f"The {provider.name} provider has"
            raise ProviderNotConfigured(f"{whose} no {mode}-mode payout credentials.", param="provider")
        caps = provider.payout_capabilities
        if body.currency not in caps.currencies:
            raise CurrencyNotSupported(
                f"{provider.name} does not pay out {body.currency}.",
                param="currency",
                supported=sorted(caps.currencies),
            )
        destination = destination_of(body.destination.stored())
        if destination.type not in caps.destination_types:
            raise _invalid_destination(
                f"{provider.name} pays out to {', '.join(sorted(caps.destination_types))} only.", "type"
            )
        if body.amount % caps.amount_multiple_of:
            step = format_amount(caps.amount_multiple_of, body.currency)
            raise InvalidRequest(
                f"{provider.name} pays out only multiples of {step}.",
                errors=[
                    {
                        "loc": ["body", "amount"],
                        "type": "amount_not_supported",
                        "msg": f"must be a multiple of {caps.amount_multiple_of} ({step})",
                    }
                ],
            )
        if caps.check_destination is not None:
            problem = caps.check_destination(destination, body.currency, principal.livemode)
            if problem is not None:
                raise _invalid_destination(problem[1], "phone" if destination.phone else "account_number")
        return provider, account_id

    async def prepare(
        self,
        principal: Principal,
        body: PayoutCreate,
        provider: PayoutProvider,
        account_id: str | None,
        key: str,
        fingerprint: str,
    ) -> Payout:
        """Step 1: the limits and the insert in one transaction, committed; nothing sent yet."""
        now = datetime.now(UTC)
        async with self.db.transaction() as tx:
            await self._within_limits(tx, principal, body.currency, body.amount, now)
            payout = await repository.insert(
                tx,
                Payout(
                    id=new_id("po"),
                    merchant_id=principal.merchant_id,
                    livemode=principal.livemode,
                    amount=body.amount,
                    currency=body.currency,
                    provider=provider.name,
                    provider_account_id=account_id,
                    destination=body.destination.stored(),
                    reference=body.reference,
                    metadata_=body.metadata,
                    status=state.PENDING,
                    failure_code=None,
                    failure_message=None,
                    provider_reference=None,
                    submitted_at=None,
                    idempotency_key=key,
                    request_fingerprint=fingerprint,
                    next_reconcile_at=None,
                    reconcile_attempts=0,
                    created_at=now,
                    updated_at=now,
                    completed_at=None,
                ),
            )
            if payout is None:
                raise _Raced  # rolls back the day's total too
            state.record_created(tx, payout, source="api")
        return payout

    async def _within_limits(
        self, tx: Tx, principal: Principal, currency: str, amount: int, now: datetime
    ) -> None:
        held = await limits.for_payout(tx, self.settings, principal.merchant_id, principal.livemode, currency)
        per_payout, per_day = held.per_payout.amount, held.per_day.amount
        if per_payout is not None and amount > per_payout:
            raise PayoutLimitExceeded(
                f"A payout may be at most {format_amount(per_payout, currency)}.",
                param="amount",
                limit="per_payout",
                limit_amount=per_payout,
                currency=currency,
            )
        day = repository.utc_day(now)
        if per_day is not None and amount > per_day:
            added = None
        else:
            added = await repository.add_to_day(
                tx, principal.merchant_id, principal.livemode, currency, day, amount, per_day
            )
        if added is None:
            assert per_day is not None
            used = await repository.day_total(tx, principal.merchant_id, principal.livemode, currency, day)
            remaining = max(per_day - used, 0)
            raise PayoutLimitExceeded(
                f"Payouts may total at most {format_amount(per_day, currency)} per UTC day; "
                f"{format_amount(remaining, currency)} is left today.",
                param="amount",
                limit="per_day",
                limit_amount=per_day,
                remaining=remaining,
                currency=currency,
            )

    async def submit(self, payout: Payout, provider: PayoutProvider) -> Payout:
        """Steps 2-4: claim the submission (committed), call the provider once, apply its answer."""
        reconcile_at = datetime.now(UTC) + timedelta(
            seconds=provider.payout_capabilities.reconcile_after_seconds
        )
        claimed = await repository.claim_submission(self.db, payout.id, reconcile_at)
        if claimed is None:  # submitted by another request, or canceled: never sent twice
            current = await repository.get(self.db, payout.merchant_id, payout.livemode, payout.id)
            assert current is not None
            return current
        try:
            result = await provider.create_payout(payout_request(claimed))
        except ProviderMisconfigured as e:
            # The provider refused our credentials or configuration: nothing was created there.
            log.error("payout_provider_misconfigured", payout_id=payout.id, error=str(e))
            result = payout_failed(
                "provider_misconfigured", "The provider rejected the gateway's configuration."
            )
        except ProviderFailure as e:
            # No answer: the payout may exist at the provider. It stays pending for the reconciler
            # (fetch_payout); it is never sent again.
            log.warning("payout_answer_lost", payout_id=payout.id, error=type(e).__name__)
            return claimed
        async with self.db.transaction() as tx:
            locked = await repository.lock(tx, payout.id)
            assert locked is not None
            state.apply_result(tx, locked, result, source="api")
        return locked

    async def _retry(self, payout: Payout, fingerprint: str) -> tuple[Payout, bool]:
        if payout.request_fingerprint != fingerprint:
            raise IdempotencyKeyReused(
                "This Idempotency-Key was already used with a different request; use a new key."
            )
        if payout.status == state.PENDING and payout.submitted_at is None:
            # Its first request died before sending it: send it now (the claim keeps it to once).
            provider = await self._payout_provider(payout)
            return await self.submit(payout, provider), False
        return payout, True

    async def _payout_provider(self, payout: Payout) -> PayoutProvider:
        try:
            provider = await self.registry.for_payout(payout.provider, payout.provider_account_id)
        except ProviderMisconfigured as e:
            raise ProviderMisconfiguredError(
                "The payout's provider account cannot be opened right now; nothing was sent."
            ) from e
        if provider is None:
            raise PayoutsNotSupported(f"{payout.provider} cannot pay out.", param="provider")
        return provider

    # --- read, list, cancel -----------------------------------------------------------------------

    async def get(self, principal: Principal, payout_id: str) -> Payout:
        payout = await repository.get(self.db, principal.merchant_id, principal.livemode, payout_id)
        if payout is None:
            raise NotFound(f"No such payout: {payout_id!r}", param="id")
        return payout

    async def list(
        self, principal: Principal, filters: PayoutFilters, page: Page
    ) -> tuple[Sequence[Payout], bool]:
        return await repository.list_payouts(
            self.db, principal.merchant_id, principal.livemode, filters, page
        )

    async def cancel(self, principal: Principal, payout_id: str) -> Payout:
        async with self.db.transaction() as tx:
            payout = await repository.lock(tx, payout_id)
            if (
                payout is None
                or payout.merchant_id != principal.merchant_id
                or payout.livemode != principal.livemode
            ):
                raise NotFound(f"No such payout: {payout_id!r}", param="id")
            if payout.status == state.CANCELED:
                return payout  # a repeated cancel
            if not state.cancel(tx, payout, source="api"):
                raise PayoutNotCancelable(
                    f"A payout with status {payout.status!r} that was submitted to its provider can no "
                    "longer be canceled.",
                    status_now=payout.status,
                )
        return payout

    # --- what the reconciler and inbound webhooks ask ------------------------------------------

    async def reconcile(self, payout_id: str, *, source: str = "reconciler") -> Payout | None:
        """Asks the provider about a submitted pending payout and applies the answer; never sends it."""
        async with self.db.transaction() as tx:
            payout = await repository.lock(tx, payout_id)
        if payout is None or payout.status != state.PENDING or payout.submitted_at is None:
            return payout
        provider = await self.registry.for_payout(payout.provider, payout.provider_account_id)
        if provider is None or not provider.payout_capabilities.status_query:
            return payout  # only a callback settles it
        # No transaction (or row lock) held across the provider call.
        result = await provider.fetch_payout(payout_ref(payout))
        async with self.db.transaction() as tx:
            locked = await repository.lock(tx, payout_id)
            assert locked is not None
            state.apply_result(tx, locked, result, source=source)
        return locked

    async def cancel_unsubmitted(self, older_than_seconds: float, limit: int) -> int:
        """Cancels payouts whose request died before they were sent (none was ever sent)."""
        cutoff = datetime.now(UTC) - timedelta(seconds=older_than_seconds)
        async with self.db.transaction() as tx:
            stale = await repository.lock_unsubmitted_before(tx, cutoff, limit)
            for payout in stale:
                state.cancel(tx, payout, source="reconciler")
        return len(stale)


def _invalid_destination(message: str, field: str) -> InvalidDestination:
    return InvalidDestination(
        message,
        errors=[{"loc": ["body", "destination", field], "type": "invalid_destination", "msg": message}],
    )


def payout_request(p: Payout) -> PayoutRequest:
    return PayoutRequest(
        payout_id=p.id,
        amount=p.amount,
        currency=p.currency,
        destination=destination_of(p.destination),
        livemode=p.livemode,
        created_at=p.created_at,
        reference=p.reference,
        metadata=p.metadata_,
    )


def payout_ref(p: Payout) -> PayoutRef:
    return PayoutRef(
        payout_id=p.id,
        provider_reference=p.provider_reference,
        amount=p.amount,
        currency=p.currency,
        destination=destination_of(p.destination),
        livemode=p.livemode,
        created_at=p.created_at,
        submitted_at=p.submitted_at,
    )


async def apply_update(
    tx: Tx, provider: PayoutProvider | None, provider_name: str, account_id: str, update: PayoutUpdate
) -> str:
    """A provider's verified notification about a payout, applied in `tx`; its outcome. Where the
    callback proves nothing (query_before_acting), the provider's answer to fetch_payout is applied
    instead, asked before the payout's row is locked."""
    result: PayoutResult = update.result
    ids = (provider_name, account_id, update.payout_id, update.provider_reference)
    if provider is not None and provider.payout_capabilities.query_before_acting:
        seen = await repository.for_provider(tx, *ids, lock=False)
        if seen is None:
            return "unmatched"
        if seen.status != state.PENDING or seen.submitted_at is None:
            return "no_change"
        result = await provider.fetch_payout(payout_ref(seen))
    payout = await repository.for_provider(tx, *ids)
    if payout is None:
        return "unmatched"
    structlog.contextvars.bind_contextvars(payout_id=payout.id)
    moved = state.apply_result(tx, payout, result, source="webhook")
    return "processed" if moved else "no_change"
