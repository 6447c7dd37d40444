"""The cash session state machine: open -> closed, nothing else. Each move appends its event
(`cash_session.opened`, `cash_session.closed`) in the same transaction, through the event log, so
the outbox, webhooks and live streams carry it like a payment's."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import structlog

from gateway.cash_drawers.models import CashSession
from gateway.cash_drawers.repository import save
from gateway.cash_drawers.schemas import session_out
from gateway.db.database import Tx
from gateway.events.repository import append_event

log = structlog.get_logger("gateway.cash_drawers.state")

OPEN, CLOSED = "open", "closed"
TRANSITIONS: dict[str, frozenset[str]] = {OPEN: frozenset({CLOSED}), CLOSED: frozenset()}


def _event(tx: Tx, session: CashSession, type: str, source: str, previous: str | None) -> None:
    append_event(
        tx,
        merchant_id=session.merchant_id,
        livemode=session.livemode,
        type=type,
        source=source,
        previous_status=previous,
        status=session.status,
        data=session_out(session).model_dump(mode="json"),
    )


def record_opened(tx: Tx, session: CashSession, *, source: str) -> None:
    _event(tx, session, "cash_session.opened", source, None)


def close(
    tx: Tx,
    session: CashSession,
    *,
    counted: int,
    payments_total: int,
    refunds_total: int,
    closed_by: str,
    closed_by_name: str | None,
    idempotency_key: str,
    fingerprint: str,
    source: str,
) -> None:
    """open -> closed with the count; the caller holds the session's row lock (repository.lock) and
    read the totals under it."""
    assert CLOSED in TRANSITIONS[session.status], session.status
    expected = session.opening_float + payments_total - refunds_total
    now = datetime.now(UTC)
    changes: dict[str, Any] = {
        "status": CLOSED,
        "counted": counted,
        "payments_total": payments_total,
        "refunds_total": refunds_total,
        "expected": expected,
        "difference": counted - expected,
        "closed_by": closed_by,
        "closed_by_name": closed_by_name,
        "closed_at": now,
        "close_idempotency_key": idempotency_key,
        "close_request_fingerprint": fingerprint,
        "updated_at": now,
    }
    for name, value in changes.items():
        setattr(session, name, value)
    save(tx, session, changes)
    _event(tx, session, "cash_session.closed", source, OPEN)
    tx.say(
        log.info,
        "cash_session_closed",
        cash_session=session.id,
        drawer=session.drawer,
        expected=expected,
        difference=counted - expected,
    )
