"""The replicas of the scale-out bench (bench/scaleout.py) and one load over them: their settings,
their processes, the CPU each group uses, and the connections the servers hold."""

from __future__ import annotations

import os
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import asyncpath
from bench import exactly_once as check
from bench.infra import (
    App,
    Load,
    Proc,
    Processes,
    Servers,
    children_cpu_seconds,
    cpu_snapshot,
    run_wrk,
    start_app,
)
from bench.run import (
    ACTION_DELAY_SECONDS,
    ACTION_JSON,
    BENCH_RATE_LIMIT,
    CREATE_JSON,
    Context,
    extra_gateway_env,
)
from gateway.embedded import free_port
from gateway.embedded_pgbouncer import EmbeddedPgBouncer

SCENARIOS = {
    "create": Load("POST", "/v1/payments", CREATE_JSON, "unique"),
    "async": Load("POST", "/v1/payments", ACTION_JSON, "unique"),
}


@dataclass(frozen=True)
class Layout:
    """R replicas, each `uvicorn --workers W` and one `gateway worker`."""

    replicas: int
    workers: int

    @property
    def name(self) -> str:
        return f"{self.replicas}x{self.workers}"

    @classmethod
    def parse(cls, text: str) -> Layout:
        replicas, _, workers = text.strip().partition("x")
        return cls(int(replicas), int(workers))


@dataclass
class Replica:
    name: str
    api: App
    worker: Proc


@dataclass
class Stack:
    """One PostgreSQL (behind PgBouncer, or not), one Redis, the bench merchant (`ctx`), and the
    processes started on them."""

    procs: Processes
    servers: Servers
    bouncer: EmbeddedPgBouncer | None
    run_dir: Path
    ctx: Context
    connections: int  # wrk's, in all
    nonce: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    run_no: int = 0

    @property
    def database_url(self) -> str:
        return self.bouncer.url if self.bouncer is not None else self.servers.postgres.url

    def env(self, port: int, public_port: int) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "FLOOR_"))}
        return env | {
            "GATEWAY_DATABASE_URL": self.database_url,
            "GATEWAY_DATABASE__PGBOUNCER": "true" if self.bouncer is not None else "false",
            "GATEWAY_REDIS_URL": self.servers.redis.url,
            "GATEWAY_LOG_LEVEL": "WARNING",
            "GATEWAY_HOST": "127.0.0.1",
            "GATEWAY_PORT": str(port),
            # The provider's callbacks reach the next replica, as a load balancer would send them.
            "GATEWAY_PUBLIC_URL": f"http://127.0.0.1:{public_port}",
            "GATEWAY_SANDBOX__ACTION_DELAY_SECONDS": str(ACTION_DELAY_SECONDS),
            "GATEWAY_RATE_LIMITS__TEST": f"{BENCH_RATE_LIMIT}/second",
            "GATEWAY_RATE_LIMITS__LIVE": f"{BENCH_RATE_LIMIT}/second",
            # As deploy/kubernetes runs it: deliveries and the reconciler in `gateway worker` only.
            "GATEWAY_DELIVERY__RUN_IN_PROCESS": "false",
            "GATEWAY_RECONCILER__RUN_IN_PROCESS": "false",
            "GATEWAY_DELIVERY__ALLOW_PRIVATE_TARGETS": "true",  # the receiver is on 127.0.0.1
            **extra_gateway_env(),
        }

    def start_replicas(self, layout: Layout) -> list[Replica]:
        ports = [free_port() for _ in range(layout.replicas)]
        replicas = []
        for i, port in enumerate(ports):
            name = f"replica{i + 1}"
            env = self.env(port, ports[(i + 1) % len(ports)])
            factory = "gateway.main:create_app"
            api = start_app(self.procs, name, factory, layout.workers, env, self.run_dir, "/readyz", port)
            worker = self.procs.start(
                f"{name} worker",
                [sys.executable, "-m", "gateway.cli", "worker"],
                env=env,
                cwd=self.run_dir,
                log_path=self.run_dir / f"{name}-worker-{layout.name}.log",
            )
            replicas.append(Replica(name, api, worker))
        return replicas

    def roots(self, replicas: list[Replica]) -> dict[str, int]:
        roots = dict(self.servers.pids())
        if self.bouncer is not None:
            roots["pgbouncer"] = int((self.bouncer.data_dir / "pgbouncer.pid").read_text().split()[0])
        for r in replicas:
            roots[f"{r.name} api"] = r.api.proc.pid
            roots[f"{r.name} worker"] = r.worker.pid
        return roots

    def one_run(
        self, layout: Layout, replicas: list[Replica], scenario: str, phase: str, duration: float
    ) -> dict[str, Any]:
        """Two wrk processes at once, half the connections each, on replicas 1 and 2 (or both on 1)."""
        self.run_no += 1
        halves = [self.connections // 2, self.connections - self.connections // 2]
        run_ids = [f"s{self.nonce}-{self.run_no}-{k}" for k in range(2)]
        roots = self.roots(replicas)
        started = datetime.now(UTC)
        before, clock, wrk_before = cpu_snapshot(roots), time.monotonic(), children_cpu_seconds()
        with ThreadPoolExecutor(2) as pool:
            futures = [
                pool.submit(
                    run_wrk,
                    self.procs,
                    replicas[k % len(replicas)].api.base_url,
                    SCENARIOS[scenario],
                    api_key=self.ctx.api_key,
                    connections=halves[k],
                    duration=duration,
                    run_id=run_ids[k],
                    threads=1,
                    count_statuses=True,
                )
                for k in range(2)
            ]
            results = [f.result() for f in futures]
        elapsed = time.monotonic() - clock
        after = cpu_snapshot(roots)
        ended = datetime.now(UTC)
        seconds = {k: round(after[k] - before[k], 3) for k in after if k in before}
        seconds["wrk"] = round(children_cpu_seconds() - wrk_before, 3)
        requests = sum(r.requests for r in results)
        wall = max(r.duration_s for r in results)
        statuses: dict[str, int] = {}
        for r in results:
            for code, n in r.statuses.items():
                statuses[code] = statuses.get(code, 0) + n
        record: dict[str, Any] = {
            "layout": layout.name,
            "replicas": layout.replicas,
            "workers": layout.workers,
            "scenario": scenario,
            "phase": phase,
            "started": started.isoformat(),
            "connections": self.connections,
            "run_ids": run_ids,
            "requests": requests,
            "rps": round(requests / wall, 1) if wall else 0.0,
            "latency_ms_p99": max(r.latency_ms["p99"] for r in results),
            "latency_ms_p50": [r.latency_ms["p50"] for r in results],
            "socket_errors": sum(r.socket_errors for r in results),
            "non_2xx": sum(r.non_2xx for r in results),
            "statuses": statuses,
            "elapsed_s": round(elapsed, 3),
            "cpu_seconds": seconds,
        }
        if scenario == "async":
            # Completions and lag only: CPU is counted per process group above, for every scenario.
            record.update(
                asyncpath.measure(
                    self.ctx.db, self.ctx.merchant_id, "gateway", started, ended, results[0], {}, {}
                )
            )
        record["connections_seen"] = self.connections_seen()
        return record

    def connections_seen(self) -> dict[str, Any]:
        """What the servers hold once the run is over (pools keep what the load made them open)."""
        seen: dict[str, Any] = {
            "postgres_backends": int(
                self.ctx.db.value(
                    "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
                    "AND datname = current_database() AND pid <> pg_backend_pid()"
                )
            ),
            "redis_clients": check.redis_clients(self.servers.redis.url),
        }
        if self.bouncer is not None:
            pools = [p for p in self.bouncer.show("POOLS") if p["database"] == self.bouncer.database]
            seen["pgbouncer_clients"] = sum(int(p["cl_active"]) + int(p["cl_waiting"]) for p in pools)
            seen["pgbouncer_servers"] = sum(
                int(p[k]) for p in pools for k in ("sv_active", "sv_idle", "sv_used", "sv_tested", "sv_login")
            )
        return seen
