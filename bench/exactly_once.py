"""The scale-out bench's witnesses (bench/scaleout.py): a live event stream held open on each replica,
and the exactly-once checks that compare what the streams, the merchant's webhook endpoint and wrk
saw with what PostgreSQL holds."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from bench.infra import BenchError, Db


@dataclass
class StreamWitness:
    """`GET /v1/events/stream` on one replica, read by a thread: the ids of the events it was sent."""

    name: str
    base_url: str
    api_key: str
    ids: list[str] = field(default_factory=list)
    ready: threading.Event = field(default_factory=threading.Event)
    error: str = ""
    _thread: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self, timeout: float = 15.0) -> None:
        self._thread = threading.Thread(target=self._read, name=f"stream-{self.name}", daemon=True)
        self._thread.start()
        if not self.ready.wait(timeout):
            why = self.error or "no `: ready` line"
            raise BenchError(f"the event stream of {self.name} was not ready in {timeout:.0f} s: {why}")

    def _read(self) -> None:
        headers = {"Authorization": f"Bearer {self.api_key}", "Accept": "text/event-stream"}
        timeout = httpx.Timeout(10.0, read=60.0)  # heartbeats every 15 s keep a live stream talking
        try:
            with (
                httpx.Client(base_url=self.base_url, timeout=timeout) as client,
                client.stream("GET", "/v1/events/stream", headers=headers) as r,
            ):
                if r.status_code != 200:
                    self.error = f"HTTP {r.status_code}: {r.read()[:300]!r}"
                    return
                for line in r.iter_lines():
                    if line.startswith("id:"):
                        self.ids.append(line[3:].strip())
                    elif line.startswith(": ready"):
                        self.ready.set()
                    if self._stop.is_set():
                        return
        except httpx.HTTPError as e:
            if not self._stop.is_set():
                self.error = f"{type(e).__name__}: {e}"

    def stop(self) -> None:
        """After the replica stopped (which ends the stream) or to give up on it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


def wait_until(what: str, predicate: Any, timeout: float, interval: float = 0.25) -> float:
    """Seconds it took; BenchError if it never held."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise BenchError(f"{what}: not done within {timeout:.0f} s")
        time.sleep(interval)
    return round(time.monotonic() - started, 2)


def pending_deliveries(db: Db, merchant_id: str) -> int:
    return int(
        db.value(
            "SELECT count(*) FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id "
            "WHERE e.merchant_id = $1 AND d.status = 'pending'",
            merchant_id,
        )
    )


def payments_check(db: Db, merchant_id: str, keyed_runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Every 201 is one payment and no Idempotency-Key made two: rows per run's keys against the 201s
    wrk counted. Rows may exceed 201s by the requests in flight when wrk stopped (it does not read
    their answers), never by more than its connections."""
    rows = answered = slack = 0
    for run in keyed_runs:
        for run_id in run["run_ids"]:
            rows += int(
                db.value(
                    "SELECT count(*) FROM payments WHERE merchant_id = $1 AND idempotency_key LIKE $2",
                    merchant_id,
                    run_id + "-%",
                )
            )
        answered += int(run["statuses"].get("201", 0))
        slack += run["connections"]
    patterns = [run_id + "-%" for run in keyed_runs for run_id in run["run_ids"]]
    duplicated = int(
        db.value(
            "SELECT count(*) FROM (SELECT idempotency_key FROM payments WHERE merchant_id = $1 "
            "AND idempotency_key LIKE ANY($2::text[]) GROUP BY idempotency_key HAVING count(*) > 1) d",
            merchant_id,
            patterns,
        )
    )
    ok = duplicated == 0 and answered <= rows <= answered + slack
    return {
        "rows": rows,
        "answered_201": answered,
        "in_flight_at_stop_max": slack,
        "keys_with_two_payments": duplicated,
        "ok": ok,
    }


def events_since(db: Db, merchant_id: str, since: datetime) -> list[tuple[str, str]]:
    rows = db.fetch(
        "SELECT id, type FROM events WHERE merchant_id = $1 AND created_at >= $2 ORDER BY id",
        merchant_id,
        since,
    )
    return [(r["id"], r["type"]) for r in rows]


def streams_check(events: list[tuple[str, str]], witnesses: list[StreamWitness]) -> dict[str, Any]:
    """Every event committed while the streams were open reached every replica's stream, once."""
    expected = {event_id for event_id, _ in events}
    out: dict[str, Any] = {"events": len(expected), "streams": {}}
    ok = True
    for w in witnesses:
        counts = Counter(w.ids)
        missing = len(expected - set(counts))
        unexpected = len(set(counts) - expected)
        repeated = sum(n - 1 for n in counts.values() if n > 1)
        out["streams"][w.name] = {
            "received": len(w.ids),
            "missing": missing,
            "repeated": repeated,
            "not_in_table": unexpected,
            "error": w.error,
        }
        ok = ok and missing == 0 and repeated == 0 and unexpected == 0
    out["ok"] = ok
    return out


def deliveries_check(
    db: Db, merchant_id: str, events: list[tuple[str, str]], received: list[str], event_type: str
) -> dict[str, Any]:
    """Every `event_type` event has one delivery row, delivered, and reached the endpoint once."""
    wanted = [event_id for event_id, kind in events if kind == event_type]
    rows = db.fetch(
        "SELECT d.event_id, d.status FROM webhook_deliveries d "
        "JOIN webhook_endpoints e ON e.id = d.endpoint_id "
        "WHERE e.merchant_id = $1 AND d.event_id = ANY($2::text[])",
        merchant_id,
        wanted,
    )
    per_event = Counter(r["event_id"] for r in rows)
    counts = Counter(received)
    out = {
        "events": len(wanted),
        "delivery_rows": len(rows),
        "events_without_delivery": sum(1 for e in wanted if per_event[e] == 0),
        "events_with_two_deliveries": sum(1 for e in wanted if per_event[e] > 1),
        "not_succeeded": sum(1 for r in rows if r["status"] != "succeeded"),
        "received": sum(counts[e] for e in wanted),
        "never_received": sum(1 for e in wanted if counts[e] == 0),
        "received_twice": sum(1 for e in wanted if counts[e] > 1),
    }
    out["ok"] = (
        out["delivery_rows"] == out["events"]
        and out["events_without_delivery"] == out["events_with_two_deliveries"] == 0
        and out["not_succeeded"] == out["never_received"] == out["received_twice"] == 0
    )
    return out


def one_outcome_check(db: Db, merchant_id: str, since: datetime) -> dict[str, Any]:
    """No payment of the window got its outcome twice (two replicas racing on one webhook, say)."""
    twice = int(
        db.value(
            "SELECT count(*) FROM (SELECT payment_id FROM events WHERE merchant_id = $1 "
            "AND created_at >= $2 AND type = 'payment.succeeded' GROUP BY payment_id HAVING count(*) > 1) t",
            merchant_id,
            since,
        )
    )
    return {"payments_succeeded_twice": twice, "ok": twice == 0}


def redis_clients(url: str) -> int:
    import redis

    client = redis.Redis.from_url(url)
    try:
        return int(client.info("clients")["connected_clients"])
    finally:
        with contextlib.suppress(Exception):
            client.close()
