"""The refund state machine: pending -> succeeded | failed, nothing else.

A refund's success moves its payment (partially_refunded / refunded) through the payment's own
state machine, in the same transaction, with both events appended.
"""

from __future__ import annotations

from datetime import UTC, datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.events.repository import EventRepository
from gateway.payments import state as payment_state
from gateway.payments.models import Payment
from gateway.providers.base import RefundResult
from gateway.refunds.models import Refund
from gateway.refunds.schemas import refund_out

log = structlog.get_logger("gateway.refunds.state")

TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"succeeded", "failed"}),
    "succeeded": frozenset(),
    "failed": frozenset(),
}


async def _event(
    session: AsyncSession,
    refund: Refund,
    type: str,
    source: str,
    previous: str | None,
    extra: dict[str, object] | None = None,
) -> None:
    data = refund_out(refund).model_dump(mode="json")
    if extra:
        data.update(extra)
    await EventRepository(session).append(
        merchant_id=refund.merchant_id,
        livemode=refund.livemode,
        type=type,
        source=source,
        payment_id=refund.payment_id,
        refund_id=refund.id,
        previous_status=previous,
        status=refund.status,
        data=data,
    )


async def record_created(session: AsyncSession, refund: Refund, *, source: str) -> None:
    await _event(session, refund, "refund.created", source, None)


async def apply_result(
    session: AsyncSession, payment: Payment, refund: Refund, result: RefundResult, *, source: str
) -> bool:
    """Applies a provider's word on a refund; the caller holds the payment's and the refund's row locks."""
    if result.provider_reference and refund.provider_reference is None:
        refund.provider_reference = result.provider_reference
    refund.provider_lease_until = None
    target = result.status
    if target == refund.status or target == "pending":
        await session.flush()
        return False  # nothing new: a repeat, or an earlier step arriving late
    reason = None
    if target not in TRANSITIONS[refund.status]:
        reason = "illegal_transition"
    elif (
        target == "succeeded"
        and result.amount is not None
        and (result.amount != refund.amount or (result.currency or refund.currency) != refund.currency)
    ):
        reason = "amount_mismatch"
    if reason is not None:
        log.warning(
            "refund_transition_rejected",
            refund_id=refund.id,
            current=refund.status,
            target=target,
            reason=reason,
            source=source,
        )
        await session.flush()
        await _event(
            session,
            refund,
            "refund.transition_rejected",
            source,
            refund.status,
            {"rejected": {"target_status": target, "reason": reason}},
        )
        return False
    previous = refund.status
    refund.status = target
    refund.updated_at = datetime.now(UTC)
    if target == "failed":
        refund.failure_code = result.failure_code or "refund_failed"
        refund.failure_message = result.failure_message
    await session.flush()
    await _event(session, refund, f"refund.{target}", source, previous)
    if target == "succeeded":
        await payment_state.record_refund(session, payment, refund.amount, source=source)
    log.info("refund_status_changed", refund_id=refund.id, previous=previous, status=target, source=source)
    return True
