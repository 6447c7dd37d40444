"""A payment's attempt started on its rail, and the rail's answer applied (create, confirm, routing).

Rails that answer in the process (cash, the sandbox: `Capabilities.in_process`) answer inside the
transaction that starts them, so a crash before its commit leaves no trace anywhere. For a new
payment their answer is known before anything is written (`Capabilities.answer`): the payment is
inserted once, already answered, in the single statement of its commit (an insert and then an
UPDATE of the same row cost PostgreSQL every index twice), and the rail is told once the payment
exists (`tell`), so a retry of the key never reaches it. Every other rail is called after the
payment's row has committed, and its answer applied under the row's lock (`apply_answer`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from gateway.db.database import Database, Tx
from gateway.payments import repository, state
from gateway.payments.drafts import Confirmation, attempt_row, next_attempt_row
from gateway.payments.models import Payment
from gateway.payments.rails import rail_request
from gateway.providers.base import PaymentProvider, PaymentResult, ProviderFailure

log = structlog.get_logger("gateway.payments")

Outcome = PaymentResult | ProviderFailure


def apply_outcome(tx: Tx, payment: Payment, outcome: Outcome) -> ProviderFailure | None:
    """An in-process rail's answer applied in `tx`: called within it (`start_in_tx`), or foretold
    for a payment being inserted (its changes then go into the insert)."""
    if isinstance(outcome, ProviderFailure):
        payment.provider_lease_until = None
        repository.save(tx, payment, {"provider_lease_until": None})
        return outcome
    state.apply_result(tx, payment, outcome, source="api")
    return None


async def start_in_tx(
    tx: Tx, provider: PaymentProvider, payment: Payment, return_to: str | None = None
) -> ProviderFailure | None:
    """An in-process rail (cash, the sandbox) called and answered inside the transaction."""
    try:
        outcome: Outcome = await provider.create_payment(rail_request(payment, return_to))
    except ProviderFailure as e:
        outcome = e
    return apply_outcome(tx, payment, outcome)


def foretell(provider: PaymentProvider, payment: Payment) -> Outcome:
    """What an in-process rail will answer for a payment not written yet (`Capabilities.answer`)."""
    answer = provider.capabilities.answer
    assert answer is not None, provider.name
    try:
        return answer(rail_request(payment))
    except ProviderFailure as e:
        return e


async def tell(db: Database, provider: PaymentProvider, payment: Payment, outcome: Outcome) -> Payment:
    """The in-process rail called for the payment it answered for, now that the payment exists (a
    call like any, counted and timed). It answers the same; were it ever to answer otherwise, that
    answer is applied under the row's lock like any provider's."""
    try:
        result = await provider.create_payment(rail_request(payment))
    except ProviderFailure as e:
        if not isinstance(outcome, ProviderFailure):
            log.warning("in_process_answer_changed", payment_id=payment.id, error=type(e).__name__)
        return payment
    if result == outcome:
        return payment
    log.warning("in_process_answer_changed", payment_id=payment.id, status=result.status)
    return await apply_answer(db, payment.id, result)


async def apply_answer(db: Database, payment_id: str, result: PaymentResult) -> Payment:
    """A provider's answer to a start, applied to the payment under its row lock."""
    async with db.transaction() as tx:
        payment = await repository.lock(tx, payment_id)
        assert payment is not None
        state.apply_result(tx, payment, result, source="api")
        return payment


async def begin_attempt(
    tx: Tx,
    payment: Payment,
    provider: PaymentProvider,
    account_id: str | None,
    confirmation: Confirmation,
    *,
    phone: str | None,
    email: str | None,
    lease: timedelta,
) -> int:
    """A confirm's new attempt on `provider`, recorded on the locked payment (its number returned): the
    attempt's row, and the payment moved onto the rail through the state machine."""
    now = datetime.now(UTC)
    if payment.attempt == 0 and payment.provider is not None:
        # Created with its rail: that was attempt 1; it is recorded now, before the retry.
        await repository.insert_attempt(tx, attempt_row(payment, 1, payment.created_at))
        payment.attempt = 1
    number = payment.attempt + 1
    changed: dict[str, Any] = {
        "provider": provider.name,
        "payment_method": confirmation.payment_method,
        "provider_account_id": account_id,
        "customer_phone": phone,
        "customer_email": email,
        "provider_reference": None,
        "provider_receipt": None,
        "provider_private": None,
        "payment_method_details": None,
        "attempt": number,
        "cash_session": confirmation.cash_session,
        "attempted_at": now,
        "provider_lease_until": now + lease,
        "next_reconcile_at": now + timedelta(seconds=provider.capabilities.reconcile_after_seconds),
        "reconcile_attempts": 0,
    }
    await repository.insert_attempt(
        tx,
        next_attempt_row(payment.id, number, provider.name, confirmation.payment_method, account_id, now),
    )
    state.start_attempt(tx, payment, changed, source="api")
    return number
