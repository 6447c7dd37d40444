"""`make bench-scaleout` (or `BENCH_SCALEOUT=1 make bench`): the gateway as operators scale it out.

Replicas of the gateway, each a `uvicorn --workers N` process group with its own `gateway worker`
process, share ONE PostgreSQL (reached through PgBouncer in transaction mode, as managed PostgreSQL
usually is) and ONE Redis. For each layout (replicas x workers per replica) it measures, with two wrk
processes splitting the connections across the replicas:

- throughput and CPU per request: the API processes, the `gateway worker` processes (deliveries),
  PgBouncer, PostgreSQL and Redis, each apart;
- exactly-once: every 201 is one payment (rows against wrk's 201s, no Idempotency-Key twice), every
  payment.succeeded event is delivered once to the merchant's endpoint (a receiver in bench/receiver.py),
  every event reaches the live stream (`GET /v1/events/stream`) held open on EVERY replica, once, and
  no payment gets its outcome twice. Provider webhooks (the sandbox's) go to the NEXT replica, as a
  load balancer would send them, so completions cross replicas.

Writes bench/results/<date>-scaleout.json and .md. bench/README.md, "Scale-out", says how to read it.

Environment (all optional; the bench's own knobs where they apply):
  BENCH_SCALEOUT_LAYOUTS=1x1,2x1,1x2   replicas x uvicorn workers per replica
  BENCH_SCALEOUT_CONNECTIONS=16        wrk connections in all (split across two wrk processes)
  BENCH_SCALEOUT_SCENARIOS=create,async
  BENCH_SCALEOUT_PGBOUNCER=0           straight to PostgreSQL instead of through PgBouncer
  BENCH_DURATION (8; quick 5), BENCH_WARMUP (3; quick 2), BENCH_QUICK, BENCH_KEEP, BENCH_NOTE,
  BENCH_GATEWAY_ENV (settings to try)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from bench import exactly_once as check
from bench.infra import (
    RESULTS_DIR,
    ROOT,
    BenchError,
    Db,
    Processes,
    Servers,
    cpu_snapshot,
    git_facts,
    install_signal_handlers,
    machine_facts,
    managed_processes,
    package_versions,
    say,
    start_app,
    wrk_binary,
)
from bench.replicas import SCENARIOS, Layout, Replica, Stack
from bench.run import (
    ACTION_DELAY_SECONDS,
    ACTION_JSON,
    Context,
    background_load,
    create_bench_merchant,
    extra_gateway_env,
    server_facts,
)
from bench.scaleout_report import markdown
from gateway.embedded_pgbouncer import EmbeddedPgBouncer, start_pgbouncer

# The merchant's endpoint takes one event per payment: the outcome every scenario produces.
DELIVERED_EVENT = "payment.succeeded"
DRAIN_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Config:
    layouts: list[Layout]
    connections: int
    scenarios: list[str]
    duration: float
    warmup: float
    pgbouncer: bool
    quick: bool
    keep: bool

    @classmethod
    def from_env(cls) -> Config:
        env = os.environ.get
        quick = env("BENCH_QUICK", "") not in ("", "0")
        scenarios = [s for s in env("BENCH_SCALEOUT_SCENARIOS", "create,async").split(",") if s.strip()]
        if unknown := [s for s in scenarios if s not in SCENARIOS]:
            raise BenchError(f"BENCH_SCALEOUT_SCENARIOS: unknown {unknown} (known: {sorted(SCENARIOS)})")
        return cls(
            layouts=[Layout.parse(t) for t in env("BENCH_SCALEOUT_LAYOUTS", "1x1,2x1,1x2").split(",")],
            connections=int(env("BENCH_SCALEOUT_CONNECTIONS", "16")),
            scenarios=scenarios,
            duration=float(env("BENCH_DURATION", "") or (5 if quick else 8)),
            warmup=float(env("BENCH_WARMUP", "") or (2 if quick else 3)),
            pgbouncer=env("BENCH_SCALEOUT_PGBOUNCER", "1") not in ("", "0"),
            quick=quick,
            keep=env("BENCH_KEEP", "") not in ("", "0"),
        )


class ScaleOut:
    """The layouts, one after the other, on one stack: each started, checked, loaded, drained and
    judged exactly-once, then stopped."""

    def __init__(self, cfg: Config, procs: Processes, servers: Servers, bouncer: EmbeddedPgBouncer | None):
        self.cfg, self.procs = cfg, procs
        run_dir = servers.root.parent
        self.db = Db(servers.postgres.url)
        self.merchant_id, self.api_key = asyncio.run(create_bench_merchant(servers.postgres.url))
        ctx = Context(self.db, self.merchant_id, self.api_key, run_dir)
        self.stack = Stack(procs, servers, bouncer, run_dir, ctx, cfg.connections)
        self.receiver = start_app(
            procs, "receiver", "bench.receiver:create_app", 1, dict(os.environ), run_dir, "/ids"
        )
        self.endpoint_made = False

    def sanity(self, replicas: list[Replica]) -> None:
        """Before anything is timed: the endpoint exists, and a payment made on the first replica is
        completed by the sandbox's webhook through the next one."""
        auth = {"Authorization": f"Bearer {self.api_key}"}
        with httpx.Client(base_url=replicas[0].api.base_url, headers=auth, timeout=15) as c:
            if not self.endpoint_made:
                body = {"url": f"{self.receiver.base_url}/hook", "enabled_events": [DELIVERED_EVENT]}
                r = c.post("/v1/webhook-endpoints", json=body)
                if r.status_code != 201:
                    raise BenchError(f"webhook endpoint: HTTP {r.status_code}: {r.text[:300]}")
                self.endpoint_made = True
            key = f"scaleout-check-{uuid.uuid4().hex}"
            headers = {"Idempotency-Key": key, "Content-Type": "application/json"}
            r = c.post("/v1/payments", content=ACTION_JSON, headers=headers)
            if r.status_code != 201:
                raise BenchError(f"sanity create: HTTP {r.status_code}: {r.text[:300]}")
            payment_id = r.json()["id"]
            check.wait_until(
                "the sandbox's webhook through the next replica",
                lambda: c.get(f"/v1/payments/{payment_id}").json()["status"] == "succeeded",
                15,
            )
        drained = lambda: check.pending_deliveries(self.db, self.merchant_id) == 0  # noqa: E731
        check.wait_until("the sanity payment's delivery", drained, 60)

    def layout(self, layout: Layout) -> dict[str, Any]:
        say(f"\n== {layout.name}: {layout.replicas} replica(s), {layout.workers} uvicorn worker(s) each")
        replicas = self.stack.start_replicas(layout)
        witnesses: list[check.StreamWitness] = []
        try:
            self.sanity(replicas)
            witnesses = [check.StreamWitness(r.name, r.api.base_url, self.api_key) for r in replicas]
            for w in witnesses:
                w.start()
            since = self.db.value("SELECT clock_timestamp()")
            worker_before = cpu_snapshot(self.stack.roots(replicas))
            runs = []
            for scenario in self.cfg.scenarios:
                for phase in ("warmup", "measured") if self.cfg.warmup > 0 else ("measured",):
                    duration = self.cfg.warmup if phase == "warmup" else self.cfg.duration
                    record = self.stack.one_run(layout, replicas, scenario, phase, duration)
                    runs.append(record)
                    if phase == "measured":
                        done = record.get("completed_per_s")
                        say(
                            f"  {layout.name} {scenario:6}: {record['rps']:7.0f} req/s  p99 "
                            f"{record['latency_ms_p99']:6.1f} ms  statuses {record['statuses']}"
                            + (f"  {done:.0f} completed/s" if done is not None else "")
                        )
            drained_in = check.wait_until(
                "outbound deliveries",
                lambda: check.pending_deliveries(self.db, self.merchant_id) == 0,
                DRAIN_TIMEOUT_S,
                interval=0.5,
            )
            worker_after = cpu_snapshot(self.stack.roots(replicas))
            time.sleep(2.0)  # the streams' last events are in flight
            events = check.events_since(self.db, self.merchant_id, since)
            received = httpx.get(f"{self.receiver.base_url}/ids", timeout=30).json()
            worker_cpu = sum(
                worker_after[k] - worker_before[k] for k in worker_after if k.endswith(" worker")
            )
            checks = {
                "payments": check.payments_check(self.db, self.merchant_id, runs),
                "deliveries": check.deliveries_check(
                    self.db, self.merchant_id, events, received, DELIVERED_EVENT
                ),
                "streams": check.streams_check(events, witnesses),
                "one_outcome": check.one_outcome_check(self.db, self.merchant_id, since),
            }
            for name, c in checks.items():
                say(f"  {layout.name} exactly-once, {name}: {'ok' if c['ok'] else 'FAILED'} {c}")
            return {
                "layout": layout.name,
                "replicas": layout.replicas,
                "workers": layout.workers,
                "runs": runs,
                "deliveries_drained_s": drained_in,
                "worker_cpu_s": round(worker_cpu, 3),
                "checks": checks,
            }
        finally:
            for r in replicas:
                self.procs.stop(r.api.proc)
                self.procs.stop(r.worker)
            for w in witnesses:
                w.stop()

    def close(self) -> None:
        self.db.close()


def main() -> int:
    try:
        return scaleout_main()
    except BenchError as e:
        say(f"\nscale-out bench failed: {e}")
        return 1


def scaleout_main() -> int:
    cfg = Config.from_env()
    install_signal_handlers()
    wrk_binary()
    from gateway.cli import run_migrations
    from gateway.logging import configure_logging

    configure_logging("WARNING", json=False)
    now = datetime.now(UTC)
    stamp = now.strftime("%Y-%m-%dT%H%M%SZ")
    run_dir = ROOT / ".data" / f"bench-scaleout-{stamp}"
    run_dir.mkdir(parents=True, exist_ok=True)
    servers = Servers(run_dir / "servers")
    t0 = time.monotonic()
    git = git_facts()
    names = ", ".join(lo.name for lo in cfg.layouts)
    say(f"scale-out bench: layouts {names}, {cfg.connections} connections, run dir {run_dir}")
    background = background_load()
    layouts: list[dict[str, Any]] = []
    bench: ScaleOut | None = None
    try:
        with managed_processes() as procs:
            bouncer: EmbeddedPgBouncer | None = None
            try:
                servers.start()
                if cfg.pgbouncer:
                    bouncer = start_pgbouncer(servers.postgres)
                run_migrations(servers.postgres.url)  # migrations straight to PostgreSQL, as in production
                bench = ScaleOut(cfg, procs, servers, bouncer)
                pg_settings, pg_version, redis_version = server_facts(bench.db, servers)
                for layout in cfg.layouts:
                    layouts.append(bench.layout(layout))
            finally:
                if bench is not None:
                    bench.close()
                procs.stop_all()
                if bouncer is not None:
                    bouncer.stop()
                servers.stop()
        data: dict[str, Any] = {
            "date": now.isoformat(timespec="seconds"),
            "kind": "scaleout",
            "note": os.environ.get("BENCH_NOTE", ""),
            "elapsed_s": round(time.monotonic() - t0, 1),
            "config": {
                "layouts": [lo.name for lo in cfg.layouts],
                "connections": cfg.connections,
                "scenarios": cfg.scenarios,
                "duration_s": cfg.duration,
                "warmup_s": cfg.warmup,
                "pgbouncer": cfg.pgbouncer,
                "pgbouncer_pool_size": bouncer.pool_size if bouncer is not None else None,
                "sandbox_action_delay_s": ACTION_DELAY_SECONDS,
                "gateway_env_extra": extra_gateway_env(),
            },
            "machine": machine_facts(),
            "versions": {"postgres": pg_version, "redis": redis_version, "packages": package_versions()},
            "postgres_settings": pg_settings,
            "background_load_cores": background,
            "git": git,
            "layouts": layouts,
        }
        md = markdown(data)
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        name = stamp + ("-quick" if cfg.quick else "") + "-scaleout"
        (RESULTS_DIR / f"{name}.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
        (RESULTS_DIR / f"{name}.md").write_text(md)
        print(md)
        say(f"wrote bench/results/{name}.json and .md in {data['elapsed_s']:.0f} s")
        if not cfg.keep:
            shutil.rmtree(run_dir, ignore_errors=True)
        failed = [c for lo in layouts for c in lo["checks"].values() if not c["ok"]]
        return 3 if failed else 0
    except BenchError as e:
        say(f"\nscale-out bench failed: {e}\n(server data and logs kept in {run_dir})")
        return 1
    except KeyboardInterrupt:
        if not cfg.keep:
            shutil.rmtree(run_dir, ignore_errors=True)
        say("\ninterrupted: every process the bench started has been stopped")
        return 130


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
