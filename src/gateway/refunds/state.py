"""The refund state machine: pending -> succeeded | failed, nothing else.

A refund's success moves its payment (partially_refunded / refunded) through the payment's own
state machine, in the same transaction, with both events appended.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import structlog

from gateway.db.database import Tx
from gateway.events.repository import append_event
from gateway.payments import state as payment_state
from gateway.payments.models import Payment
from gateway.providers.base import RefundResult
from gateway.refunds.models import Refund
from gateway.refunds.repository import save
from gateway.refunds.schemas import refund_out

log = structlog.get_logger("gateway.refunds.state")

TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"succeeded", "failed"}),
    "succeeded": frozenset(),
    "failed": frozenset(),
}


def _event(
    tx: Tx,
    refund: Refund,
    type: str,
    source: str,
    previous: str | None,
    extra: dict[str, object] | None = None,
) -> None:
    data = refund_out(refund).model_dump(mode="json")
    if extra:
        data.update(extra)
    append_event(
        tx,
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


def record_created(tx: Tx, refund: Refund, *, source: str) -> None:
    _event(tx, refund, "refund.created", source, None)


def _set(tx: Tx, refund: Refund, changes: dict[str, Any]) -> None:
    changed = {name: value for name, value in changes.items() if getattr(refund, name) != value}
    for name, value in changed.items():
        setattr(refund, name, value)
    save(tx, refund, changed)


def apply_result(tx: Tx, payment: Payment, refund: Refund, result: RefundResult, *, source: str) -> bool:
    """Applies a provider's word on a refund; the caller holds the payment's and the refund's row
    locks (refunds.repository.lock_refund)."""
    changes: dict[str, Any] = {"provider_lease_until": None}
    if result.provider_reference and refund.provider_reference is None:
        changes["provider_reference"] = result.provider_reference
    _set(tx, refund, changes)
    target = result.status
    if target == refund.status or target == "pending":
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
        tx.say(
            log.warning,
            "refund_transition_rejected",
            refund_id=refund.id,
            current=refund.status,
            target=target,
            reason=reason,
            source=source,
        )
        _event(
            tx,
            refund,
            "refund.transition_rejected",
            source,
            refund.status,
            {"rejected": {"target_status": target, "reason": reason}},
        )
        return False
    previous = refund.status
    moved: dict[str, Any] = {"status": target, "updated_at": datetime.now(UTC)}
    if target == "failed":
        moved["failure_code"] = result.failure_code or "refund_failed"
        moved["failure_message"] = result.failure_message
    _set(tx, refund, moved)
    _event(tx, refund, f"refund.{target}", source, previous)
    if target == "succeeded":
        payment_state.record_refund(tx, payment, refund.amount, source=source)
    tx.say(
        log.info,
        "refund_status_changed",
        refund_id=refund.id,
        previous=previous,
        status=target,
        source=source,
    )
    return True
