"""Inbound provider webhooks: verify, store once, acknowledge; then process (safe to run twice)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from gateway import metrics
from gateway.db.database import Changed, Conflict, Database, Tx
from gateway.errors import NotFound, ServiceUnavailable, WebhookMalformed, WebhookSignatureInvalid
from gateway.outages import OUTAGE_RETRY_AFTER
from gateway.payments import repository as payments
from gateway.payments import state
from gateway.payments.models import PAYMENTS, Payment
from gateway.payments.rails import is_current, names_attempt, split_attempt_key
from gateway.payments.sync import sync_payment
from gateway.payouts.service import apply_update as apply_payout_update
from gateway.provider_accounts.directory import Providers
from gateway.providers.base import (
    PaymentProvider,
    ProviderFailure,
    WebhookEvent,
    WebhookPayloadError,
    WebhookVerificationError,
    remote_verifier,
)
from gateway.providers.payouts import payout_side
from gateway.refunds import repository as refunds
from gateway.refunds.service import apply_refund_result
from gateway.webhooks.inbound import repository as inbox

log = structlog.get_logger("gateway.webhooks.inbound")


async def receive(
    db: Database,
    registry: Providers,
    provider_name: str,
    headers: Mapping[str, str],
    body: bytes,
    account_id: str | None = None,
) -> tuple[list[str], bytes]:
    """Verifies (with the account's own secrets where the URL names a merchant's account) and stores;
    returns the ids of newly stored events (duplicates are dropped here) and the acknowledgement body
    the provider expects."""
    if account_id is None:
        provider = registry.get(provider_name)
    else:
        provider = await registry.for_webhook(provider_name, account_id)
    if provider is None:
        raise NotFound(
            f"No provider named {provider_name!r}" + (f" with account {account_id!r}." if account_id else ".")
        )
    try:
        if (remote := remote_verifier(provider)) is not None:
            events = await remote.verify_webhook_async(headers, body)
        else:
            events = provider.verify_webhook(headers, body)
    except ProviderFailure as e:
        # The provider that must vouch for the delivery could not be asked: nothing is stored, and
        # the 503 makes it send the delivery again later.
        log.warning("webhook_unverifiable", provider=provider_name, reason=str(e))
        metrics.webhook_received(provider_name, "unverifiable")
        raise ServiceUnavailable(
            f"{provider_name} could not be asked to verify the webhook; send it again later.",
            headers={"Retry-After": OUTAGE_RETRY_AFTER},
        ) from e
    except WebhookVerificationError as e:
        log.warning("webhook_rejected", provider=provider_name, reason=str(e))
        metrics.webhook_received(provider_name, "rejected")
        raise WebhookSignatureInvalid("The webhook's signature could not be verified.") from e
    except WebhookPayloadError as e:
        log.warning("webhook_malformed", provider=provider_name, reason=str(e))
        metrics.webhook_received(provider_name, "malformed")
        raise WebhookMalformed(str(e)) from e
    account = account_id or ""
    check = provider.capabilities.check_notification
    if check is not None and not await _proven(db, Source(provider_name, account), events, check):
        log.warning("webhook_rejected", provider=provider_name, reason="notification secret differs")
        metrics.webhook_received(provider_name, "rejected")
        raise WebhookSignatureInvalid("The webhook's signature could not be verified.")
    if not provider.capabilities.query_before_acting:
        try:
            outcomes = await _store_and_apply(db, provider, provider_name, account, events)
        except Exception:
            # Stored and processed the usual way below: acknowledged, then retried in the background
            # and by the sweeper (a failure of the inline attempt has rolled back, so nothing half done).
            log.exception("webhook_inline_processing_failed", provider=provider_name)
        else:
            applied = [o for o in outcomes if o is not None]
            metrics.webhook_received(provider_name, "accepted", len(applied))
            metrics.webhook_received(provider_name, "duplicate", len(events) - len(applied))
            for outcome in applied:
                metrics.webhook_processed(provider_name, outcome)  # committed
            return [], provider.capabilities.webhook_ack
    stored = []
    async with db.transaction() as tx:
        for event in events:
            inbox_id = await inbox.store(
                tx, provider_name, account, event.event_id, event.event_type, event.payload
            )
            if inbox_id is None:
                log.info("webhook_duplicate", provider=provider_name, event_id=event.event_id)
            else:
                stored.append(inbox_id)
    metrics.webhook_received(provider_name, "accepted", len(stored))
    metrics.webhook_received(provider_name, "duplicate", len(events) - len(stored))
    return stored, provider.capabilities.webhook_ack


async def _proven(
    db: Database,
    source: Source,
    events: list[WebhookEvent],
    check: Callable[[str | None, Mapping[str, Any] | None], bool],
) -> bool:
    """For providers whose notifications carry a secret they issued with the payment (Orange's
    notif_token): each event's secret against what the payment it names keeps. An event naming no
    payment of this account, or an attempt other than its current one, has nothing to be checked
    against, and fails: nothing unproven is stored."""
    for event in events:
        if event.payment_id is None:
            return False
        payment_id, _ = split_attempt_key(event.payment_id)
        found = await payments.private_at(db, payment_id, source.provider, source.account_id)
        if found is None:
            return False
        attempt, private = found
        if not check(event.proof, private if names_attempt(attempt, event.payment_id) else None):
            return False
    return True


async def _store_and_apply(
    db: Database, provider: PaymentProvider, provider_name: str, account_id: str, events: list[WebhookEvent]
) -> list[str | None]:
    """A notification that proves itself, stored and applied in one transaction before it is
    acknowledged: one commit instead of two, and no second read of what was just stored. The inbox
    row is inserted first (a concurrent duplicate waits on its unique key, then is dropped), marked
    processed with the outcome at the commit; a crash before the commit stores nothing and the
    provider, unanswered, sends it again. Returns each event's outcome, None for a duplicate."""
    source = Source(provider_name, account_id)
    if len(events) == 1:
        try:
            outcome = await _store_and_apply_unlocked(db, provider, source, events[0])
        except (Conflict, Changed) as e:
            # Stored already (a duplicate), or the payment moved meanwhile: nothing was written, and
            # the locking way below says which.
            log.info(
                "webhook_raced", provider=provider_name, event_id=events[0].event_id, why=type(e).__name__
            )
            outcome = None
        if outcome is not None:
            return [outcome]
    outcomes: list[str | None] = []
    async with db.transaction() as tx:
        for event in events:
            inbox_id = await inbox.store_processing(
                tx, provider_name, account_id, event.event_id, event.event_type, event.payload
            )
            if inbox_id is None:
                log.info("webhook_duplicate", provider=provider_name, event_id=event.event_id)
                outcomes.append(None)
                continue
            # Read from the stored payload, as the background processing reads it.
            outcome = await _apply(db, None, tx, provider, source, provider.interpret_webhook(event.payload))
            inbox.finish_at_commit(tx, inbox_id, outcome)
            outcomes.append(outcome)
    return outcomes


async def _store_and_apply_unlocked(
    db: Database, provider: PaymentProvider, source: Source, event: WebhookEvent
) -> str | None:
    """The usual notification, a payment's result naming the provider's reference, in two round trips
    (the unlocked read, then the commit's statement with the inbox row) where the locking way takes
    five; the commit fails whole (`Changed`) if the payment moved after the read, and (`Conflict`) if
    the event was stored already. None, with nothing written, for any other notification.

    Its statement takes the payment's row lock before the inbox's key, the locking way the other
    order: two copies of one event at once, after a third change of the payment, can deadlock.
    PostgreSQL then fails one (after deadlock_timeout): this one's is `Changed` (the locking way
    decides), the other's a failure of the inline attempt (`receive` stores it as a duplicate)."""
    interpreted = provider.interpret_webhook(event.payload)
    if (
        interpreted.result is None
        or interpreted.provider_reference is None
        or interpreted.payout is not None
        or interpreted.refund_result is not None
    ):
        return None
    async with db.transaction() as tx:
        found = await payments.read_by_provider_reference(
            tx, source.provider, source.account_id, interpreted.provider_reference
        )
        if found is None:  # by the id it names, or an earlier attempt's reference: the locking way
            return None
        payment, version = found
        tx.guard(PAYMENTS, payment.id, version)
        outcome = _applied(tx, payment, interpreted)
        inbox.store_at_commit(
            tx, source.provider, source.account_id, event.event_id, event.event_type, event.payload, outcome
        )
    return outcome


async def process(
    db: Database, registry: Providers, inbox_id: str, max_attempts: int | None = None
) -> str | None:
    """Applies one stored event; safe to run twice or concurrently. Returns the outcome, None if
    skipped (done, given up on after `max_attempts` (the sweeper's cap; None for a delivery as it
    arrives), or held by another worker)."""
    provider_name = "unknown"  # until the event is read (for the metrics of a failure before that)
    seen: int | None = None
    try:
        async with db.transaction() as tx:
            row = await inbox.claim(tx, inbox_id, max_attempts)
            if row is None:
                return None
            provider_name, seen = row.provider, row.attempts
            provider = await registry.for_payment(row.provider, row.account_id or None)
            if provider is None:
                raise WebhookPayloadError(f"provider {row.provider!r} is no longer registered")
            event = provider.interpret_webhook(row.payload)
            outcome = await _apply(db, registry, tx, provider, Source(row.provider, row.account_id), event)
            await inbox.finish(tx, inbox_id, outcome)
        metrics.webhook_processed(provider_name, outcome)  # committed
        return outcome
    except Exception as e:
        log.exception("webhook_processing_failed", inbox_id=inbox_id)
        metrics.webhook_processed(provider_name, "failed")
        await inbox.record_failure(db, inbox_id, f"{type(e).__name__}: {e}", seen)
        return "failed"


async def _apply(
    db: Database,
    registry: Providers | None,
    tx: Tx,
    provider: PaymentProvider,
    source: Source,
    event: WebhookEvent,
) -> str:
    """One event's effect, in `tx`; its outcome. `registry`: for a provider queried before acting."""
    if event.payout is not None:
        # A payout's notification: its own state machine (payouts/); queried first where it proves nothing.
        outcome = await apply_payout_update(
            tx, payout_side(provider), source.provider, source.account_id, event.payout
        )
    elif provider.capabilities.query_before_acting and event.result is not None:
        assert registry is not None
        outcome = await _confirm_by_query(db, registry, tx, source, event)
    elif event.refund_result is not None:
        outcome = await _apply_refund_event(tx, source, event)
    else:
        outcome = await _apply_payment_event(tx, source, event)
    if outcome == "unmatched":
        log.warning("webhook_unmatched", provider=source.provider, event_id=event.event_id)
    return outcome


@dataclass(frozen=True)
class Source:
    """Who sent a notification: a provider, through one account ('' for the deployment's). An account
    only ever speaks of payments made through it: one merchant's secret never moves another's money."""

    provider: str
    account_id: str

    def owns(self, payment: Payment) -> bool:
        return payment.provider == self.provider and (payment.provider_account_id or "") == self.account_id


STALE = "stale"  # the outcome of an answer about an earlier attempt of a payment: never applied


async def _payment_id(tx: Tx, source: Source, event: WebhookEvent) -> str | None:
    """Ours, found by the provider's reference where the event carries one, else the id it names
    (STALE when either names an earlier attempt than the payment's current one, see payments/rails.py)."""
    if event.provider_reference is not None:
        found = await payments.find_id_by_provider_reference(
            tx, source.provider, source.account_id, event.provider_reference
        )
        if found is not None:
            return found
        earlier = await payments.find_attempt_by_provider_reference(
            tx, source.provider, source.account_id, event.provider_reference
        )
        if earlier is not None:  # a reference the payment no longer holds: an earlier attempt's
            log.info("webhook_earlier_attempt", payment_id=earlier[0], attempt=earlier[1])
            return STALE
    return event.payment_id


async def _current(tx: Tx, matched: str) -> Payment | str | None:
    """The payment `matched` names, locked; STALE if the id the provider echoed is an earlier
    attempt's key (`pay_…_2` after a third attempt started, or the bare id after a retry)."""
    payment_id, _ = split_attempt_key(matched)
    payment = await payments.lock(tx, payment_id)
    if payment is not None and not is_current(payment, matched):
        log.info("webhook_earlier_attempt", payment_id=payment.id, key=matched, attempt=payment.attempt)
        return STALE
    return payment


async def _locate(tx: Tx, source: Source, event: WebhookEvent) -> Payment | str | None:
    """`_payment_id` then `_current`, with the lookup by the provider's reference and the lock in one
    statement: the payment, locked; STALE; or None."""
    if event.provider_reference is not None:
        found = await payments.lock_by_provider_reference(
            tx, source.provider, source.account_id, event.provider_reference
        )
        if found is not None:
            # The payment holds this reference now: its current attempt's (a new attempt starts with
            # none; an earlier one's is found below, in payment_attempts). Its bare id is no echoed key
            # to check: it would call every attempt after the first stale.
            return found
        earlier = await payments.find_attempt_by_provider_reference(
            tx, source.provider, source.account_id, event.provider_reference
        )
        if earlier is not None:  # a reference the payment no longer holds: an earlier attempt's
            log.info("webhook_earlier_attempt", payment_id=earlier[0], attempt=earlier[1])
            return STALE
    return await _current(tx, event.payment_id) if event.payment_id else None


async def _apply_payment_event(tx: Tx, source: Source, event: WebhookEvent) -> str:
    if event.result is None:
        return "ignored"
    payment = await _locate(tx, source, event)
    if isinstance(payment, str):
        return payment
    if payment is None or not source.owns(payment):
        return "unmatched"
    return _applied(tx, payment, event)


def _applied(tx: Tx, payment: Payment, event: WebhookEvent) -> str:
    """A payment's result applied to it, locked or guarded (`Tx.guard`); the outcome."""
    assert event.result is not None
    structlog.contextvars.bind_contextvars(payment_id=payment.id)
    moved = state.apply_result(tx, payment, event.result, source="webhook")
    return "processed" if moved else "no_change"


async def _confirm_by_query(
    db: Database, registry: Providers, tx: Tx, source: Source, event: WebhookEvent
) -> str:
    """A callback that proves nothing only says "look now": apply what the provider answers to a status
    query (about the payment's current attempt). A payment of another provider or account is not ours
    to ask about: unmatched, nothing is asked; a callback about an earlier attempt: stale, nothing asked."""
    matched = await _payment_id(tx, source, event)
    if matched == STALE:
        return STALE
    payment_id = split_attempt_key(matched)[0] if matched else None
    before = (
        await payments.status_at(tx, payment_id, source.provider, source.account_id) if payment_id else None
    )
    if payment_id is None or before is None:
        return "unmatched"
    # On connections of its own: sync_payment commits around the provider call.
    after = await sync_payment(db, registry, payment_id, source="webhook")
    return "processed" if after.status != before else "no_change"


async def _apply_refund_event(tx: Tx, source: Source, event: WebhookEvent) -> str:
    assert event.refund_result is not None
    refund_id = await refunds.find_id(tx, event.refund_id, event.refund_reference)
    locked = await refunds.lock_refund(tx, refund_id) if refund_id is not None else None
    if locked is None or not source.owns(locked[0]):
        return "unmatched"
    assert refund_id is not None
    structlog.contextvars.bind_contextvars(refund_id=refund_id)
    _, moved = await apply_refund_result(tx, refund_id, event.refund_result, source="webhook")
    return "processed" if moved else "no_change"


async def sweep_once(
    db: Database, registry: Providers, *, older_than_seconds: float, max_attempts: int
) -> int:
    """Processes stored events that nobody processed (a crash between store and process). Returns count."""
    due = await inbox.due(db, older_than_seconds, max_attempts)
    done = 0
    for inbox_id in due:
        if await process(db, registry, inbox_id, max_attempts) is not None:
            done += 1
    if due:
        log.info("webhook_sweep", due=len(due), processed=done)
    return done


async def sweeper(
    db: Database,
    registry: Providers,
    stop: asyncio.Event,
    *,
    interval: float,
    older_than_seconds: float,
    max_attempts: int,
) -> None:
    """Runs sweep_once at start and then every `interval` seconds, until `stop` is set."""
    while not stop.is_set():
        try:
            await sweep_once(db, registry, older_than_seconds=older_than_seconds, max_attempts=max_attempts)
        except Exception:
            log.exception("webhook_sweep_failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
