"""GET /metrics on a port of its own, for the processes the `gateway` command starts.

`exporting(settings)` wraps what `gateway serve`, `gateway worker` and `gateway dev` run. With
GATEWAY_METRICS_PORT set it
- gives the run a fresh directory for prometheus_client's multiprocess files and names it in
  PROMETHEUS_MULTIPROC_DIR before any worker starts (uvicorn's workers are spawned: they inherit it).
  A directory the operator named there is used instead, emptied of earlier runs' files; ours is a
  new temporary one, removed at the end;
- serves the sum of every process's files on GATEWAY_METRICS_HOST:GATEWAY_METRICS_PORT (127.0.0.1
  by default: never the API's port, never public unless the operator says so), from a thread of
  the process that supervises the workers, so one scrape sees all of them;
- at each scrape, drops the live gauges of workers that died without saying so (SIGKILL): a worker
  that stops cleanly does it itself (metrics.process_exit), and counters of dead workers stay in the
  sums, as counters must;
- adds the deployment's backlogs, read from PostgreSQL at scrape time (one connection, three
  bounded statements): the outbound delivery queue and the reconciler's due payments and refunds.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import re
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import structlog
from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from gateway.db.database import Database
from gateway.metrics import MULTIPROC_ENV
from gateway.payments import repository as payments
from gateway.refunds import repository as refunds
from gateway.settings import DatabaseSettings, Settings
from gateway.webhooks.outbound import repository as deliveries

log = structlog.get_logger("gateway.metrics")

# Backlogs are counted up to this many rows each: a scrape never reads more, however deep the queue.
BACKLOG_CAP = 10_000
BACKLOG_TIMEOUT_SECONDS = 5.0
_LIVE_GAUGE_FILE = re.compile(r"gauge_live[a-z]+_(\d+)\.db$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _Processes:
    """Every process's files, summed; live gauges of processes that are gone are dropped first."""

    def __init__(self, directory: str):
        self.directory = directory
        self.files = MultiProcessCollector(None, path=directory)  # type: ignore[no-untyped-call]

    def collect(self) -> Iterable[Metric]:
        for path in glob.glob(os.path.join(self.directory, "gauge_live*.db")):
            found = _LIVE_GAUGE_FILE.search(path)
            if found and not _alive(int(found.group(1))):
                mark_process_dead(int(found.group(1)), self.directory)  # type: ignore[no-untyped-call]
        metrics: Iterable[Metric] = self.files.collect()  # type: ignore[no-untyped-call]
        return metrics


class _Backlog:
    """The queues in PostgreSQL, at scrape time: the same from every exporter of a deployment."""

    def __init__(self, database_url: str, database: DatabaseSettings):
        self.database_url = database_url
        # One connection, as the deployment connects (through PgBouncer or not).
        self.database = database.model_copy(update={"pool_size": 1})

    async def _read(self) -> tuple[deliveries.Queue, int, int]:
        async with asyncio.timeout(BACKLOG_TIMEOUT_SECONDS):
            db = await Database.connect(self.database_url, self.database)
            try:
                return (
                    await deliveries.queue(db, BACKLOG_CAP),
                    await payments.count_due_for_reconcile(db, BACKLOG_CAP),
                    await refunds.count_due_for_reconcile(db, BACKLOG_CAP),
                )
            finally:
                await db.close()

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily(
            "gateway_backlog_up", "1 if PostgreSQL answered this scrape's backlog queries, else 0."
        )
        try:
            # The scrape runs in the exporter's own thread: a loop of its own, for this scrape only.
            queue, due_payments, due_refunds = asyncio.run(self._read())
        except Exception as e:
            log.warning("metrics_backlog_unavailable", error=type(e).__name__)
            up.add_metric([], 0)
            return [up]
        up.add_metric([], 1)
        depth = GaugeMetricFamily(
            "gateway_webhook_delivery_queue_depth",
            f"Outbound deliveries pending: due now (sending included) or scheduled for a retry "
            f"(counted up to {BACKLOG_CAP} in all).",
            labels=["state"],
        )
        depth.add_metric(["due"], queue.due)
        depth.add_metric(["scheduled"], queue.scheduled)
        lag = GaugeMetricFamily(
            "gateway_webhook_delivery_lag_seconds",
            "How long the oldest due outbound delivery has been waiting (0: none is due).",
            value=queue.oldest_due_seconds,
        )
        backlog = GaugeMetricFamily(
            "gateway_reconciler_backlog",
            f"Unsettled payments and refunds due for a question to their provider (counted up to "
            f"{BACKLOG_CAP} each).",
            labels=["object"],
        )
        backlog.add_metric(["payment"], due_payments)
        backlog.add_metric(["refund"], due_refunds)
        return [up, depth, lag, backlog]


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not worth a log line each."""


def _only_metrics(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    def serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/metrics":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"Not Found: the metrics are at /metrics\n"]
        return app(environ, start_response)

    return serve


def _directory() -> tuple[str, bool]:
    """The run's directory, and whether it is ours to remove at the end."""
    named = os.environ.get(MULTIPROC_ENV)
    if named:
        os.makedirs(named, exist_ok=True)
        for path in glob.glob(os.path.join(named, "*.db")):  # an earlier run's counts are not ours
            os.remove(path)
        return named, False
    directory = tempfile.mkdtemp(prefix="gateway-metrics-")
    os.environ[MULTIPROC_ENV] = directory
    return directory, True


@contextlib.contextmanager
def exporting(settings: Settings) -> Iterator[None]:
    """Serves the metrics of the processes started in the block (nothing if GATEWAY_METRICS_PORT is 0)."""
    if not settings.metrics_port:
        yield
        return
    directory, owned = _directory()
    registry = CollectorRegistry()
    registry.register(_Processes(directory))
    if settings.database_url:
        registry.register(_Backlog(settings.database_url, settings.database))
    host, port = settings.metrics_host, settings.metrics_port
    _Server.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
    server = make_server(host, port, _only_metrics(make_wsgi_app(registry)), _Server, _Quiet)
    thread = threading.Thread(target=server.serve_forever, name="metrics-exporter", daemon=True)
    thread.start()
    log.info("metrics_serving", url=f"http://{host}:{port}/metrics", directory=directory)
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        if owned:
            shutil.rmtree(directory, ignore_errors=True)
            os.environ.pop(MULTIPROC_ENV, None)
