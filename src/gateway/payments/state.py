"""The one state machine of a payment. Nothing else writes `payments.status`.

Every applied move appends an event in the caller's transaction (the row's update and the event are
written together at its commit); an illegal move (a late `failed`
after `succeeded`, a webhook older than what we know) is logged and recorded, never applied.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import structlog

from gateway.db.database import Tx
from gateway.events.repository import append_event
from gateway.payments.models import Payment
from gateway.payments.repository import mark_link_paid, mirror_attempt, save
from gateway.payments.schemas import payment_json
from gateway.providers.base import PaymentResult
from gateway.providers.details import MethodDetails, MobileMoney, details_json

log = structlog.get_logger("gateway.payments.state")


class Status(StrEnum):
    REQUIRES_PAYMENT_METHOD = "requires_payment_method"
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
    # Created without a rail: the confirm chooses one (its result is then the create's would be).
    S.REQUIRES_PAYMENT_METHOD: frozenset(
        {S.PENDING, S.REQUIRES_ACTION, S.PROCESSING, S.SUCCEEDED, S.FAILED, S.CANCELED, S.EXPIRED}
    ),
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
CANCELABLE = frozenset({S.REQUIRES_PAYMENT_METHOD, S.PENDING, S.REQUIRES_ACTION})


def can_move(current: str, target: str) -> bool:
    return Status(target) in TRANSITIONS[Status(current)]


def record_created(tx: Tx, payment: Payment, *, source: str) -> None:
    append_event(
        tx,
        merchant_id=payment.merchant_id,
        livemode=payment.livemode,
        type="payment.created",
        source=source,
        payment_id=payment.id,
        previous_status=None,
        status=payment.status,
        data=payment_json(payment),
    )


def _reject(tx: Tx, payment: Payment, target: str, *, source: str, reason: str) -> None:
    tx.say(
        log.warning,
        "payment_transition_rejected",
        payment_id=payment.id,
        current=payment.status,
        target=target,
        source=source,
        reason=reason,
    )
    data = payment_json(payment)
    data["rejected"] = {"target_status": target, "reason": reason}
    append_event(
        tx,
        merchant_id=payment.merchant_id,
        livemode=payment.livemode,
        type="payment.transition_rejected",
        source=source,
        payment_id=payment.id,
        previous_status=payment.status,
        status=payment.status,
        data=data,
    )


def _set(payment: Payment, changes: dict[str, Any]) -> None:
    for name, value in changes.items():
        setattr(payment, name, value)


def move(
    tx: Tx,
    payment: Payment,
    target: str,
    *,
    source: str,
    failure_code: str | None = None,
    failure_message: str | None = None,
    changed: dict[str, Any] | None = None,
) -> bool:
    """Moves `payment` (locked by the caller) to `target` if the machine allows it. True if it moved.

    `changed`: fields the caller already set on `payment`, written with the move."""
    if target == payment.status and target != S.PARTIALLY_REFUNDED:
        return False  # a repeat of what we know: nothing to record
    if not can_move(payment.status, target):
        _reject(tx, payment, target, source=source, reason="illegal_transition")
        return False
    _moved(
        tx,
        payment,
        target,
        source=source,
        failure_code=failure_code,
        failure_message=failure_message,
        changed=changed,
    )
    return True


def start_attempt(tx: Tx, payment: Payment, changed: dict[str, Any], *, source: str) -> None:
    """The confirm path's move into a new attempt (`changed`: its rail, its number, already set on
    `payment`): requires_payment_method -> pending, or failed -> pending when the merchant allows
    retries. Only this function leaves `failed`: for webhooks and the reconciler it stays final."""
    assert payment.status in (S.REQUIRES_PAYMENT_METHOD, S.FAILED), payment.status
    changes = changed | {"failure_code": None, "failure_message": None, "completed_at": None}
    _set(payment, changes)
    _moved(tx, payment, S.PENDING, source=source, changed=changes)


def _moved(
    tx: Tx,
    payment: Payment,
    target: str,
    *,
    source: str,
    failure_code: str | None = None,
    failure_message: str | None = None,
    changed: dict[str, Any] | None = None,
) -> None:
    previous = payment.status
    now = datetime.now(UTC)
    changes: dict[str, Any] = {"status": target, "updated_at": now, "provider_lease_until": None}
    if target != S.REQUIRES_ACTION:
        changes["next_action"] = None
    if target == S.FAILED:
        changes["failure_code"] = failure_code or "payment_failed"
        changes["failure_message"] = failure_message
    if target in COMPLETING:
        changes["completed_at"] = now
    _set(payment, changes)
    save(tx, payment, (changed or {}) | changes)
    mirror_attempt(tx, payment)
    if target == S.SUCCEEDED and payment.payment_link_id is not None:
        mark_link_paid(tx, payment.payment_link_id)  # a single-use link stops at its first success
    append_event(
        tx,
        merchant_id=payment.merchant_id,
        livemode=payment.livemode,
        type=f"payment.{target}",
        source=source,
        payment_id=payment.id,
        previous_status=previous,
        status=target,
        data=payment_json(payment),
    )
    tx.say(
        log.info,
        "payment_status_changed",
        payment_id=payment.id,
        previous=previous,
        status=target,
        source=source,
    )


def apply_result(tx: Tx, payment: Payment, result: PaymentResult, *, source: str) -> bool:
    """Applies a provider's answer (API reply, webhook, status query) to a locked payment."""
    if (
        result.status == S.SUCCEEDED
        and result.amount is not None
        and (result.amount != payment.amount or (result.currency or payment.currency) != payment.currency)
    ):
        # Never fulfil on a provider's word that names other money than ours.
        _reject(tx, payment, result.status, source=source, reason="amount_mismatch")
        return False
    changed: dict[str, Any] = {}
    if result.payment_method_details is not None and (
        result.status == payment.status or can_move(payment.status, result.status)
    ):
        changed |= _details_changes(payment, result.payment_method_details)
    if result.provider_reference and payment.provider_reference is None:
        changed["provider_reference"] = result.provider_reference
    if result.private is not None and result.private != payment.provider_private:
        changed["provider_private"] = dict(result.private)
    if (
        result.status == S.REQUIRES_ACTION
        and result.next_action is not None
        and payment.status in (S.PENDING, S.REQUIRES_ACTION)
    ):
        # A status query that only says "still waiting" keeps the customer's next step as it was.
        changed["next_action"] = result.next_action
    _set(payment, changed)
    moved = move(
        tx,
        payment,
        result.status,
        source=source,
        failure_code=result.failure_code,
        failure_message=result.failure_message,
        changed=changed,
    )
    if not moved:
        changed["provider_lease_until"] = None
        _set(payment, changed)
        save(tx, payment, changed)
        if "provider_reference" in changed:
            mirror_attempt(tx, payment)
    return moved


def _details_changes(payment: Payment, details: MethodDetails) -> dict[str, Any]:
    """The columns a provider's word on how the payment was paid changes. What an earlier answer told
    and this one does not (a receipt only the callback carried, not the later status query) stays."""
    new = details_json(details)
    old = payment.payment_method_details
    if old is not None and old.get("type") == new["type"]:
        new = old | {k: v for k, v in new.items() if v is not None}
    changes: dict[str, Any] = {}
    if new != old:
        changes["payment_method_details"] = new
    if isinstance(details, MobileMoney) and details.receipt and payment.provider_receipt is None:
        changes["provider_receipt"] = details.receipt
    return changes


def record_refund(tx: Tx, payment: Payment, amount: int, *, source: str) -> None:
    """Counts a succeeded refund and moves the payment to partially_refunded or refunded."""
    changed = {"amount_refunded": payment.amount_refunded + amount}
    _set(payment, changed)
    target = S.REFUNDED if payment.amount_refunded >= payment.amount else S.PARTIALLY_REFUNDED
    if not move(tx, payment, target, source=source, changed=changed):
        save(tx, payment, changed)


def reroute(
    tx: Tx, payment: Payment, changed: dict[str, Any], *, source: str, rerouted: dict[str, Any]
) -> None:
    """A routed payment's move to the next provider of its route after its current one could not take
    it (payments/routed.py): still pending, on a new attempt (`changed`: its rail, number and lease).
    Not a status change, so no payment.{status} event: payment.rerouted, in the same transaction,
    with `data.object.rerouted` = {from_provider, to_provider, attempt, reason}."""
    assert payment.status == S.PENDING, payment.status
    changes = changed | {"updated_at": datetime.now(UTC), "next_action": None}
    _set(payment, changes)
    save(tx, payment, changes)
    data = payment_json(payment)
    data["rerouted"] = rerouted
    append_event(
        tx,
        merchant_id=payment.merchant_id,
        livemode=payment.livemode,
        type="payment.rerouted",
        source=source,
        payment_id=payment.id,
        previous_status=payment.status,
        status=payment.status,
        data=data,
    )
    tx.say(log.info, "payment_rerouted", payment_id=payment.id, **rerouted)
