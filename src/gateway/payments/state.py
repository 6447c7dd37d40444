"""The one state machine of a payment. Nothing else writes `payments.status`.

Every applied move appends an event in the caller's transaction; an illegal move (a late `failed`
after `succeeded`, a webhook older than what we know) is logged and recorded, never applied.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.events.repository import EventRepository
from gateway.payments.models import Payment
from gateway.payments.schemas import payment_out
from gateway.providers.base import PaymentResult

log = structlog.get_logger("gateway.payments.state")


class Status(StrEnum):
    PENDING = "pending"
    REQUIRES_ACTION = "requires_action"
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    EXPIRED = "expired"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"


S = Status
TRANSITIONS: dict[Status, frozenset[Status]] = {
    S.PENDING: frozenset({S.REQUIRES_ACTION, S.PROCESSING, S.SUCCEEDED, S.FAILED, S.CANCELED}),
    S.REQUIRES_ACTION: frozenset({S.PROCESSING, S.SUCCEEDED, S.FAILED, S.CANCELED, S.EXPIRED}),
    S.PROCESSING: frozenset({S.SUCCEEDED, S.FAILED}),
    S.SUCCEEDED: frozenset({S.PARTIALLY_REFUNDED, S.REFUNDED}),
    S.PARTIALLY_REFUNDED: frozenset({S.PARTIALLY_REFUNDED, S.REFUNDED}),
    S.FAILED: frozenset(),
    S.CANCELED: frozenset(),
    S.EXPIRED: frozenset(),
    S.REFUNDED: frozenset(),
}
FINAL = frozenset(s for s, moves in TRANSITIONS.items() if not moves)
# A payment is "completed" once its money question is answered.
COMPLETING = frozenset({S.SUCCEEDED, S.FAILED, S.CANCELED, S.EXPIRED})
CANCELABLE = frozenset({S.PENDING, S.REQUIRES_ACTION})


def can_move(current: str, target: str) -> bool:
    return Status(target) in TRANSITIONS[Status(current)]


async def record_created(session: AsyncSession, payment: Payment, *, source: str) -> None:
    await EventRepository(session).append(
        merchant_id=payment.merchant_id,
        livemode=payment.livemode,
        type="payment.created",
        source=source,
        payment_id=payment.id,
        previous_status=None,
        status=payment.status,
        data=payment_out(payment).model_dump(mode="json"),
    )


async def _reject(session: AsyncSession, payment: Payment, target: str, *, source: str, reason: str) -> None:
    log.warning(
        "payment_transition_rejected",
        payment_id=payment.id,
        current=payment.status,
        target=target,
        source=source,
        reason=reason,
    )
    data = payment_out(payment).model_dump(mode="json")
    data["rejected"] = {"target_status": target, "reason": reason}
    await EventRepository(session).append(
        merchant_id=payment.merchant_id,
        livemode=payment.livemode,
        type="payment.transition_rejected",
        source=source,
        payment_id=payment.id,
        previous_status=payment.status,
        status=payment.status,
        data=data,
    )


async def move(
    session: AsyncSession,
    payment: Payment,
    target: str,
    *,
    source: str,
    failure_code: str | None = None,
    failure_message: str | None = None,
) -> bool:
    """Moves `payment` (locked by the caller) to `target` if the machine allows it. True if it moved."""
    if target == payment.status and target != S.PARTIALLY_REFUNDED:
        return False  # a repeat of what we know: nothing to record
    if not can_move(payment.status, target):
        await _reject(session, payment, target, source=source, reason="illegal_transition")
        return False
    previous = payment.status
    now = datetime.now(UTC)
    payment.status = target
    payment.updated_at = now
    payment.provider_lease_until = None
    if target != S.REQUIRES_ACTION:
        payment.next_action = None
    if target == S.FAILED:
        payment.failure_code = failure_code or "payment_failed"
        payment.failure_message = failure_message
    if target in COMPLETING:
        payment.completed_at = now
    await session.flush()
    await EventRepository(session).append(
        merchant_id=payment.merchant_id,
        livemode=payment.livemode,
        type=f"payment.{target}",
        source=source,
        payment_id=payment.id,
        previous_status=previous,
        status=target,
        data=payment_out(payment).model_dump(mode="json"),
    )
    log.info("payment_status_changed", payment_id=payment.id, previous=previous, status=target, source=source)
    return True


async def apply_result(
    session: AsyncSession, payment: Payment, result: PaymentResult, *, source: str
) -> bool:
    """Applies a provider's answer (API reply, webhook, status query) to a locked payment."""
    if (
        result.status == S.SUCCEEDED
        and result.amount is not None
        and (result.amount != payment.amount or (result.currency or payment.currency) != payment.currency)
    ):
        # Never fulfil on a provider's word that names other money than ours.
        await _reject(session, payment, result.status, source=source, reason="amount_mismatch")
        return False
    if result.provider_reference and payment.provider_reference is None:
        payment.provider_reference = result.provider_reference
    if (
        result.status == S.REQUIRES_ACTION
        and result.next_action is not None
        and payment.status in (S.PENDING, S.REQUIRES_ACTION)
    ):
        # A status query that only says "still waiting" keeps the customer's next step as it was.
        payment.next_action = result.next_action
    moved = await move(
        session,
        payment,
        result.status,
        source=source,
        failure_code=result.failure_code,
        failure_message=result.failure_message,
    )
    if not moved:
        payment.provider_lease_until = None
        await session.flush()
    return moved


async def record_refund(session: AsyncSession, payment: Payment, amount: int, *, source: str) -> None:
    """Counts a succeeded refund and moves the payment to partially_refunded or refunded."""
    payment.amount_refunded += amount
    target = S.REFUNDED if payment.amount_refunded >= payment.amount else S.PARTIALLY_REFUNDED
    await move(session, payment, target, source=source)
