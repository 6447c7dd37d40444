"""`make profile`: a py-spy flame graph of a gateway worker under create-payment load.

Starts the same servers and gateway as `make bench` (one worker, so the profiled process is the whole
gateway), drives POST /v1/payments with wrk, and records with py-spy:

- bench/results/profile-<date>.svg: the flame graph (open it in a browser; click to zoom);
- bench/results/profile-<date>.txt: the hottest functions, by own time and by time including callees,
  and own time per package — what to optimise first.

Environment: PROFILE_SCENARIO=create|async|replay|get|list (default create), PROFILE_SECONDS (20),
PROFILE_CONNECTIONS (16), PROFILE_RATE (samples/s, 200), plus BENCH_GATEWAY_ENV and BENCH_KEEP as
for `make bench`.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from bench.asyncpath import start_provider
from bench.infra import (
    RESULTS_DIR,
    ROOT,
    BenchError,
    Db,
    Processes,
    Servers,
    git_facts,
    install_signal_handlers,
    managed_processes,
    run_wrk,
    say,
    wrk_binary,
    wrk_command,
)
from bench.run import (
    ACTION_DELAY_SECONDS,
    SCENARIOS,
    Context,
    check_gateway,
    create_bench_merchant,
    start_gateway,
)

# A frame in py-spy's raw (collapsed) output with --nolineno: "function (path/to/file.py)".
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*)\)$")


def py_spy() -> str:
    found = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if found is None:
        raise BenchError("py-spy is not installed: run `make profile` (it syncs the bench group)")
    return found


def record(procs: Processes, pid: int, seconds: int, rate: int, fmt: str, output: Path, gil: bool) -> None:
    args = [py_spy(), "record", "--pid", str(pid), "--duration", str(seconds), "--rate", str(rate)]
    args += ["--format", fmt, "--output", str(output)]
    if gil:
        # Only samples holding the GIL: the worker's Python CPU time. Without it the flame graph is
        # mostly threads parked in the thread pool (Condition.wait), which py-spy does not see as idle.
        args.append("--gil")
    if fmt == "raw":
        args.append("--nolineno")  # aggregate by function, not by line
    proc = procs.start(f"py-spy ({fmt})", args, capture=True)
    try:
        out, err = proc.popen.communicate(timeout=seconds + 60)
    finally:
        procs.stop(proc)
    if proc.popen.returncode != 0 or not output.exists():
        raise BenchError(f"py-spy failed (exit {proc.popen.returncode}):\n{out.decode()}\n{err.decode()}")


def _package(path: str) -> str:
    """The library a frame belongs to: py-spy shortens file names to the package's own path."""
    head = path.split("/", 1)[0] if "/" in path else Path(path).stem
    if path.startswith("<"):
        return path
    if head in sys.stdlib_module_names:
        return f"stdlib ({head})"
    return head


def _thread_kind(frames: list[str]) -> str:
    for f in frames:
        if f.startswith("WorkerThread.run (anyio/"):
            return "anyio thread pool (sync dependencies and functions run off the event loop)"
        if f.startswith("Runner.run (asyncio/"):
            return "event loop"
    if "(sqlalchemy/" in frames[0]:
        # SQLAlchemy's asyncio layer runs its sync core in greenlets, which py-spy shows as stacks of
        # their own: the gateway frame that awaited them is not above them. Name them by their entry.
        entry = frames[0].split(" (", 1)[0]
        return f"SQLAlchemy greenlet: {entry} (the ORM and Core run by greenlet_spawn)"
    return "other"


def summarise(raw: Path, gil: bool, top: int = 30) -> str:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack or not count_s.isdigit():
            continue
        count = int(count_s)
        frames = [f for f in stack.split(";") if _FRAME.match(f)]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        m = _FRAME.match(frames[-1])
        packages[_package(m["file"]) if m else "?"] += count
        threads[_thread_kind(frames)] += count
        for f in set(frames):
            inclusive[f] += count
    if not total:
        return "no samples (was the worker busy?)\n"

    def table(rows: list[tuple[str, int]], title: str) -> list[str]:
        out = [f"\n{title}", f"{'%':>6}  {'samples':>7}  frame"]
        out += [f"{100 * n / total:6.1f}  {n:7d}  {frame}" for frame, n in rows]
        return out

    ours = [(f, n) for f, n in inclusive.most_common() if "(gateway/" in f]
    what = "in which the worker held the GIL (its Python CPU time)" if gil else "(idle threads excluded)"
    lines = [f"{total} samples {what}"]
    lines += table(threads.most_common(), "By stack root")
    lines += table(packages.most_common(top), "Own time by package (where the CPU actually is)")
    lines += table(own.most_common(top), "Own time by function (leaf frames)")
    lines += table(
        ours[:top],
        "The gateway's own functions, including what they call (but not the SQLAlchemy greenlet "
        "stacks above: add those to the database calls)",
    )
    lines += table(inclusive.most_common(top * 2), "Every function, including what it calls")
    return "\n".join(lines) + "\n"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rfind(")") + 2 :].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def main() -> int:
    try:
        return profile_main()
    except BenchError as e:
        say(f"\nprofile failed: {e}")
        return 1


def profile_main() -> int:
    install_signal_handlers()
    wrk_binary()
    py_spy()
    scenario_name = os.environ.get("PROFILE_SCENARIO", "create")
    seconds = int(os.environ.get("PROFILE_SECONDS", "20"))
    connections = int(os.environ.get("PROFILE_CONNECTIONS", "16"))
    rate = int(os.environ.get("PROFILE_RATE", "200"))
    gil = os.environ.get("PROFILE_GIL", "1") not in ("", "0")
    scenario = next((s for s in SCENARIOS if s.info.name == scenario_name), None)
    if scenario is None:
        say(f"PROFILE_SCENARIO must be one of {[s.info.name for s in SCENARIOS]}")
        return 2

    from gateway.cli import run_migrations
    from gateway.logging import configure_logging

    configure_logging("WARNING", json=False)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H%M%SZ")
    run_dir = ROOT / ".data" / f"profile-{stamp}"
    run_dir.mkdir(parents=True, exist_ok=True)
    servers = Servers(run_dir / "servers")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    svg = RESULTS_DIR / f"profile-{scenario_name}-{stamp}.svg"
    txt = RESULTS_DIR / f"profile-{scenario_name}-{stamp}.txt"
    raw = run_dir / "profile.raw"
    db: Db | None = None
    try:
        with managed_processes() as procs:
            try:
                servers.start()
                run_migrations(servers.postgres.url)
                merchant_id, api_key = asyncio.run(create_bench_merchant(servers.postgres.url))
                db = Db(servers.postgres.url)
                ctx = Context(db, merchant_id, api_key, run_dir)
                gateway = start_gateway(procs, servers, 1, run_dir)
                # The sandbox's webhooks come from the stand-in provider's process, as in `make bench`.
                start_provider(
                    procs, servers.redis.url, merchant_id, gateway, None, run_dir, ACTION_DELAY_SECONDS
                )
                check_gateway(gateway, ctx)
                if scenario.info.name in ("get", "list"):
                    say("seeding payments to read")
                    seed = SCENARIOS[0].gateway(ctx)
                    run_wrk(
                        procs,
                        gateway.base_url,
                        seed,
                        api_key=api_key,
                        connections=16,
                        duration=5,
                        run_id="seed",
                    )
                load = scenario.gateway(ctx)
                say(f"warming up {scenario_name} on {gateway.base_url}")
                run_wrk(
                    procs,
                    gateway.base_url,
                    load,
                    api_key=api_key,
                    connections=connections,
                    duration=3,
                    run_id="warm",
                )
                # One wrk run covers both recordings: the flame graph, then the collapsed stacks.
                total = 2 * seconds + 10
                say(f"recording {seconds} s twice under {connections} connections (wrk runs {total} s)")
                args, env = wrk_command(
                    gateway.base_url,
                    load,
                    api_key=api_key,
                    connections=connections,
                    duration=total,
                    run_id=f"prof-{stamp}",
                )
                wrk = procs.start("wrk", args, env=env)
                time.sleep(2)
                cpu_before = cpu_seconds(gateway.proc.pid)
                wall_before = time.monotonic()
                record(procs, gateway.proc.pid, seconds, rate, "flamegraph", svg, gil)
                record(procs, gateway.proc.pid, seconds, rate, "raw", raw, gil)
                busy = (cpu_seconds(gateway.proc.pid) - cpu_before) / (time.monotonic() - wall_before)
                procs.stop(wrk)
            finally:
                if db is not None:
                    db.close()
                procs.stop_all()
                servers.stop()
        summary = summarise(raw, gil)
        git = git_facts()
        source = "" if git["source_is_checkout"] else f", code imported from {git['gateway_source']}"
        header = (
            f"gateway {git['commit']}{' (uncommitted changes)' if git['dirty'] else ''}{source}\n"
            f"py-spy profile of one gateway worker under {scenario_name} load "
            f"({connections} connections, {seconds} s at {rate} samples/s), {stamp}\n"
            f"flame graph: {svg.relative_to(ROOT)}\n"
            f"the worker used {busy:.0%} of a CPU while recording (user + system time, all threads)\n\n"
        )
        txt.write_text(header + summary)
        print(header + summary)
        if os.environ.get("BENCH_KEEP", "") in ("", "0"):
            shutil.rmtree(run_dir, ignore_errors=True)
        return 0
    except BenchError as e:
        say(f"\nprofile failed: {e}\n(server data and logs kept in {run_dir})")
        return 1
    except KeyboardInterrupt:
        if os.environ.get("BENCH_KEEP", "") in ("", "0"):
            shutil.rmtree(run_dir, ignore_errors=True)
        say("\ninterrupted: every process the profile started has been stopped")
        return 130


if __name__ == "__main__":
    sys.exit(main())
