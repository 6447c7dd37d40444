"""The transactional outbox: an event's deliveries are written in the statement that writes the event.

The runtime hands `FOLLOWERS` to the Database, which defers them after the events' insert (`ev`):
one delivery per enabled endpoint of the event's merchant and mode whose enabled_events match its
type ("*", the type, or its family "payment.*"). A delivery's id is its event's timestamp (the id's
first 10 characters) followed by 16 hex digits of md5(event, endpoint): valid, sorted by time like
every id, unique per pair, and made in SQL without ids we may not need.
"""

from __future__ import annotations

# At most this many webhook endpoints per merchant and mode (Stripe's limit too).
MAX_ENDPOINTS = 16

DELIVERIES_SQL = """
INSERT INTO webhook_deliveries (id, endpoint_id, event_id, merchant_id, event_type, status, attempts,
                                next_attempt_at, created_at, updated_at)
SELECT 'whd_' || substr(ev.id, 5, 10) || substr(md5(ev.id || e.id), 1, 16),
       e.id, ev.id, ev.merchant_id, ev.type, 'pending', 0, ev.created_at, ev.created_at, ev.created_at
FROM ev JOIN webhook_endpoints e ON e.merchant_id = ev.merchant_id AND e.livemode = ev.livemode
WHERE e.enabled AND e.deleted_at IS NULL
  AND e.enabled_events && ARRAY['*', ev.type, split_part(ev.type, '.', 1) || '.*']::varchar[]
"""

FOLLOWERS: tuple[tuple[str, str], ...] = (("wd", DELIVERIES_SQL),)
