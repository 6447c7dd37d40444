"""What the harness runs: embedded servers, uvicorn apps and wrk, always stopped on the way out.

Every process is started in its own process group and remembered; `Processes.stop_all()` (called
from a `finally`, which Ctrl-C and SIGTERM also reach) stops each group: the uvicorn master and its
workers, wrk, and the embedded PostgreSQL and Redis through their launcher.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import asyncpg  # type: ignore[import-untyped]

from gateway.embedded import EmbeddedPostgres, EmbeddedRedis, free_port

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = ROOT / "bench"
LUA_SCRIPT = BENCH_DIR / "lua" / "scenario.lua"
RESULTS_DIR = BENCH_DIR / "results"


class BenchError(RuntimeError):
    """Something the harness cannot measure through: it stops with this message."""


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def install_signal_handlers() -> None:
    """SIGINT, SIGTERM and SIGHUP unwind as KeyboardInterrupt, so every `finally` stops what we started.

    SIGINT explicitly too: a shell starting us in the background would otherwise leave it ignored.
    """
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, raise_keyboard_interrupt)
    signal.signal(signal.SIGHUP, raise_keyboard_interrupt)


# --- processes ---------------------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path | None
    _log: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


class Processes:
    """The processes we started, each the leader of its own process group."""

    def __init__(self) -> None:
        self._procs: list[Proc] = []

    def start(
        self,
        name: str,
        args: list[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        log_path: Path | None = None,
        capture: bool = False,
    ) -> Proc:
        log: IO[bytes] | None = open(log_path, "ab") if log_path else None  # noqa: SIM115 - closed in stop()
        stdout: IO[bytes] | int | None = log if log else (subprocess.PIPE if capture else subprocess.DEVNULL)
        popen = subprocess.Popen(
            args,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            stdout=stdout,
            stderr=subprocess.STDOUT if (log or not capture) else subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        proc = Proc(name, popen, log_path, log)
        self._procs.append(proc)
        return proc

    def stop(self, proc: Proc, timeout: float = 15.0) -> None:
        members = group_members(proc.pid)  # a uvicorn master and its workers, while we know them
        if proc.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                say(f"  {proc.name} did not stop within {timeout:.0f}s: killing it")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.popen.wait()
        # A worker that outlived its master: killed by pid, only while it is still in our group.
        for pid in members:
            if pid != proc.pid and pid in group_members(proc.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        if proc._log is not None:
            proc._log.close()
            proc._log = None
        if proc in self._procs:
            self._procs.remove(proc)

    def stop_all(self) -> None:
        for proc in reversed(list(self._procs)):
            try:
                self.stop(proc)
            except Exception as e:  # keep stopping the others
                say(f"  could not stop {proc.name}: {e}")


@contextlib.contextmanager
def managed_processes() -> Iterator[Processes]:
    procs = Processes()
    try:
        yield procs
    finally:
        procs.stop_all()


@dataclass(frozen=True)
class _Stat:
    pid: int
    ppid: int
    pgrp: int
    ticks: int  # CPU used: user + system
    children_ticks: int  # CPU of the children it has reaped (an ended PostgreSQL backend's, say)


def _stats() -> Iterator[_Stat]:
    """Every process, from /proc/<pid>/stat."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces: the fields follow its closing one.
        f = stat[stat.rfind(")") + 2 :].split()
        yield _Stat(int(entry.name), int(f[1]), int(f[2]), int(f[11]) + int(f[12]), int(f[13]) + int(f[14]))


def children_of(pid: int) -> list[int]:
    return sorted(s.pid for s in _stats() if s.ppid == pid)


def group_members(pgid: int) -> list[int]:
    return sorted(s.pid for s in _stats() if s.pgrp == pgid)


def cpu_snapshot(roots: Mapping[str, int]) -> dict[str, float]:
    """CPU seconds used so far by each named process and its children, and by the whole machine.

    A root's total is its own time, the time of the children it has reaped, and the time of its
    live direct children: it only grows, even when a child ends between two snapshots (SQLAlchemy
    closes overflow connections, and their PostgreSQL backends exit). Children, not process groups:
    PostgreSQL's backends each start a session of their own.
    """
    hz = os.sysconf("SC_CLK_TCK")
    names = {pid: name for name, pid in roots.items()}
    out = dict.fromkeys(roots, 0.0)
    for st in _stats():
        if st.pid in names:
            out[names[st.pid]] += (st.ticks + st.children_ticks) / hz
        elif st.ppid in names:
            out[names[st.ppid]] += st.ticks / hz
    cpu = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in cpu[:8]]  # user nice system idle iowait irq softirq steal
    out["machine"] = (sum(values) - values[3] - values[4]) / hz
    return out


def children_cpu_seconds() -> float:
    """CPU time of the children this process has reaped (wrk, once each run ends)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def cpu_used(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, float]:
    """Cores used on average between two snapshots (1.0 = one CPU busy all the time)."""
    return {k: round((after[k] - before[k]) / seconds, 2) for k in after if k in before}


def memory_kb(pid: int) -> dict[str, int]:
    """VmHWM (peak resident set) and VmRSS of a process, in kB."""
    out: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


# --- servers -----------------------------------------------------------------------------------


@dataclass
class Servers:
    """Embedded PostgreSQL (durable: fsync and synchronous_commit on) and Redis for one bench run."""

    root: Path
    postgres: EmbeddedPostgres = field(init=False)
    redis: EmbeddedRedis = field(init=False)

    def __post_init__(self) -> None:
        # fast_unsafe stays False: PostgreSQL keeps its defaults (fsync, full_page_writes,
        # synchronous_commit on), as in production. Redis snapshots are off: Redis is the fast path
        # of idempotency, not its guarantee, and a fork every minute would only add noise.
        self.postgres = EmbeddedPostgres(self.root / "postgres", fast_unsafe=False)
        self.redis = EmbeddedRedis(self.root / "redis", persist=False)

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.postgres.start()
        self.redis.start()

    def stop(self) -> None:
        try:
            self.redis.stop()
        finally:
            self.postgres.stop()

    def pids(self) -> dict[str, int]:
        """The servers' main pids; each leads the process group of its own children."""
        return {
            "postgres": int((self.postgres.data_dir / "postmaster.pid").read_text().split()[0]),
            "redis": int((self.redis.data_dir / "redis.pid").read_text().split()[0]),
        }


class Db:
    """One asyncpg connection for the harness's own queries (counts, ids, versions)."""

    def __init__(self, url: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._conn: Any = self._loop.run_until_complete(
            asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
        )

    def fetch(self, query: str, *args: Any) -> list[Any]:
        rows: list[Any] = self._loop.run_until_complete(self._conn.fetch(query, *args))
        return rows

    def value(self, query: str, *args: Any) -> Any:
        return self._loop.run_until_complete(self._conn.fetchval(query, *args))

    def execute(self, query: str) -> None:
        """A statement without parameters (simple protocol: VACUUM and CHECKPOINT take no other)."""
        self._loop.run_until_complete(self._conn.execute(query))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._loop.run_until_complete(self._conn.close())
        self._loop.close()


# --- the apps under test -----------------------------------------------------------------------


@dataclass
class App:
    """A uvicorn server (master and workers) running one of the apps under test."""

    name: str
    port: int
    workers: int
    proc: Proc
    health_path: str

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def worker_pids(self) -> list[int]:
        if self.workers == 1:
            return [self.proc.pid]  # uvicorn serves in the master itself when there is one worker
        return [
            pid
            for pid in children_of(self.proc.pid)
            if b"resource_tracker" not in _cmdline(pid) and b"multiprocessing" in _cmdline(pid)
        ]

    def memory(self) -> list[dict[str, int]]:
        return [{"pid": pid, **memory_kb(pid)} for pid in self.worker_pids()]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def uvicorn_args(factory: str, port: int, workers: int, app_dir: Path) -> list[str]:
    """The same server settings for the gateway and the floor."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        factory,
        "--factory",
        "--app-dir",
        str(app_dir),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--log-level",
        "warning",
        "--no-access-log",
        "--timeout-graceful-shutdown",
        "5",
    ]


def start_app(
    procs: Processes,
    name: str,
    factory: str,
    workers: int,
    env: Mapping[str, str],
    run_dir: Path,
    health_path: str,
    port: int = 0,
) -> App:
    port = port or free_port()
    log_path = run_dir / f"{name}-{workers}w.log"
    proc = procs.start(
        f"{name} ({workers} workers)",
        uvicorn_args(factory, port, workers, ROOT),
        env=env,
        cwd=run_dir,  # not the project root: a developer's .env must not change what we measure
        log_path=log_path,
    )
    app = App(name, port, workers, proc, health_path)
    wait_ready(app)
    return app


def wait_ready(app: App, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if not app.proc.alive():
            raise BenchError(f"{app.proc.name} exited while starting:\n{app.proc.log_tail()}")
        workers_up = app.workers == 1 or len(app.worker_pids()) == app.workers
        if workers_up:
            try:
                with urllib.request.urlopen(app.base_url + app.health_path, timeout=2) as r:
                    if r.status == 200:
                        time.sleep(0.5 if app.workers == 1 else 1.5)  # let every worker finish its start
                        return
            except (urllib.error.URLError, OSError) as e:
                last = str(e)
        time.sleep(0.1)
    raise BenchError(f"{app.proc.name} was not ready within {timeout:.0f}s ({last}):\n{app.proc.log_tail()}")


# --- wrk -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    """One wrk request shape (see bench/lua/scenario.lua)."""

    method: str
    path: str
    body: str | None = None
    idempotency: str = ""  # "unique", a fixed key, or "" for none
    ids_file: Path | None = None


@dataclass
class WrkResult:
    requests: int
    duration_s: float
    rps: float
    latency_ms: dict[str, float]
    socket_errors: int
    non_2xx: int
    errors: dict[str, int]
    statuses: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "duration_s": round(self.duration_s, 3),
            "rps": round(self.rps, 1),
            "latency_ms": self.latency_ms,
            "socket_errors": self.socket_errors,
            "non_2xx": self.non_2xx,
            "errors": self.errors,
            **({"statuses": self.statuses} if self.statuses else {}),
        }


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise BenchError(
            "wrk is not installed. `make bench` installs it when run as root (apt-get install wrk); "
            "otherwise install Debian's wrk yourself: sudo apt-get install -y wrk"
        )
    return found


def wrk_command(
    base_url: str,
    load: Load,
    *,
    api_key: str,
    connections: int,
    duration: float,
    run_id: str,
    threads: int = 2,
    count_statuses: bool = False,
) -> tuple[list[str], dict[str, str]]:
    """wrk's arguments and environment (bench/lua/scenario.lua reads the load from it)."""
    env = {
        **os.environ,
        "BENCH_METHOD": load.method,
        "BENCH_PATH": load.path,
        "BENCH_API_KEY": api_key,
        "BENCH_BODY": load.body or "",
        "BENCH_IDEM": load.idempotency,
        "BENCH_RUN_ID": run_id,
        "BENCH_IDS_FILE": str(load.ids_file) if load.ids_file else "",
        "BENCH_STATUS": "1" if count_statuses else "",
    }
    args = [
        wrk_binary(),
        "-t",
        str(min(threads, connections)),
        "-c",
        str(connections),
        "-d",
        f"{max(1, round(duration))}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA_SCRIPT),
        base_url,
    ]
    return args, env


def run_wrk(
    procs: Processes,
    base_url: str,
    load: Load,
    *,
    api_key: str,
    connections: int,
    duration: float,
    run_id: str,
    threads: int = 2,
    count_statuses: bool = False,
) -> WrkResult:
    args, env = wrk_command(
        base_url,
        load,
        api_key=api_key,
        connections=connections,
        duration=duration,
        run_id=run_id,
        threads=threads,
        count_statuses=count_statuses,
    )
    proc = procs.start("wrk", args, env=env, capture=True)
    try:
        out, err = proc.popen.communicate(timeout=duration + 60)
    finally:
        procs.stop(proc)
    text = out.decode(errors="replace")
    line = next((ln for ln in text.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if proc.popen.returncode != 0 or line is None:
        raise BenchError(f"wrk failed (exit {proc.popen.returncode}):\n{text}\n{(err or b'').decode()}")
    data = json.loads(line.removeprefix("BENCH_JSON "))
    duration_s = data["duration_us"] / 1e6
    lat = data["latency_us"]
    errors = data["errors"]
    return WrkResult(
        requests=data["requests"],
        duration_s=duration_s,
        rps=data["requests"] / duration_s if duration_s else 0.0,
        latency_ms={k: round(lat[k] / 1000, 2) for k in ("p50", "p75", "p90", "p99", "p999", "mean", "max")},
        socket_errors=errors["connect"] + errors["read"] + errors["write"] + errors["timeout"],
        non_2xx=errors["status"],  # wrk counts every answer with a status of 400 or more
        errors=errors,
        statuses=data.get("statuses") or {},
    )


# --- facts -------------------------------------------------------------------------------------


def machine_facts() -> dict[str, Any]:
    cpu_model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    wrk_version = ""
    with contextlib.suppress(OSError, BenchError):
        r = subprocess.run([wrk_binary(), "-v"], capture_output=True, text=True, check=False)
        wrk_version = (r.stdout or r.stderr).splitlines()[0].strip()
    return {
        "nproc": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "cpu_model": cpu_model,
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "wrk": wrk_version,
    }


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str] = {}
    for name in (
        "fastapi",
        "starlette",
        "uvicorn",
        "uvloop",
        "httptools",
        "pydantic",
        "sqlalchemy",
        "asyncpg",
        "redis",
        "orjson",
    ):
        with contextlib.suppress(PackageNotFoundError):
            out[name] = version(name)
    return out


def git_facts() -> dict[str, Any]:
    def git(*args: str) -> str:
        r = subprocess.run(
            ["git", "-C", str(ROOT), *args],
            capture_output=True,
            text=True,
            check=False,
        )
        return r.stdout.strip()

    import gateway

    source = Path(gateway.__file__).resolve().parent
    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "gateway_source": str(source),
        "source_is_checkout": source == ROOT / "src" / "gateway",
    }
