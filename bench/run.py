"""`make bench`: the gateway against the floor (bench/floor.py), in one run, on this machine.

Starts embedded PostgreSQL (durable settings) and Redis, migrates, creates a bench merchant, then
for 1 and 2 uvicorn workers starts the gateway and the floor side by side and drives each scenario
with wrk at 16 and 64 connections, alternating gateway and floor runs. Writes
bench/results/<date>.json and .md and prints the Markdown.

Environment (all optional):
  BENCH_QUICK=1           a ~3 minute run: 2 workers only, one short run per scenario
  BENCH_WORKERS=1,2       worker counts            BENCH_CONNECTIONS=16,64   connection counts
  BENCH_DURATION=8        seconds per measured run BENCH_WARMUP=3            seconds of warm-up
  BENCH_REPEATS=3         measured runs at 2 workers / 16 connections (the targets' point)
  BENCH_REPEATS_OTHER=1   measured runs at every other point
  BENCH_SCENARIOS=a,b     only these scenarios (create, replay, get, list, json, async)
  BENCH_KEEP=1            keep the run directory (.data/bench-*: server data and logs)
  BENCH_STRICT=1          exit 3 when a target fails
  BENCH_NOTE="..."        a line recorded with the results (what this run tries)
  BENCH_OPENLOOP=0        no open-loop runs (bench/openloop.py) after the wrk scenarios
  BENCH_OPENLOOP_DURATION seconds per open-loop run (quick 10, full 20)
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
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench import asyncpath, openloop, report
from bench.infra import (
    RESULTS_DIR,
    ROOT,
    App,
    BenchError,
    Db,
    Load,
    Processes,
    Servers,
    children_cpu_seconds,
    cpu_snapshot,
    cpu_used,
    git_facts,
    install_signal_handlers,
    machine_facts,
    managed_processes,
    package_versions,
    run_wrk,
    say,
    start_app,
    wrk_binary,
)
from bench.report import ScenarioInfo
from gateway.embedded import free_port

ACTION_DELAY_SECONDS = 0.2
WRK_THREADS = 2
CUSTOMER = {"name": "Amina Otieno", "email": "amina@example.com", "phone": "+254712345678"}
CREATE_BODY: dict[str, Any] = {
    "amount": 1500,
    "currency": "KES",
    "provider": "sandbox",
    "payment_method": "pm_success",
    "reference": "order_1042",
    "customer": CUSTOMER,
    "metadata": {"order_id": "1042"},
}
ACTION_BODY: dict[str, Any] = {**CREATE_BODY, "payment_method": "pm_action_success"}
CREATE_JSON = json.dumps(CREATE_BODY, separators=(",", ":"))
ACTION_JSON = json.dumps(ACTION_BODY, separators=(",", ":"))
LIST_PATH = "/v1/payments?limit=10&status=succeeded"


# --- configuration ---------------------------------------------------------------------------


def _ints(name: str, default: list[int]) -> list[int]:
    raw = os.environ.get(name, "")
    return [int(x) for x in raw.split(",") if x.strip()] if raw.strip() else default


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    return float(raw) if raw.strip() else default


@dataclass(frozen=True)
class Config:
    mode: str
    workers: list[int]
    connections: list[int]
    duration: float
    warmup: float
    repeats_primary: int
    repeats_other: int
    scenarios: list[str]
    keep: bool
    strict: bool

    @classmethod
    def from_env(cls) -> Config:
        quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")
        return cls(
            mode="quick" if quick else "full",
            workers=_ints("BENCH_WORKERS", [2] if quick else [1, 2]),
            connections=_ints("BENCH_CONNECTIONS", [16, 64]),
            duration=_float("BENCH_DURATION", 5 if quick else 8),
            warmup=_float("BENCH_WARMUP", 2 if quick else 3),
            repeats_primary=int(_float("BENCH_REPEATS", 1 if quick else 3)),
            repeats_other=int(_float("BENCH_REPEATS_OTHER", 1)),
            scenarios=[s for s in os.environ.get("BENCH_SCENARIOS", "").split(",") if s.strip()]
            or [s.info.name for s in SCENARIOS],
            keep=os.environ.get("BENCH_KEEP", "") not in ("", "0"),
            strict=os.environ.get("BENCH_STRICT", "") not in ("", "0"),
        )

    def repeats(self, workers: int, connections: int) -> int:
        return self.repeats_primary if (workers, connections) == report.PRIMARY else self.repeats_other

    def as_dict(self) -> dict[str, Any]:
        return {
            "workers": self.workers,
            "connections": self.connections,
            "duration_s": self.duration,
            "warmup_s": self.warmup,
            "repeats_primary": self.repeats_primary,
            "repeats_other": self.repeats_other,
            "scenarios": self.scenarios,
            "wrk_threads": WRK_THREADS,
            "sandbox_action_delay_s": ACTION_DELAY_SECONDS,
            "gateway_env_extra": extra_gateway_env(),
        }


# --- scenarios -------------------------------------------------------------------------------


@dataclass
class Context:
    """What the scenarios need that only exists once the servers run."""

    db: Db
    merchant_id: str
    api_key: str
    run_dir: Path
    replay_keys: dict[str, str] = field(default_factory=dict)
    _ids_file: Path | None = None

    def ids_file(self) -> Path:
        """A pool of existing payment ids (made by the create runs of either app), built once."""
        if self._ids_file is None:
            rows = self.db.fetch(
                "SELECT id FROM payments WHERE merchant_id = $1 ORDER BY random() LIMIT 2000",
                self.merchant_id,
            )
            if len(rows) < 50:
                raise BenchError(f"only {len(rows)} payments to read: run the create scenario first")
            path = self.run_dir / "payment-ids.txt"
            path.write_text("\n".join(r["id"] for r in rows) + "\n")
            self._ids_file = path
        return self._ids_file


LoadFor = Callable[[Context], Load]


@dataclass(frozen=True)
class Scenario:
    info: ScenarioInfo
    gateway: LoadFor
    floor: LoadFor | None = None


SCENARIOS: list[Scenario] = [
    Scenario(
        ScenarioInfo("create", "create payment (pm_success)", "create", "201", ratio_target=0.7, writes=True),
        lambda ctx: Load("POST", "/v1/payments", CREATE_JSON, "unique"),
        lambda ctx: Load("POST", "/v1/payments", CREATE_JSON, "unique"),
    ),
    Scenario(
        ScenarioInfo("replay", "idempotent replay (one key)", "replay", "201", ratio_target=1.0),
        lambda ctx: Load("POST", "/v1/payments", CREATE_JSON, ctx.replay_keys["gateway"]),
        lambda ctx: Load("POST", "/floor/replay", CREATE_JSON, ctx.replay_keys["floor"]),
    ),
    Scenario(
        ScenarioInfo("get", "GET /v1/payments/{id}", "get", "200", ratio_target=0.85, reads=True),
        lambda ctx: Load("GET", "/v1/payments/", ids_file=ctx.ids_file()),
        lambda ctx: Load("GET", "/v1/payments/", ids_file=ctx.ids_file()),
    ),
    Scenario(
        # Against the floor's own page of the same ten rows (bench/README.md, "Targets"); the ratio
        # to the floor's GET, which the first figure was, is shown beside it.
        ScenarioInfo(
            "list",
            "GET /v1/payments?limit=10&status=succeeded",
            "list",
            "200",
            ratio_target=0.75,
            beside="get",
            reads=True,
        ),
        lambda ctx: Load("GET", LIST_PATH),
        lambda ctx: Load("GET", LIST_PATH),
    ),
    Scenario(
        ScenarioInfo("json", "bare JSON (/healthz vs /floor/json)", "json", "200", ratio_target=0.6),
        lambda ctx: Load("GET", "/healthz"),
        lambda ctx: Load("GET", "/floor/json"),
    ),
    Scenario(
        ScenarioInfo(
            "async",
            "async path: pm_action_success + webhook",
            "create",
            "201",
            ratio_target=asyncpath.RATIO_TARGET,
            async_path=True,
            writes=True,
        ),
        lambda ctx: Load("POST", "/v1/payments", ACTION_JSON, "unique"),
        # The async floor: its create waits too, and its webhook route completes it (bench/floor.py).
        lambda ctx: Load("POST", "/v1/payments", ACTION_JSON, "unique"),
    ),
]


# --- sanity checks: every path answers as the scenarios expect, before anything is timed ----


def _expect(r: httpx.Response, status: int, what: str) -> dict[str, Any]:
    if r.status_code != status:
        raise BenchError(f"{what}: expected HTTP {status}, got {r.status_code}: {r.text[:500]}")
    body: dict[str, Any] = r.json()
    return body


def check_gateway(app: App, ctx: Context) -> None:
    auth = {"Authorization": f"Bearer {ctx.api_key}"}
    with httpx.Client(base_url=app.base_url, headers=auth, timeout=15) as c:
        key = f"bench-check-{uuid.uuid4().hex}"
        headers = {"Idempotency-Key": key, "Content-Type": "application/json"}
        p = _expect(c.post("/v1/payments", content=CREATE_JSON, headers=headers), 201, "gateway create")
        if p["status"] != "succeeded":
            raise BenchError(f"gateway create: expected succeeded, got {p['status']}")
        r = c.post("/v1/payments", content=CREATE_JSON, headers=headers)
        _expect(r, 201, "gateway replay")
        if r.headers.get("idempotent-replayed") != "true":
            raise BenchError("gateway replay: no Idempotent-Replayed header")
        _expect(c.get(f"/v1/payments/{p['id']}"), 200, "gateway GET by id")
        if not _expect(c.get(LIST_PATH), 200, "gateway list")["data"]:
            raise BenchError("gateway list: no succeeded payments listed")
        _expect(c.get("/healthz"), 200, "gateway /healthz")
        if "gateway" not in ctx.replay_keys:
            ctx.replay_keys["gateway"] = key
        # The asynchronous path: the sandbox's webhook must reach this gateway and complete it.
        headers["Idempotency-Key"] = f"bench-check-{uuid.uuid4().hex}"
        a = _expect(c.post("/v1/payments", content=ACTION_JSON, headers=headers), 201, "gateway async create")
        if a["status"] != "requires_action":
            raise BenchError(f"gateway async create: expected requires_action, got {a['status']}")
        deadline = time.monotonic() + 15
        while _expect(c.get(f"/v1/payments/{a['id']}"), 200, "gateway GET")["status"] != "succeeded":
            if time.monotonic() > deadline:
                raise BenchError(
                    "gateway async path: the sandbox webhook did not complete the payment within 15 s "
                    f"(is GATEWAY_PUBLIC_URL right?)\n{app.proc.log_tail()}"
                )
            time.sleep(0.1)


def check_floor(app: App, gateway: App, ctx: Context) -> None:
    auth = {"Authorization": f"Bearer {ctx.api_key}"}
    with httpx.Client(base_url=app.base_url, headers=auth, timeout=15) as c:
        key = f"bench-check-{uuid.uuid4().hex}"
        headers = {"Idempotency-Key": key, "Content-Type": "application/json"}
        p = _expect(c.post("/v1/payments", content=CREATE_JSON, headers=headers), 201, "floor create")
        r = c.post("/floor/replay", content=CREATE_JSON, headers=headers)
        _expect(r, 201, "floor replay")
        if r.headers.get("idempotent-replayed") != "true" or r.json()["id"] != p["id"]:
            raise BenchError("floor replay: not the stored answer")
        shown = _expect(c.get(f"/v1/payments/{p['id']}"), 200, "floor GET by id")
        if not _expect(c.get(LIST_PATH), 200, "floor list")["data"]:
            raise BenchError("floor list: no succeeded payments listed")
        _expect(c.get("/floor/json"), 200, "floor /floor/json")
        if "floor" not in ctx.replay_keys:
            ctx.replay_keys["floor"] = key
    # The floor writes real rows: the gateway reads them as its own.
    with httpx.Client(base_url=gateway.base_url, headers=auth, timeout=15) as c:
        g = _expect(c.get(f"/v1/payments/{p['id']}"), 200, "gateway GET of a floor payment")
        if g["status"] != "succeeded" or g["amount"] != p["amount"]:
            raise BenchError(f"gateway GET of a floor payment: {g}")
        # The floor renders what the gateway shows, or the ratios compare different answers.
        if list(g) != list(shown) or list(g) != list(p):
            raise BenchError(f"the floor shows other fields than the gateway: {list(shown)}, {list(g)}")


# --- the run ---------------------------------------------------------------------------------


# Requests/s per key the bench's gateway allows: well above its load, so every request is counted
# and none refused (a 429 would show as a non-2xx and fail the run), and at most a third of it used:
# a key past half its quota asks Redis on every request (gateway/ratelimit/limiter.py), which is the
# cost of a merchant near its limit, not the usual one (at 20,000, replay's 11,000 req/s on a fast
# machine measured that instead: bench/README.md, "The limit above the load").
BENCH_RATE_LIMIT = 100_000


def extra_gateway_env() -> dict[str, str]:
    """BENCH_GATEWAY_ENV="GATEWAY_X=1 GATEWAY_Y=2": settings to try, on top of the bench's own."""
    pairs = [p.partition("=") for p in os.environ.get("BENCH_GATEWAY_ENV", "").split()]
    bad = [k for k, eq, _ in pairs if not eq or not k.startswith("GATEWAY_")]
    if bad:
        raise BenchError(f"BENCH_GATEWAY_ENV takes GATEWAY_NAME=value pairs, not {bad}")
    return {k: v for k, _, v in pairs}


def gateway_env(servers: Servers, port: int) -> dict[str, str]:
    # Only the settings below (and BENCH_GATEWAY_ENV's): a developer's GATEWAY_* variables or .env
    # must not change what is measured.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "FLOOR_"))}
    env.update(
        {
            "GATEWAY_DATABASE_URL": servers.postgres.url,
            "GATEWAY_REDIS_URL": servers.redis.url,
            "GATEWAY_LOG_LEVEL": "WARNING",
            "GATEWAY_HOST": "127.0.0.1",
            "GATEWAY_PORT": str(port),
            # The sandbox's webhooks come back to this gateway, like any provider's would.
            "GATEWAY_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "GATEWAY_SANDBOX__ACTION_DELAY_SECONDS": str(ACTION_DELAY_SECONDS),
            # The sandbox's webhooks are sent by the stand-in provider's process (bench/provider.py),
            # as a real provider's are sent by its servers: not billed to the gateway's CPU.
            "GATEWAY_SANDBOX__SEND_WEBHOOKS": "false",
            # The limiter on the measured path, at a limit far above any scenario's load (up to ~18,000
            # req/s on one key): it counts every request, never refuses.
            "GATEWAY_RATE_LIMITS__ENABLED": "true",
            "GATEWAY_RATE_LIMITS__TEST": f"{BENCH_RATE_LIMIT}/second",
            "GATEWAY_RATE_LIMITS__LIVE": f"{BENCH_RATE_LIMIT}/second",
            **extra_gateway_env(),
        }
    )
    return env


def start_gateway(procs: Processes, servers: Servers, workers: int, run_dir: Path) -> App:
    port = free_port()
    env = gateway_env(servers, port)
    return start_app(procs, "gateway", "gateway.main:create_app", workers, env, run_dir, "/readyz", port=port)


def floor_env(servers: Servers) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "FLOOR_"))}
    env.update({"FLOOR_DATABASE_URL": servers.postgres.url, "FLOOR_REDIS_URL": servers.redis.url})
    return env


def log_events(path: Path | None) -> dict[str, int]:
    """What an app logged, counted by event (its log level is WARNING: each line is a warning or worse)."""
    counts: Counter[str] = Counter()
    if path is None or not path.exists():
        return {}
    for line in path.read_text(errors="replace").splitlines():
        try:
            event = str(json.loads(line).get("event", "?"))
        except (ValueError, AttributeError):
            event = line[:80]
        counts[event] += 1
    return dict(counts.most_common())


def _per_request(cores: float, seconds: float, requests: int) -> float | None:
    return round(1000 * cores * seconds / requests, 3) if requests else None


class Bench:
    def __init__(self, cfg: Config, procs: Processes, servers: Servers, ctx: Context) -> None:
        self.cfg = cfg
        self.procs = procs
        self.servers = servers
        self.ctx = ctx
        self.runs: list[dict[str, Any]] = []
        self.memory: list[dict[str, Any]] = []
        self.logs: list[dict[str, Any]] = []
        self.open_loop: list[dict[str, Any]] = []
        self.scenarios = [s for s in SCENARIOS if s.info.name in cfg.scenarios]
        self._run_no = 0
        self._nonce = uuid.uuid4().hex[:8]
        self._dirty = True
        # Processes whose CPU time (with their children's) each run records: the servers, then the apps.
        self.groups: dict[str, int] = servers.pids()

    def _one(self, app: App, sc: Scenario, load: Load, connections: int, phase: str, rep: int) -> None:
        self._run_no += 1
        run_id = f"b{self._nonce}-{self._run_no}"
        duration = self.cfg.warmup if phase == "warmup" else self.cfg.duration
        started = datetime.now(UTC)
        cpu_before, clock = cpu_snapshot(self.groups), time.monotonic()
        wrk_before = children_cpu_seconds()
        result = run_wrk(
            self.procs,
            app.base_url,
            load,
            api_key=self.ctx.api_key,
            connections=connections,
            duration=duration,
            run_id=run_id,
            threads=WRK_THREADS,
        )
        elapsed = time.monotonic() - clock
        cpu = cpu_used(cpu_before, cpu_snapshot(self.groups), elapsed)
        cpu["wrk"] = round((children_cpu_seconds() - wrk_before) / elapsed, 2)
        # Everything else: the idle app, this harness, and anything else running on the machine.
        known = cpu[app.name] + cpu["postgres"] + cpu["redis"] + cpu["wrk"] + cpu.get("provider", 0.0)
        cpu["other"] = round(max(cpu["machine"] - known, 0.0), 2)
        ended = datetime.now(UTC)
        record: dict[str, Any] = {
            "app": app.name,
            "scenario": sc.info.name,
            "workers": app.workers,
            "connections": connections,
            "phase": phase,
            "rep": rep,
            "started": started.isoformat(),
            **result.as_dict(),
            # Cores each process group used during the run (1.0 = one CPU), and CPU per request.
            "cpu_cores": cpu,
            "cpu_ms_per_request": _per_request(cpu[app.name], elapsed, result.requests),
            "postgres_cpu_ms_per_request": _per_request(cpu["postgres"], elapsed, result.requests),
        }
        if sc.info.async_path:
            ctx = self.ctx
            record.update(
                asyncpath.measure(
                    ctx.db, ctx.merchant_id, app.name, started, ended, result, cpu_before, self.groups
                )
            )
        self.runs.append(record)
        if result.socket_errors or result.non_2xx:
            record["statuses"] = self._statuses(app, load, connections)
        if phase == "measured":
            lat = result.latency_ms
            extra = f", {record['completed_per_s']:.0f} completed/s" if "completed_per_s" in record else ""
            errs = ""
            if result.socket_errors or result.non_2xx:
                errs = f"  ERRORS: {result.socket_errors} socket, {result.non_2xx} non-2xx"
                errs += f" {record.get('statuses', '')}"
            say(
                f"  {app.name:7} {sc.info.name:6} w={app.workers} c={connections:<3} rep {rep + 1}: "
                f"{result.rps:7.0f} req/s  p50 {lat['p50']:6.1f}  p90 {lat['p90']:6.1f}  "
                f"p99 {lat['p99']:6.1f} ms{extra}{errs}"
            )
        elif result.socket_errors or result.non_2xx:
            say(
                f"  warm-up of {app.name} {sc.info.name}: {result.socket_errors} socket errors, "
                f"{result.non_2xx} non-2xx"
            )

    def _statuses(self, app: App, load: Load, connections: int) -> dict[str, int]:
        """A short extra run that counts answers per HTTP status, to say what went wrong."""
        self._run_no += 1
        probe = run_wrk(
            self.procs,
            app.base_url,
            load,
            api_key=self.ctx.api_key,
            connections=connections,
            duration=2,
            run_id=f"b{self._nonce}-{self._run_no}",
            threads=WRK_THREADS,
            count_statuses=True,
        )
        return probe.statuses

    def _settle(self) -> None:
        """Before read runs that follow write runs: vacuum, analyze and checkpoint now, so that
        autovacuum's and the checkpointer's catch-up does not land in whichever read run (the
        gateway's or the floor's) happens to come next, and the planner sees the tables as they are."""
        self.ctx.db.execute("VACUUM (ANALYZE) payments, events, webhook_deliveries")
        self.ctx.db.execute("CHECKPOINT")
        self._dirty = False

    def run_open_loop(self, app: App) -> None:
        """After the wrk runs: requests on a schedule, timed from when each was due (bench/openloop.py)."""
        specs = openloop.plan(self.runs, app.workers, self.cfg.mode == "quick")
        if not specs:
            say("  open loop: skipped (it takes its rate from the create scenario, not measured)")
            return
        for spec in specs:
            if spec.kind == "get" and self._dirty:
                self._settle()
            self._run_no += 1
            ids = self.ctx.ids_file() if spec.kind == "get" else None
            run_id = f"b{self._nonce}-{self._run_no}"
            r = openloop.run(self.procs, app.base_url, self.ctx.api_key, spec, ids, run_id, self.groups)
            self._dirty = self._dirty or spec.kind == "create"
            self.open_loop.append(r)
            lat = r["latency_ms"]
            say(
                f"  open loop {spec.name:12} {spec.rate:.0f} req/s sent, {r['achieved_rps']:.0f} answered/s "
                f"p50 {lat.get('p50', 0):6.1f}  p90 {lat.get('p90', 0):6.1f}  p99 {lat.get('p99', 0):6.1f}  "
                f"max {lat.get('max', 0):6.1f} ms  (generator {r['generator_cpu_cores']:.2f} cores; "
                f"{r['non_2xx']} non-2xx, {sum(r['errors'].values())} errors, {r['unanswered']} unanswered)"
            )

    def run_workers(self, workers: int) -> None:
        cfg = self.cfg
        say(f"\n== {workers} worker(s): starting the gateway and the floor")
        gateway = start_gateway(self.procs, self.servers, workers, self.ctx.run_dir)
        floor = start_app(
            self.procs,
            "floor",
            "bench.floor:create_app",
            workers,
            floor_env(self.servers),
            self.ctx.run_dir,
            "/floor/json",
        )
        self.groups.update(gateway=gateway.proc.pid, floor=floor.proc.pid)
        provider = asyncpath.start_provider(
            self.procs,
            self.servers.redis.url,
            self.ctx.merchant_id,
            gateway,
            floor,
            self.ctx.run_dir,
            ACTION_DELAY_SECONDS,
        )
        self.groups["provider"] = provider.pid
        try:
            check_gateway(gateway, self.ctx)
            check_floor(floor, gateway, self.ctx)
            if any(s.info.async_path for s in self.scenarios):
                asyncpath.check_floor(floor, self.ctx.api_key, ACTION_JSON)
            # Analyzed before anything is timed, as autovacuum keeps a live database: a planner that
            # has never seen the tables' statistics may pick any index that starts with merchant_id.
            self._settle()
            apps = {"gateway": gateway, "floor": floor}
            for connections in cfg.connections:
                reps = cfg.repeats(workers, connections)
                warmed: set[tuple[str, str]] = set()
                for rep in range(reps):
                    for sc in self.scenarios:
                        if sc.info.reads and self._dirty:
                            self._settle()
                        self._dirty = self._dirty or sc.info.writes
                        pairs: list[tuple[str, LoadFor]] = [("gateway", sc.gateway)]
                        if sc.floor is not None:
                            pairs.append(("floor", sc.floor))
                        if rep % 2 == 1:
                            pairs.reverse()  # ABBA: neither side always goes first
                        for app_name, load_for in pairs:
                            app = apps[app_name]
                            load = load_for(self.ctx)
                            if cfg.warmup > 0 and (app_name, sc.info.name) not in warmed:
                                self._one(app, sc, load, connections, "warmup", rep)
                                warmed.add((app_name, sc.info.name))
                            self._one(app, sc, load, connections, "measured", rep)
            if workers == report.PRIMARY[0] and os.environ.get("BENCH_OPENLOOP", "") != "0":
                self.run_open_loop(gateway)
            for app in (gateway, floor):
                self.memory.append({"app": app.name, "workers_count": workers, "workers": app.memory()})
                if not app.proc.alive():
                    raise BenchError(f"{app.proc.name} died during the runs:\n{app.proc.log_tail()}")
            events = log_events(gateway.proc.log_path)
            self.logs.append({"app": "gateway", "workers_count": workers, "events": events})
            if events:
                say(f"  the gateway logged (WARNING and above): {events}")
        finally:
            self.procs.stop(provider)
            self.procs.stop(gateway.proc)
            self.procs.stop(floor.proc)


async def create_bench_merchant(url: str) -> tuple[str, str]:
    from gateway.db.database import Database
    from gateway.merchants.service import create_merchant
    from gateway.settings import DatabaseSettings

    db = await Database.connect(url, DatabaseSettings())
    try:
        m = await create_merchant(db, "Bench merchant")
        return m.merchant_id, m.secret_key
    finally:
        await db.close()


def background_load(seconds: float = 2.0) -> float:
    """Cores busy on this machine before the bench starts anything (others' tests, builds…)."""
    before = cpu_snapshot({})
    time.sleep(seconds)
    return round((cpu_snapshot({})["machine"] - before["machine"]) / seconds, 2)


def server_facts(db: Db, servers: Servers) -> tuple[dict[str, str], str, str]:
    settings = {
        name: db.value(f"SELECT current_setting('{name}')")
        for name in ("fsync", "synchronous_commit", "full_page_writes", "shared_buffers", "max_connections")
    }
    if settings["fsync"] != "on" or settings["synchronous_commit"] != "on":
        raise BenchError(f"PostgreSQL must run with durable settings, got {settings}")
    pg_version = db.value("SHOW server_version")

    import redis

    client = redis.Redis.from_url(servers.redis.url)
    try:
        redis_version = str(client.info("server")["redis_version"])
    finally:
        client.close()
    return settings, str(pg_version), redis_version


def main() -> int:
    try:
        return bench_main()
    except BenchError as e:
        say(f"\nbench failed: {e}")
        return 1


def bench_main() -> int:
    cfg = Config.from_env()
    install_signal_handlers()
    wrk_binary()  # fail before starting anything if the load generator is missing
    from gateway.cli import run_migrations
    from gateway.logging import configure_logging

    configure_logging("WARNING", json=False)
    now = datetime.now(UTC)
    stamp = now.strftime("%Y-%m-%dT%H%M%SZ")
    run_dir = ROOT / ".data" / f"bench-{stamp}"
    run_dir.mkdir(parents=True, exist_ok=True)
    servers = Servers(run_dir / "servers")
    db: Db | None = None
    t0 = time.monotonic()
    git = git_facts()  # now: the tree may change while the bench runs
    say(f"bench ({cfg.mode}): workers {cfg.workers}, connections {cfg.connections}, run dir {run_dir}")
    background = background_load()
    if background > 0.25:
        say(
            f"warning: the machine is already busy ({background:.2f} cores before the bench started): "
            "figures will be noisy"
        )
    try:
        with managed_processes() as procs:
            try:
                servers.start()
                run_migrations(servers.postgres.url)
                merchant_id, api_key = asyncio.run(create_bench_merchant(servers.postgres.url))
                db = Db(servers.postgres.url)
                pg_settings, pg_version, redis_version = server_facts(db, servers)
                say(f"PostgreSQL {pg_version} and Redis {redis_version} up, migrated, merchant {merchant_id}")
                ctx = Context(db, merchant_id, api_key, run_dir)
                bench = Bench(cfg, procs, servers, ctx)
                for workers in cfg.workers:
                    bench.run_workers(workers)
            finally:
                if db is not None:
                    db.close()
                procs.stop_all()
                servers.stop()
        summary = report.summarise(bench.runs)
        infos = [s.info for s in bench.scenarios]
        data: dict[str, Any] = {
            "date": now.isoformat(timespec="seconds"),
            "mode": cfg.mode,
            "note": os.environ.get("BENCH_NOTE", ""),
            "elapsed_s": round(time.monotonic() - t0, 1),
            "config": cfg.as_dict(),
            "machine": machine_facts(),
            "versions": {"postgres": pg_version, "redis": redis_version, "packages": package_versions()},
            "postgres_settings": pg_settings,
            "background_load_cores": background,
            "git": git,
            "scenarios": [vars(i) for i in infos],
            "summary": summary,
            "ratios": report.ratios(summary, infos),
            "memory": bench.memory,
            "logs": bench.logs,
            "open_loop": bench.open_loop,
            "targets": report.targets(summary, infos, bench.memory, bench.runs)
            + report.open_loop_targets(bench.open_loop),
            "runs": bench.runs,
        }
        md = report.markdown(data, infos)
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        name = stamp + ("-quick" if cfg.mode == "quick" else "")
        (RESULTS_DIR / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n")
        (RESULTS_DIR / f"{name}.md").write_text(md)
        print(md)
        say(f"wrote bench/results/{name}.json and .md in {data['elapsed_s']:.0f} s")
        if not cfg.keep:
            shutil.rmtree(run_dir, ignore_errors=True)
        failed = [t for t in data["targets"] if t["result"] == "FAIL"]
        return 3 if cfg.strict and failed else 0
    except BenchError as e:
        say(f"\nbench failed: {e}\n(server data and logs kept in {run_dir})")
        return 1
    except KeyboardInterrupt:
        if not cfg.keep:
            shutil.rmtree(run_dir, ignore_errors=True)
        say("\ninterrupted: every process the bench started has been stopped")
        return 130


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
