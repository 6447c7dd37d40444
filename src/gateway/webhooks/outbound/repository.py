"""Webhook endpoints, the delivery queue and its attempts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.db.database import Queries, Tx
from gateway.db.query import Where, paginate
from gateway.events.models import EVENTS, Event
from gateway.kit.ids import new_id
from gateway.kit.pagination import Page
from gateway.webhooks.outbound.models import (
    ATTEMPTS,
    DELIVERIES,
    ENDPOINTS,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)


@dataclass(frozen=True)
class Job:
    """Everything a worker needs to send one claimed delivery, read in one query."""

    delivery: WebhookDelivery
    endpoint: WebhookEndpoint
    event: Event


_E = ENDPOINTS.columns
_LIVE = "deleted_at IS NULL"
_COUNT = f"SELECT count(*) FROM webhook_endpoints WHERE merchant_id = $1 AND livemode = $2 AND {_LIVE}"  # noqa: S608
_GET = f"SELECT {_E} FROM webhook_endpoints WHERE id = $1 AND merchant_id = $2 AND livemode = $3 AND {_LIVE}"  # noqa: S608
_DISABLE = """
UPDATE webhook_endpoints SET enabled = false, disabled_reason = $2, updated_at = now() WHERE id = $1
"""


async def count_endpoints(q: Queries, merchant_id: str, livemode: bool) -> int:
    return int(await q.fetchval(_COUNT, merchant_id, livemode))


async def create_endpoint(q: Queries, endpoint: WebhookEndpoint) -> None:
    await q.execute(ENDPOINTS.insert_sql(), *ENDPOINTS.values(endpoint))


async def get_endpoint(
    q: Queries, merchant_id: str, livemode: bool, endpoint_id: str, *, for_update: bool = False
) -> WebhookEndpoint | None:
    return ENDPOINTS.one(
        await q.fetchrow(_GET + (" FOR UPDATE" if for_update else ""), endpoint_id, merchant_id, livemode)
    )


def save_endpoint(tx: Tx, endpoint: WebhookEndpoint, changes: dict[str, Any]) -> None:
    for name, value in changes.items():
        setattr(endpoint, name, value)
    tx.update(ENDPOINTS, endpoint.id, changes)


async def list_endpoints(
    q: Queries, merchant_id: str, livemode: bool, cursor: Page
) -> tuple[list[WebhookEndpoint], bool]:
    where = Where().add("merchant_id = {}", merchant_id).add("livemode = {}", livemode).owned().add(_LIVE)
    return await paginate(q, ENDPOINTS, where, cursor)


async def disable_endpoint(q: Queries, endpoint_id: str, reason: str) -> None:
    await q.execute(_DISABLE, endpoint_id, reason)


_D = DELIVERIES.columns
_CLAIM_DUE = """
UPDATE webhook_deliveries SET claimed_until = $1
WHERE id IN (
    SELECT id FROM webhook_deliveries
    WHERE status = 'pending' AND next_attempt_at <= now()
      AND (claimed_until IS NULL OR claimed_until < now())
    ORDER BY next_attempt_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED
)
RETURNING id
"""


# The queue's head in the order workers take it (ix_webhook_deliveries_due), up to $1 rows: the due
# ones (claimed or not), the ones waiting for a retry, and the age of the oldest due one.
_QUEUE = """
SELECT count(*) FILTER (WHERE next_attempt_at <= now()),
       count(*) FILTER (WHERE next_attempt_at > now()),
       COALESCE(EXTRACT(EPOCH FROM now() - min(next_attempt_at)
                        FILTER (WHERE next_attempt_at <= now())), 0)::float8
FROM (SELECT next_attempt_at FROM webhook_deliveries WHERE status = 'pending'
      ORDER BY next_attempt_at LIMIT $1) head
"""


@dataclass(frozen=True)
class Queue:
    due: int
    scheduled: int
    oldest_due_seconds: float


async def queue(q: Queries, cap: int) -> Queue:
    """The pending deliveries, counted up to `cap` in all (a bounded index scan at every scrape)."""
    row = await q.fetchrow(_QUEUE, cap)
    assert row is not None  # an aggregate: always one row
    return Queue(row[0], row[1], row[2])


def _qualified(alias: str, columns: str) -> str:
    return ", ".join(f"{alias}.{c}" for c in columns.split(", "))


_JOBS = (
    f"SELECT {_qualified('d', _D)}, {_qualified('e', _E)}, {_qualified('ev', EVENTS.columns)} "  # noqa: S608
    "FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id "
    "JOIN events ev ON ev.id = d.event_id WHERE d.id = ANY($1) ORDER BY d.id"
)
_ATTEMPT = """
INSERT INTO webhook_attempts (id, delivery_id, status_code, duration_ms, response_body, error, worker)
VALUES ($1, $2, $3, $4, $5, $6, $7)
"""
_FINISH = """
UPDATE webhook_deliveries SET status = $2, attempts = attempts + 1, last_status_code = $3,
    next_attempt_at = $4, claimed_until = NULL, updated_at = now()
WHERE id = $1
"""
_RELEASE = "UPDATE webhook_deliveries SET claimed_until = NULL WHERE id = ANY($1) AND status = 'pending'"
_GET_DELIVERY = (
    f"SELECT {_qualified('d', _D)} FROM webhook_deliveries d "  # noqa: S608
    "JOIN webhook_endpoints e ON e.id = d.endpoint_id "
    "WHERE d.id = $1 AND d.merchant_id = $2 AND e.livemode = $3"
)
_REQUEUE = """
UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = now(), updated_at = now() WHERE id = $1
"""
_ATTEMPTS = f"SELECT {ATTEMPTS.columns} FROM webhook_attempts WHERE delivery_id = ANY($1) ORDER BY id"  # noqa: S608


async def claim_due(q: Queries, limit: int, until: datetime) -> list[str]:
    """Leases up to `limit` due deliveries; SKIP LOCKED lets any number of workers share the queue."""
    return [r[0] for r in await q.fetch(_CLAIM_DUE, until, limit)]


async def jobs(q: Queries, delivery_ids: list[str]) -> list[Job]:
    nd, ne = len(DELIVERIES.fields), len(ENDPOINTS.fields)
    out = []
    for r in await q.fetch(_JOBS, delivery_ids):
        values = tuple(r)
        out.append(
            Job(
                WebhookDelivery(*values[:nd]),
                WebhookEndpoint(*values[nd : nd + ne]),
                Event(*values[nd + ne :]),
            )
        )
    return out


async def record_attempt(
    q: Queries,
    delivery_id: str,
    *,
    status_code: int | None,
    duration_ms: int,
    response_body: str | None,
    error: str | None,
    worker: str,
) -> None:
    await q.execute(
        _ATTEMPT, new_id("wha"), delivery_id, status_code, duration_ms, response_body, error, worker
    )


async def finish_attempt(
    q: Queries, delivery_id: str, *, status: str, status_code: int | None, next_attempt_at: datetime | None
) -> None:
    await q.execute(_FINISH, delivery_id, status, status_code, next_attempt_at)


async def release(q: Queries, delivery_ids: list[str]) -> None:
    await q.execute(_RELEASE, delivery_ids)


async def get_delivery(
    q: Queries, merchant_id: str, livemode: bool, delivery_id: str
) -> WebhookDelivery | None:
    return DELIVERIES.one(await q.fetchrow(_GET_DELIVERY, delivery_id, merchant_id, livemode))


async def requeue(q: Queries, delivery_id: str) -> None:
    await q.execute(_REQUEUE, delivery_id)


async def list_deliveries(q: Queries, endpoint_id: str, cursor: Page) -> tuple[list[WebhookDelivery], bool]:
    return await paginate(q, DELIVERIES, Where().add("endpoint_id = {}", endpoint_id).owned(), cursor)


async def attempts(q: Queries, delivery_ids: Sequence[str]) -> dict[str, list[WebhookAttempt]]:
    out: dict[str, list[WebhookAttempt]] = {d: [] for d in delivery_ids}
    for a in ATTEMPTS.many(await q.fetch(_ATTEMPTS, list(delivery_ids))):
        out[a.delivery_id].append(a)
    return out
