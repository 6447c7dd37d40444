"""The payout state machine: pending -> succeeded | failed, and pending -> canceled before submission.

Every move appends its `payout.*` event in the same transaction (the outbox, the outbound webhooks and
the live streams follow the event log as for payments). A failed or canceled payout gives its amount
back to the day's limit in that transaction too.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import structlog

from gateway.db.database import Tx
from gateway.events.repository import append_event
from gateway.payouts.models import Payout
from gateway.payouts.repository import release_from_day, save
from gateway.payouts.schemas import payout_out
from gateway.providers.payouts import PayoutResult

log = structlog.get_logger("gateway.payouts.state")

PENDING, SUCCEEDED, FAILED, CANCELED = "pending", "succeeded", "failed", "canceled"

TRANSITIONS: dict[str, frozenset[str]] = {
    PENDING: frozenset({SUCCEEDED, FAILED, CANCELED}),
    SUCCEEDED: frozenset(),
    FAILED: frozenset(),
    CANCELED: frozenset(),
}


def _event(
    tx: Tx,
    payout: Payout,
    type: str,
    source: str,
    previous: str | None,
    extra: dict[str, object] | None = None,
) -> None:
    data = payout_out(payout).model_dump(mode="json")  # masked destination: no account number in events
    if extra:
        data.update(extra)
    append_event(
        tx,
        merchant_id=payout.merchant_id,
        livemode=payout.livemode,
        type=type,
        source=source,
        payout_id=payout.id,
        previous_status=previous,
        status=payout.status,
        data=data,
    )


def record_created(tx: Tx, payout: Payout, *, source: str) -> None:
    _event(tx, payout, "payout.created", source, None)


def _set(tx: Tx, payout: Payout, changes: dict[str, Any]) -> None:
    changed = {name: value for name, value in changes.items() if getattr(payout, name) != value}
    for name, value in changed.items():
        setattr(payout, name, value)
    save(tx, payout, changed)


def _move(
    tx: Tx,
    payout: Payout,
    target: str,
    *,
    source: str,
    failure_code: str | None = None,
    failure_message: str | None = None,
) -> None:
    previous = payout.status
    now = datetime.now(UTC)
    moved: dict[str, Any] = {"status": target, "updated_at": now, "completed_at": now}
    if target == FAILED:
        moved["failure_code"] = failure_code or "payout_failed"
        moved["failure_message"] = failure_message
    _set(tx, payout, moved)
    if target in (FAILED, CANCELED):
        release_from_day(tx, payout)
    _event(tx, payout, f"payout.{target}", source, previous)
    tx.say(
        log.info,
        "payout_status_changed",
        payout_id=payout.id,
        previous=previous,
        status=target,
        source=source,
    )


def cancel(tx: Tx, payout: Payout, *, source: str) -> bool:
    """Cancels a payout never submitted (the caller holds its row lock); False if it was submitted
    or is settled already."""
    if payout.status != PENDING or payout.submitted_at is not None:
        return False
    _move(tx, payout, CANCELED, source=source)
    return True


def apply_result(tx: Tx, payout: Payout, result: PayoutResult, *, source: str) -> bool:
    """Applies a provider's word on a payout; the caller holds the payout's row lock."""
    if result.provider_reference and payout.provider_reference is None:
        _set(tx, payout, {"provider_reference": result.provider_reference})
    target = result.status
    if target == payout.status or target == PENDING:
        return False  # nothing new: a repeat, or an earlier step arriving late
    reason = None
    if target not in TRANSITIONS[payout.status] or target == CANCELED:
        reason = "illegal_transition"  # canceled is ours alone; a provider never says it
    elif payout.submitted_at is None:
        reason = "not_submitted"  # nothing was sent: no provider can know of it
    elif (
        target == SUCCEEDED
        and result.amount is not None
        and (result.amount != payout.amount or (result.currency or payout.currency) != payout.currency)
    ):
        reason = "amount_mismatch"
    if reason is not None:
        tx.say(
            log.warning,
            "payout_transition_rejected",
            payout_id=payout.id,
            current=payout.status,
            target=target,
            reason=reason,
            source=source,
        )
        _event(
            tx,
            payout,
            "payout.transition_rejected",
            source,
            payout.status,
            {"rejected": {"target_status": target, "reason": reason}},
        )
        return False
    _move(
        tx,
        payout,
        target,
        source=source,
        failure_code=result.failure_code,
        failure_message=result.failure_message,
    )
    return True
