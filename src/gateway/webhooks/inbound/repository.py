"""The inbox: stored once per (provider, event id), claimed by one processor at a time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gateway.db.database import Queries, Tx
from gateway.kit.ids import new_id
from gateway.webhooks.inbound.models import INBOX, InboundWebhook

_STORE = """
INSERT INTO inbound_webhooks (id, provider, account_id, provider_event_id, event_type, payload)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (provider, account_id, provider_event_id) DO NOTHING
RETURNING id
"""
# Stored by the request that applies it, in the same transaction: processed as it becomes visible.
_STORE_PROCESSING = """
INSERT INTO inbound_webhooks (id, provider, account_id, provider_event_id, event_type, payload, processed_at)
VALUES ($1, $2, $3, $4, $5, $6, now())
ON CONFLICT (provider, account_id, provider_event_id) DO NOTHING
RETURNING id
"""
_OUTCOME = "UPDATE inbound_webhooks SET outcome = :{n}_outcome, attempts = 1 WHERE id = :{n}_id"
_CLAIM = (
    f"SELECT {INBOX.columns} FROM inbound_webhooks "  # noqa: S608
    "WHERE id = $1 AND processed_at IS NULL AND ($2::int IS NULL OR attempts < $2) FOR UPDATE SKIP LOCKED"
)
_FINISH = """
UPDATE inbound_webhooks SET processed_at = now(), outcome = $2, last_error = $3, attempts = attempts + 1
WHERE id = $1
"""
# Counted once per attempt number: two processes that failed the same attempt (one claimed the row
# between the other's rollback and its count) count it once, so the cap holds.
_FAILED = (
    "UPDATE inbound_webhooks SET attempts = attempts + 1, last_error = $2"
    " WHERE id = $1 AND ($3::int IS NULL OR attempts = $3)"
)
_DUE = """
SELECT id FROM inbound_webhooks
WHERE processed_at IS NULL AND attempts < $2 AND received_at < now() - make_interval(secs => $1)
ORDER BY received_at
LIMIT $3
"""


async def store(
    q: Queries, provider: str, account_id: str, event_id: str, event_type: str, payload: dict[str, Any]
) -> str | None:
    """Stores a notification once; None if (provider, account, event id) was already stored."""
    inbox_id: str | None = await q.fetchval(
        _STORE, new_id("iwh"), provider, account_id, event_id, event_type, payload
    )
    return inbox_id


async def store_processing(
    tx: Tx, provider: str, account_id: str, event_id: str, event_type: str, payload: dict[str, Any]
) -> str | None:
    """Stores a notification that `tx` processes before it commits (`finish_at_commit`); None if
    it was already stored. Never seen unprocessed: the row and its outcome commit together."""
    inbox_id: str | None = await tx.fetchval(
        _STORE_PROCESSING, new_id("iwh"), provider, account_id, event_id, event_type, payload
    )
    return inbox_id


def store_at_commit(
    tx: Tx,
    provider: str,
    account_id: str,
    event_id: str,
    event_type: str,
    payload: dict[str, Any],
    outcome: str,
) -> None:
    """Stores a notification `tx` has applied, processed with its outcome, in the commit's statement
    (no round trip of its own); one already stored fails the commit whole with `Conflict`."""
    now = datetime.now(UTC)  # the app's clock: no query reads a processed row's times
    row = InboundWebhook(
        new_id("iwh"), provider, event_id, event_type, payload, now, now, outcome, 1, None, account_id
    )
    tx.insert(INBOX, row.id, row)


def finish_at_commit(tx: Tx, inbox_id: str, outcome: str) -> None:
    """The outcome of a row `store_processing` wrote, sent with the transaction's other writes at
    its commit (one statement, no round trip of its own; neither column is indexed: a HOT update)."""
    name = tx.name_for("inbox", inbox_id)
    tx.defer(name, _OUTCOME.format(n=name), {f"{name}_outcome": outcome, f"{name}_id": inbox_id})


async def claim(tx: Tx, inbox_id: str, max_attempts: int | None) -> InboundWebhook | None:
    """Locks an unprocessed row with attempts left (`max_attempts` None: no cap); None if it is done,
    given up on, or another worker holds it right now."""
    return INBOX.one(await tx.fetchrow(_CLAIM, inbox_id, max_attempts))


async def finish(q: Queries, inbox_id: str, outcome: str, error: str | None = None) -> None:
    await q.execute(_FINISH, inbox_id, outcome, error)


async def record_failure(q: Queries, inbox_id: str, error: str, seen: int | None) -> None:
    """One failed attempt; `seen`: the attempts the row had when it was claimed (None: not read)."""
    await q.execute(_FAILED, inbox_id, error[:2000], seen)


async def due(q: Queries, older_than_seconds: float, max_attempts: int, limit: int = 100) -> list[str]:
    return [r[0] for r in await q.fetch(_DUE, older_than_seconds, max_attempts, limit)]
