"""Inbound provider webhooks: verify, store once, acknowledge; then process (safe to run twice)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.errors import NotFound, WebhookMalformed, WebhookSignatureInvalid
from gateway.payments import state
from gateway.payments.repository import PaymentRepository
from gateway.payments.service import sync_payment
from gateway.providers.base import WebhookEvent, WebhookPayloadError, WebhookVerificationError
from gateway.providers.registry import ProviderRegistry
from gateway.refunds.repository import RefundRepository
from gateway.refunds.service import apply_refund_result
from gateway.webhooks.inbound.repository import InboxRepository

log = structlog.get_logger("gateway.webhooks.inbound")


async def receive(
    session: AsyncSession,
    registry: ProviderRegistry,
    provider_name: str,
    headers: Mapping[str, str],
    body: bytes,
) -> tuple[list[str], bytes]:
    """Verifies and stores; returns the ids of newly stored events (duplicates are dropped here) and
    the acknowledgement body the provider expects."""
    provider = registry.get(provider_name)
    if provider is None:
        raise NotFound(f"No provider named {provider_name!r}.")
    try:
        events = provider.verify_webhook(headers, body)
    except WebhookVerificationError as e:
        log.warning("webhook_rejected", provider=provider_name, reason=str(e))
        raise WebhookSignatureInvalid("The webhook's signature could not be verified.") from e
    except WebhookPayloadError as e:
        log.warning("webhook_malformed", provider=provider_name, reason=str(e))
        raise WebhookMalformed(str(e)) from e
    inbox = InboxRepository(session)
    stored = []
    for event in events:
        inbox_id = await inbox.store(provider_name, event.event_id, event.event_type, event.payload)
        if inbox_id is None:
            log.info("webhook_duplicate", provider=provider_name, event_id=event.event_id)
        else:
            stored.append(inbox_id)
    await session.commit()
    return stored, provider.capabilities.webhook_ack


async def process(
    sessionmaker: async_sessionmaker[AsyncSession], registry: ProviderRegistry, inbox_id: str
) -> str | None:
    """Applies one stored event; safe to run twice or concurrently. Returns the outcome, None if skipped."""
    async with sessionmaker() as session:
        inbox = InboxRepository(session)
        row = await inbox.claim(inbox_id)
        if row is None:
            return None
        provider = registry.get(row.provider)
        try:
            if provider is None:
                raise WebhookPayloadError(f"provider {row.provider!r} is no longer registered")
            event = provider.interpret_webhook(row.payload)
            if provider.capabilities.query_before_acting and event.result is not None:
                outcome = await _confirm_by_query(sessionmaker, registry, session, row.provider, event)
            elif event.refund_result is not None:
                outcome = await _apply_refund_event(session, event)
            else:
                outcome = await _apply_payment_event(session, row.provider, event)
            if outcome == "unmatched":
                log.warning("webhook_unmatched", provider=row.provider, event_id=row.provider_event_id)
            await inbox.finish(inbox_id, outcome)
            await session.commit()
            return outcome
        except Exception as e:
            await session.rollback()
            log.exception("webhook_processing_failed", inbox_id=inbox_id)
            await inbox.record_failure(inbox_id, f"{type(e).__name__}: {e}")
            await session.commit()
            return "failed"


async def _apply_payment_event(session: AsyncSession, provider: str, event: WebhookEvent) -> str:
    if event.result is None:
        return "ignored"
    payments = PaymentRepository(session)
    payment_id = event.payment_id
    if event.provider_reference is not None:
        payment_id = (
            await payments.find_id_by_provider_reference(provider, event.provider_reference) or payment_id
        )
    payment = await payments.lock(payment_id) if payment_id else None
    if payment is None or payment.provider != provider:
        return "unmatched"
    structlog.contextvars.bind_contextvars(payment_id=payment.id)
    moved = await state.apply_result(session, payment, event.result, source="webhook")
    return "processed" if moved else "no_change"


async def _confirm_by_query(
    sessionmaker: async_sessionmaker[AsyncSession],
    registry: ProviderRegistry,
    session: AsyncSession,
    provider: str,
    event: WebhookEvent,
) -> str:
    """An unsigned callback only says "look now": apply what the provider answers to a status query."""
    payments = PaymentRepository(session)
    payment_id = event.payment_id
    if event.provider_reference is not None:
        payment_id = (
            await payments.find_id_by_provider_reference(provider, event.provider_reference) or payment_id
        )
    if payment_id is None or await payments.get_any(payment_id) is None:
        return "unmatched"
    async with sessionmaker() as own:  # sync_payment commits around the provider call
        before = await PaymentRepository(own).status_of(payment_id)
        after = await sync_payment(own, registry, payment_id, source="webhook")
    return "processed" if after.status != before else "no_change"


async def _apply_refund_event(session: AsyncSession, event: WebhookEvent) -> str:
    assert event.refund_result is not None
    refund_id = await RefundRepository(session).find_id(event.refund_id, event.refund_reference)
    if refund_id is None:
        return "unmatched"
    structlog.contextvars.bind_contextvars(refund_id=refund_id)
    _, moved = await apply_refund_result(session, refund_id, event.refund_result, source="webhook")
    return "processed" if moved else "no_change"


async def sweep_once(
    sessionmaker: async_sessionmaker[AsyncSession],
    registry: ProviderRegistry,
    *,
    older_than_seconds: float,
    max_attempts: int,
) -> int:
    """Processes stored events that nobody processed (a crash between store and process). Returns count."""
    async with sessionmaker() as session:
        due = await InboxRepository(session).due(older_than_seconds, max_attempts)
    done = 0
    for inbox_id in due:
        if await process(sessionmaker, registry, inbox_id) is not None:
            done += 1
    if due:
        log.info("webhook_sweep", due=len(due), processed=done)
    return done


async def sweeper(
    sessionmaker: async_sessionmaker[AsyncSession],
    registry: ProviderRegistry,
    *,
    interval: float,
    older_than_seconds: float,
    max_attempts: int,
) -> None:
    """Runs sweep_once at start and then every `interval` seconds, until cancelled."""
    while True:
        try:
            await sweep_once(
                sessionmaker, registry, older_than_seconds=older_than_seconds, max_attempts=max_attempts
            )
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("webhook_sweep_failed")
        await asyncio.sleep(interval)
