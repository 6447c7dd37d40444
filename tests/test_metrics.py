"""GET /metrics of real `gateway serve --workers 2`, `gateway worker` and `gateway dev` processes,
scraped on their metrics port and read with prometheus_client's own parser.

Each process runs on a database of its own (created and migrated here, on the session's server), so
no other test's payments, webhooks or deliveries reach its counters and every count is exact.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from gateway.cli import run_migrations
from gateway.db.database import Database
from gateway.embedded import EmbeddedServers, free_port
from gateway.merchants.service import create_merchant
from gateway.settings import DatabaseSettings
from receiver import Receiver, running_receiver
from support import Merchant, wait_for

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Every sample of an exposition, keyed by (name, sorted labels)."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def of(samples: Samples, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The samples of one metric, by their labels."""
    return {labels: v for (n, labels), v in samples.items() if n == name}


def labels(**kv: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(kv.items()))


@contextlib.asynccontextmanager
async def fresh_database(servers: EmbeddedServers) -> AsyncIterator[str]:
    """A new, migrated database on the session's PostgreSQL, dropped afterwards."""
    name = f"metrics_{uuid.uuid4().hex[:12]}"
    admin = await Database.connect(servers.postgres.url, DatabaseSettings(pool_size=1))
    try:
        await admin.execute(f"CREATE DATABASE {name}")
        url = servers.postgres.url.rsplit("/", 1)[0] + f"/{name}"
        await asyncio.to_thread(run_migrations, url)
        yield url
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()


async def new_merchant(url: str) -> Merchant:
    db = await Database.connect(url, DatabaseSettings(pool_size=1))
    try:
        m = await create_merchant(db, "Metrics shop")
        return Merchant(m.merchant_id, m.secret_key)
    finally:
        await db.close()


def gateway_env(database_url: str, redis_url: str, **settings: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "PROMETHEUS_"))}
    return base | {
        "GATEWAY_DATABASE_URL": database_url,
        "GATEWAY_REDIS_URL": redis_url,
        "GATEWAY_LOG_LEVEL": "INFO",
        **settings,
    }


@contextlib.contextmanager
def gateway_process(cwd: Path, env: dict[str, str], *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m gateway.cli ARGS` in `cwd` (no .env there), its log in cwd/gateway.log; stopped
    with SIGTERM at the end."""
    log = (cwd / "gateway.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", *args], env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


async def scrape(port: int) -> Samples:
    async with httpx.AsyncClient(timeout=10) as c:
        r = await c.get(f"http://127.0.0.1:{port}/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(r.text)


async def wait_for_metric(port: int, name: str, want: Mapping[tuple[tuple[str, str], ...], float]) -> Samples:
    """Scrapes until `name`'s samples include `want` (work the gateway does after answering)."""
    found: Samples = {}

    async def there() -> bool:
        nonlocal found
        found = await scrape(port)
        got = of(found, name)
        return all(got.get(k) == v for k, v in want.items())

    await wait_for(there, timeout=20)
    return found


def per_process(directory: str, name: str, label_set: tuple[tuple[str, str], ...]) -> dict[int, float]:
    """`name{label_set}` as each process's own file holds it (copied out one by one and read with
    prometheus_client's own collector)."""
    out: dict[int, float] = {}
    for path in glob.glob(os.path.join(directory, "counter_*.db")):
        pid = int(Path(path).stem.split("_")[1])
        with tempfile.TemporaryDirectory() as alone:
            shutil.copy(path, alone)
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=alone)  # type: ignore[no-untyped-call]
            out[pid] = registry.get_sample_value(name, dict(label_set)) or 0.0
    return out


@dataclass
class Served:
    api: str
    metrics_port: int
    directory: str
    merchant: Merchant
    receiver: Receiver
    failing: Receiver
    process: subprocess.Popen[bytes]


@pytest.fixture(scope="module")
async def served(servers: EmbeddedServers, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Served]:
    """`gateway serve --workers 2` with metrics on, on a database of its own. Its multiprocess
    directory is named here (PROMETHEUS_MULTIPROC_DIR), so the tests can read each worker's files;
    a file left in it by an earlier run must be gone once it has started."""
    cwd = tmp_path_factory.mktemp("serve")
    directory = cwd / "multiproc"
    directory.mkdir()
    (directory / "counter_999999.db").write_bytes(b"an earlier run's")
    port, metrics_port = free_port(), free_port()
    async with (
        fresh_database(servers) as url,
        running_receiver() as receiver,
        running_receiver(default=500) as failing,
    ):
        merchant = await new_merchant(url)
        env = gateway_env(
            url,
            servers.redis.url,
            GATEWAY_PORT=str(port),
            GATEWAY_METRICS_PORT=str(metrics_port),
            PROMETHEUS_MULTIPROC_DIR=str(directory),
            GATEWAY_SANDBOX__ACTION_DELAY_SECONDS="0.2",
            GATEWAY_SANDBOX__RECONCILE_AFTER_SECONDS="0",
            GATEWAY_RECONCILER__RUN_IN_PROCESS="false",  # its backlog stays as the tests leave it
            GATEWAY_DELIVERY__ALLOW_PRIVATE_TARGETS="true",
            GATEWAY_DELIVERY__POLL_INTERVAL_SECONDS="0.05",
            GATEWAY_DELIVERY__RETRY_SCHEDULE="[0, 3600]",  # a failed attempt waits in the queue
            GATEWAY_API_KEY_CACHE_SECONDS="0",
        )
        with gateway_process(cwd, env, "serve", "--workers", "2") as proc:
            api = f"http://127.0.0.1:{port}"

            async def up() -> bool:
                assert proc.poll() is None, (cwd / "gateway.log").read_text()
                try:
                    async with httpx.AsyncClient(timeout=5) as c:
                        ready = (await c.get(f"{api}/readyz")).status_code == 200
                except httpx.TransportError:
                    return False
                processes = of(await scrape(metrics_port), "gateway_processes")
                return ready and processes == {(): 2.0}  # both workers have started counting

            await wait_for(up, timeout=90)
            yield Served(api, metrics_port, str(directory), merchant, receiver, failing, proc)


async def test_a_scrape_counts_exactly_what_happened(served: Served) -> None:
    assert not (Path(served.directory) / "counter_999999.db").exists()  # cleaned at start
    auth = served.merchant.auth
    async with httpx.AsyncClient(base_url=served.api, timeout=30) as c:
        r = await c.post(
            "/v1/webhook-endpoints",
            json={"url": served.receiver.url, "enabled_events": ["payment.succeeded"]},
            headers=auth,
        )
        assert r.status_code == 201, r.text
        r = await c.post(
            "/v1/webhook-endpoints",
            json={"url": served.failing.url, "enabled_events": ["payment.requires_action"]},
            headers=auth,
        )
        assert r.status_code == 201, r.text
        # A payment that succeeds at once, and its idempotent replay (answered before routing).
        body = {"amount": 5000, "currency": "KES", "provider": "sandbox", "payment_method": "pm_success"}
        key = {"Idempotency-Key": str(uuid.uuid4())}
        paid = await c.post("/v1/payments", json=body, headers=auth | key)
        assert (paid.status_code, paid.json()["status"]) == (201, "succeeded")
        replay = await c.post("/v1/payments", json=body, headers=auth | key)
        assert (replay.status_code, replay.headers["idempotent-replayed"]) == (201, "true")
        # A partial refund.
        refund = await c.post(
            f"/v1/payments/{paid.json()['id']}/refunds",
            json={"amount": 2000},
            headers=auth | {"Idempotency-Key": str(uuid.uuid4())},
        )
        assert (refund.status_code, refund.json()["status"]) == (201, "succeeded")
        # A provider error: the payment stays pending.
        failed = await c.post(
            "/v1/payments",
            json=body | {"payment_method": "pm_provider_error"},
            headers=auth | {"Idempotency-Key": str(uuid.uuid4())},
        )
        assert (failed.status_code, failed.json()["code"]) == (502, "provider_error")
        # A payment the sandbox settles by a signed webhook to this gateway.
        action = await c.post(
            "/v1/payments",
            json=body | {"payment_method": "pm_action_success"},
            headers=auth | {"Idempotency-Key": str(uuid.uuid4())},
        )
        assert (action.status_code, action.json()["status"]) == (201, "requires_action")
        polls = 0

        async def settled() -> bool:
            nonlocal polls
            polls += 1
            got = await c.get(f"/v1/payments/{action.json()['id']}", headers=auth)
            return bool(got.json()["status"] == "succeeded")

        await wait_for(settled, timeout=20)
        # A forged webhook, an unknown path, a payment that does not exist.
        forged = await c.post("/v1/webhooks/sandbox", content=b'{"type": "payment.succeeded"}')
        assert forged.status_code == 401
        assert (await c.get("/v1/nowhere", headers=auth)).status_code == 404
        assert (await c.get("/v1/payments/pay_doesnotexist000000000", headers=auth)).status_code == 404

    async def delivered() -> bool:  # two payments succeeded; one asked for the customer's action
        return (len(served.receiver.received), len(served.failing.received)) == (2, 1)

    await wait_for(delivered)
    attempts = {labels(outcome="succeeded"): 2, labels(outcome="retrying"): 1}
    samples = await wait_for_metric(served.metrics_port, "gateway_webhook_delivery_attempts_total", attempts)

    def post(route: str, status: str) -> tuple[tuple[str, str], ...]:
        return labels(method="POST", route=route, status=status)

    http = of(samples, "gateway_http_requests_total")
    assert http[post("/v1/webhook-endpoints", "201")] == 2
    assert http[post("/v1/payments", "201")] == 3  # the replay is counted under its route too
    assert http[post("/v1/payments", "502")] == 1
    assert http[post("/v1/payments/{payment_id}/refunds", "201")] == 1
    assert http[post("/v1/webhooks/{provider}", "200")] == 1  # the sandbox's own webhook
    assert http[post("/v1/webhooks/{provider}", "401")] == 1
    assert http[labels(method="GET", route="/v1/payments/{payment_id}", status="200")] == polls
    assert http[labels(method="GET", route="/v1/payments/{payment_id}", status="404")] == 1
    assert http[labels(method="GET", route="unmatched", status="404")] == 1
    assert not [v for k in http for _, v in k if "pay_" in v or "nowhere" in v]  # no ids, no raw paths
    durations = of(samples, "gateway_http_request_duration_seconds_count")
    assert durations[post("/v1/payments", "201")] == 3
    buckets = of(samples, "gateway_http_request_duration_seconds_bucket")
    assert buckets[labels(method="POST", route="/v1/payments", status="201", le="+Inf")] == 3

    assert of(samples, "gateway_payments_created_total") == {labels(provider="sandbox"): 3}
    assert of(samples, "gateway_payment_transitions_total") == {
        labels(provider="sandbox", **{"from": "pending", "to": "succeeded"}): 1,
        labels(provider="sandbox", **{"from": "succeeded", "to": "partially_refunded"}): 1,
        labels(provider="sandbox", **{"from": "pending", "to": "requires_action"}): 1,
        labels(provider="sandbox", **{"from": "requires_action", "to": "succeeded"}): 1,
    }
    assert of(samples, "gateway_payment_transitions_rejected_total") == {}
    assert of(samples, "gateway_provider_request_duration_seconds_count") == {
        labels(provider="sandbox", operation="create_payment"): 3,
        labels(provider="sandbox", operation="refund_payment"): 1,
    }
    assert of(samples, "gateway_provider_errors_total") == {
        labels(provider="sandbox", operation="create_payment", error="ProviderUnavailable"): 1
    }
    assert of(samples, "gateway_inbound_webhooks_received_total") == {
        labels(provider="sandbox", outcome="accepted"): 1,
        labels(provider="sandbox", outcome="rejected"): 1,
    }
    assert of(samples, "gateway_inbound_webhooks_processed_total") == {
        labels(provider="sandbox", outcome="processed"): 1
    }
    assert of(samples, "gateway_webhook_delivery_attempts_total") == attempts
    # Read from PostgreSQL at the scrape: the failed delivery waits for its retry in an hour; the
    # payment the provider error left pending is due for the reconciler, which does not run here.
    assert of(samples, "gateway_backlog_up") == {(): 1}
    assert of(samples, "gateway_webhook_delivery_queue_depth") == {
        labels(state="due"): 0,
        labels(state="scheduled"): 1,
    }
    assert of(samples, "gateway_webhook_delivery_lag_seconds") == {(): 0}
    assert of(samples, "gateway_reconciler_backlog") == {
        labels(object="payment"): 1,
        labels(object="refund"): 0,
    }
    assert of(samples, "gateway_processes") == {(): 2}


async def test_the_counts_of_both_workers_are_summed(served: Served) -> None:
    healthz = labels(method="GET", route="/healthz", status="200")
    sent = 0
    # A new connection per request: the kernel hands them to both workers (until each has some).
    async with httpx.AsyncClient(base_url=served.api, limits=httpx.Limits(max_keepalive_connections=0)) as c:
        for _ in range(50):
            answers = await asyncio.gather(*(c.get("/healthz") for _ in range(10)))
            assert [r.status_code for r in answers] == [200] * 10
            sent += 10
            counts = per_process(served.directory, "gateway_http_requests_total", healthz)
            if len([v for v in counts.values() if v > 0]) == 2:
                break
    assert len([v for v in counts.values() if v > 0]) == 2, counts
    assert sum(counts.values()) == sent
    samples = await scrape(served.metrics_port)
    assert of(samples, "gateway_http_requests_total")[healthz] == sent


async def test_metrics_are_not_on_the_api_port_nor_beyond_loopback(served: Served) -> None:
    async with httpx.AsyncClient(timeout=10) as c:
        r = await c.get(f"{served.api}/metrics")
        assert (r.status_code, r.json()["code"]) == (404, "not_found")
        other = await c.get(f"http://127.0.0.1:{served.metrics_port}/")
        assert other.status_code == 404
        # Bound to 127.0.0.1 only: another loopback address of this machine finds no one.
        with pytest.raises(httpx.ConnectError):
            await c.get(f"http://127.0.0.2:{served.metrics_port}/metrics")


async def test_a_killed_worker_leaves_the_live_count(served: Served) -> None:
    """uvicorn replaces a SIGKILLed worker; the exporter drops the dead one's live gauge itself."""
    gauges = glob.glob(os.path.join(served.directory, "gauge_livesum_*.db"))
    pids = {int(Path(p).stem.rsplit("_", 1)[1]) for p in gauges}
    assert len(pids) == 2
    victim = min(pids)
    os.kill(victim, signal.SIGKILL)

    async def replaced() -> bool:
        samples = await scrape(served.metrics_port)
        now = {
            int(Path(p).stem.rsplit("_", 1)[1]) for p in glob.glob(f"{served.directory}/gauge_livesum_*.db")
        }
        return of(samples, "gateway_processes") == {(): 2} and victim not in now and len(now) == 2

    await wait_for(replaced, timeout=60)
    # Its counters stay: the healthz requests of the test before are still all there.
    samples = await scrape(served.metrics_port)
    assert (
        of(samples, "gateway_http_requests_total")[labels(method="GET", route="/healthz", status="200")] >= 10
    )


async def test_gateway_worker_exports_its_own_metrics_and_cleans_up(
    servers: EmbeddedServers, tmp_path: Path
) -> None:
    metrics_port = free_port()
    async with fresh_database(servers) as url:
        env = gateway_env(url, servers.redis.url, GATEWAY_METRICS_PORT=str(metrics_port))
        with gateway_process(tmp_path, env, "worker") as proc:
            log = tmp_path / "gateway.log"

            async def serving() -> bool:
                assert proc.poll() is None, log.read_text()
                return b"gateway_started" in log.read_bytes()

            await wait_for(serving, timeout=60)
            [directory] = [
                json.loads(line)["directory"]
                for line in log.read_text().splitlines()
                if '"metrics_serving"' in line
            ]
            assert Path(directory).is_dir()
            samples = await scrape(metrics_port)
            assert of(samples, "gateway_processes") == {(): 1}
            assert of(samples, "gateway_backlog_up") == {(): 1}
            assert of(samples, "gateway_reconciler_backlog") == {
                labels(object="payment"): 0,
                labels(object="refund"): 0,
            }
            assert of(samples, "gateway_webhook_delivery_queue_depth") == {
                labels(state="due"): 0,
                labels(state="scheduled"): 0,
            }
        assert proc.returncode == 0, log.read_text()
        assert not Path(directory).exists()  # its own directory, removed at exit
    with socket.socket() as s:  # and its port closed
        assert s.connect_ex(("127.0.0.1", metrics_port)) != 0


async def test_gateway_dev_counts_in_its_one_process(servers: EmbeddedServers, tmp_path: Path) -> None:
    """One process, which imported prometheus_client before its exporter named the directory."""
    port, metrics_port = free_port(), free_port()
    async with fresh_database(servers) as url:
        env = gateway_env(
            url, servers.redis.url, GATEWAY_METRICS_PORT=str(metrics_port), GATEWAY_DATA_DIR=str(tmp_path)
        )
        with gateway_process(tmp_path, env, "dev", "--port", str(port)) as proc:

            async def up() -> bool:
                assert proc.poll() is None, (tmp_path / "gateway.log").read_text()
                try:
                    async with httpx.AsyncClient(timeout=5) as c:
                        return (await c.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_for(up, timeout=90)
            samples = await scrape(metrics_port)
            assert of(samples, "gateway_processes") == {(): 1}
            healthz = of(samples, "gateway_http_requests_total")[
                labels(method="GET", route="/healthz", status="200")
            ]
            assert healthz == 1  # the one that answered 200 (earlier tries found no server)
        assert proc.returncode == 0, (tmp_path / "gateway.log").read_text()
