"""Asking a provider where a payment stands: the API's sync, unsigned callbacks and the reconciler."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.db.database import Database
from gateway.payments import repository, state
from gateway.payments.models import Payment
from gateway.payments.rails import payment_ref, started_at
from gateway.provider_accounts.directory import Providers


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
            and started_at(payment) + timedelta(seconds=ttl) <= datetime.now(UTC)
        ):
            # The provider, just asked, still waits for the customer, and the customer's time is up.
            state.move(tx, payment, state.S.EXPIRED, source=source)
    return payment
