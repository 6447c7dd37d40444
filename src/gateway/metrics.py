"""Prometheus metrics: what each gateway process counts, for the exporter to sum.

Off unless the process runs under the exporter (`GATEWAY_METRICS_PORT`, gateway/metrics_server.py):
every recording function below then returns at once, and the request middleware pays one global
read. On, the metrics are prometheus_client's multiprocess kind: each process (every uvicorn worker,
`gateway worker`) writes its samples into memory-mapped files in PROMETHEUS_MULTIPROC_DIR, and the
exporter sums the files of all of them at scrape time, so several workers count as one gateway.

Labels never carry ids: HTTP requests are labelled with their route's template
(`/v1/payments/{payment_id}`), never the raw path, and every other label comes from a closed set
(providers, operations, statuses, outcomes, exception class names).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, MutableMapping
from typing import Any

import structlog
from prometheus_client import Counter, Gauge, Histogram, values
from prometheus_client import multiprocess as _multiprocess

log = structlog.get_logger("gateway.metrics")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# From about a millisecond (a read, a replay) to the 10 s a slow client may take.
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Providers answer in tens of ms to tens of seconds (GATEWAY_PROVIDER_TIMEOUT_SECONDS is 20 s).
PROVIDER_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"  # the route label of a request no route answers (404)


class _Metrics:
    """The metric objects, built once per process when the exporter is on."""

    def __init__(self) -> None:
        # registry=None: in multiprocess mode the exporter reads the files, never a registry of ours.
        self.http_requests = Counter(
            "gateway_http_requests_total",
            "HTTP requests answered, by method, route template and status.",
            ("method", "route", "status"),
            registry=None,
        )
        self.http_duration = Histogram(
            "gateway_http_request_duration_seconds",
            "Time from a request's arrival to the end of its answer (a stream: its whole length).",
            ("method", "route", "status"),
            buckets=HTTP_BUCKETS,
            registry=None,
        )
        self.payments_created = Counter(
            "gateway_payments_created_total", "Payments created, by provider.", ("provider",), registry=None
        )
        self.payment_transitions = Counter(
            "gateway_payment_transitions_total",
            "Payment status changes committed, by provider, previous status and new status.",
            ("provider", "from", "to"),
            registry=None,
        )
        self.payment_rejections = Counter(
            "gateway_payment_transitions_rejected_total",
            "Status changes the state machine refused (illegal_transition, amount_mismatch).",
            ("provider", "reason"),
            registry=None,
        )
        self.provider_duration = Histogram(
            "gateway_provider_request_duration_seconds",
            "Provider calls (payments, refunds, status queries) and their duration, failed ones included.",
            ("provider", "operation"),
            buckets=PROVIDER_BUCKETS,
            registry=None,
        )
        self.provider_errors = Counter(
            "gateway_provider_errors_total",
            "Provider calls that raised, by provider, operation and error (ProviderUnavailable, "
            "ProviderTimedOut, ProviderMisconfigured, ...). Declines are answers, not errors.",
            ("provider", "operation", "error"),
            registry=None,
        )
        self.webhooks_received = Counter(
            "gateway_inbound_webhooks_received_total",
            "Provider webhooks received: events accepted (stored) or duplicate, calls rejected "
            "(signature) or malformed.",
            ("provider", "outcome"),
            registry=None,
        )
        self.webhooks_processed = Counter(
            "gateway_inbound_webhooks_processed_total",
            "Stored provider webhook events processed: processed, no_change, ignored, unmatched, stale, "
            "failed.",
            ("provider", "outcome"),
            registry=None,
        )
        self.delivery_attempts = Counter(
            "gateway_webhook_delivery_attempts_total",
            "Attempts to deliver an event to a merchant endpoint: succeeded, retrying (another attempt "
            "is scheduled) or failed (given up).",
            ("outcome",),
            registry=None,
        )
        self.processes = Gauge(
            "gateway_processes",
            "Gateway processes (API workers, `gateway worker`) alive and counting for this exporter.",
            registry=None,
            multiprocess_mode="livesum",
        )
        # (route id or template, method, status) -> its two HTTP children: the per-request lookup.
        self.http_children: dict[tuple[object, str, int], tuple[Any, Any]] = {}
        # For requests no route answered (idempotent replays, answered before routing): each
        # method's (regex, template), from the app's OpenAPI paths.
        self.path_table: dict[str, list[tuple[re.Pattern[str], str]]] = {}


_metrics: _Metrics | None = None


def enable() -> bool:
    """Turns counting on in this process, once; True if it is on. Needs PROMETHEUS_MULTIPROC_DIR
    (set by the exporter before the workers start): without it nothing would read what we count."""
    global _metrics
    if _metrics is not None:
        return True
    if not os.environ.get(MULTIPROC_ENV):
        log.warning(
            "metrics_not_exported",
            detail="GATEWAY_METRICS_PORT is set but this process was not started by `gateway serve`, "
            "`gateway worker` or `gateway dev`, which export the metrics: nothing is counted",
        )
        return False
    # prometheus_client picks its value class when first imported; the directory may have been set
    # after that (the CLI imports the gateway before it starts the exporter).
    if not getattr(values.ValueClass, "_multiprocess", False):
        values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
    _metrics = _Metrics()
    _metrics.processes.set(1)
    return True


def process_exit() -> None:
    """This process stops counting: its live gauges leave the exporter's sums (counters stay)."""
    directory = os.environ.get(MULTIPROC_ENV)
    if _metrics is not None and directory:
        _multiprocess.mark_process_dead(os.getpid(), directory)  # type: ignore[no-untyped-call]


# --- HTTP ------------------------------------------------------------------------------------------


def learn_routes(app: Any) -> None:
    """The templates of the app's operations, for requests answered before routing (a replay's
    route is the one its first request took). Built once at startup: the OpenAPI document lists
    every operation with its full path (generating it takes a moment; it is then cached)."""
    m = _metrics
    if m is None or m.path_table:
        return
    try:
        paths = app.openapi()["paths"]
    except Exception:  # the app still serves; such requests are counted as `unmatched`
        log.exception("metrics_routes_unknown")
        return
    for template, operations in paths.items():
        pattern = re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$")
        for method in operations:
            m.path_table.setdefault(method.upper(), []).append((pattern, template))


def _template(m: _Metrics, scope: MutableMapping[str, Any], route: object) -> str:
    if route is not None:
        # The route's own path lacks the prefixes of the routers it was included under: they are
        # what precedes its segments in the path it matched.
        own: str = getattr(route, "path", "")
        segments = own.count("/")
        return ("/".join(scope["path"].split("/")[:-segments]) if segments else "") + own
    for pattern, template in m.path_table.get(scope["method"], ()):
        if pattern.match(scope["path"]):
            return template
    return UNMATCHED


def _children(m: _Metrics, scope: MutableMapping[str, Any], status: int) -> tuple[Any, Any]:
    """The two HTTP children of a request, from the cache after the first of its kind. Keys are
    bounded: a route (by id: routes compare by value and are unhashable; each lives as long as the
    app) or a template, times a known method, times a status."""
    route = scope.get("route")
    method = scope["method"] if scope["method"] in _METHODS else "other"
    key: tuple[object, str, int] = (id(route), method, status)
    if route is None:
        key = (_template(m, scope, None), method, status)
    children = m.http_children.get(key)
    if children is None:
        names = (method, _template(m, scope, route) if route is not None else str(key[0]), str(status))
        children = m.http_children[key] = (m.http_requests.labels(*names), m.http_duration.labels(*names))
    return children


def observe_request(scope: MutableMapping[str, Any], status: int, seconds: float) -> None:
    """Counts an answered request (called by the request-id middleware, which times it anyway)."""
    m = _metrics
    if m is None:
        return
    try:
        requests, duration = _children(m, scope, status)
        requests.inc()
        duration.observe(seconds)
    except Exception:  # counting never fails a request
        log.exception("metrics_request_not_counted")


# --- Payments: counted from the events a transaction committed ------------------------------------


def count_events(events: Iterable[dict[str, Any]]) -> None:
    """Payments created and moved, from the events each committed transaction carries: the state
    machine appends one per change in the same transaction, so these counts are of committed changes
    only, from the one place they happen."""
    m = _metrics
    if m is None:
        return
    try:
        for event in events:
            kind = event["type"]
            if not kind.startswith("payment."):
                continue
            provider = event["data"]["provider"]
            if kind == "payment.created":
                m.payments_created.labels(provider).inc()
            elif kind == "payment.rerouted":  # no status change: the attempts carry it
                continue
            elif kind == "payment.transition_rejected":
                m.payment_rejections.labels(provider, event["data"]["rejected"]["reason"]).inc()
            else:
                m.payment_transitions.labels(provider, event["previous_status"], event["status"]).inc()
    except Exception:  # after the commit: the request has succeeded, whatever happens here
        log.exception("metrics_events_not_counted")


def counting_events(
    on_commit: Callable[[list[dict[str, Any]]], None],
) -> Callable[[list[dict[str, Any]]], None]:
    """`on_commit` (the live publisher), counting the payments' events first when metrics are on."""
    if _metrics is None:
        return on_commit

    def count_then(events: list[dict[str, Any]]) -> None:
        count_events(events)
        on_commit(events)

    return count_then


# --- Providers, webhooks, deliveries ---------------------------------------------------------------


def provider_call(provider: str, operation: str, seconds: float, error: str | None) -> None:
    m = _metrics
    if m is None:
        return
    m.provider_duration.labels(provider, operation).observe(seconds)
    if error is not None:
        m.provider_errors.labels(provider, operation, error).inc()


def webhook_received(provider: str, outcome: str, count: int = 1) -> None:
    """outcome: accepted, duplicate (per event), rejected, malformed, unverifiable (per call)."""
    if _metrics is not None and count:
        _metrics.webhooks_received.labels(provider, outcome).inc(count)


def webhook_processed(provider: str, outcome: str) -> None:
    if _metrics is not None:
        _metrics.webhooks_processed.labels(provider, outcome).inc()


def delivery_attempt(outcome: str) -> None:
    """outcome: succeeded, retrying, failed."""
    if _metrics is not None:
        _metrics.delivery_attempts.labels(outcome).inc()
