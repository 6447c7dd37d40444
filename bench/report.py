"""From the raw wrk runs to medians, ratios, the issue's targets and the Markdown report."""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import asyncpath

# The targets: 2 gateway workers, 16 connections, this machine.
PRIMARY = (2, 16)
RSS_LIMIT_MIB = 150.0
CREATE_P99_LIMIT_MS = 50.0


@dataclass(frozen=True)
class ScenarioInfo:
    name: str
    title: str
    floor_ref: str  # the floor scenario the ratio is taken against
    expected: str  # the status codes the scenario expects
    ratio_target: float | None = None
    beside: str | None = None  # another floor scenario its ratio is shown against (no target)
    async_path: bool = False
    writes: bool = False  # its runs insert rows: the next read scenario settles the tables first
    reads: bool = False


def summarise(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Medians over the repeated measured runs of each (app, scenario, workers, connections)."""
    groups: dict[tuple[str, str, int, int], list[dict[str, Any]]] = defaultdict(list)
    for r in runs:
        if r["phase"] == "measured":
            groups[(r["app"], r["scenario"], r["workers"], r["connections"])].append(r)
    out = []
    for (app, scenario, workers, connections), rs in groups.items():
        s: dict[str, Any] = {
            "app": app,
            "scenario": scenario,
            "workers": workers,
            "connections": connections,
            "runs": len(rs),
            "rps": round(statistics.median(r["rps"] for r in rs), 1),
            "rps_min": round(min(r["rps"] for r in rs), 1),
            "rps_max": round(max(r["rps"] for r in rs), 1),
            "latency_ms": {
                k: round(statistics.median(r["latency_ms"][k] for r in rs), 2)
                for k in ("p50", "p90", "p99", "max")
            },
            "cpu_ms_per_request": _median_of(rs, "cpu_ms_per_request"),
            "postgres_cpu_ms_per_request": _median_of(rs, "postgres_cpu_ms_per_request"),
            "cpu_cores": {
                k: round(statistics.median(r["cpu_cores"][k] for r in rs), 2) for k in rs[0]["cpu_cores"]
            },
            "socket_errors": sum(r["socket_errors"] for r in rs),
            "non_2xx": sum(r["non_2xx"] for r in rs),
        }
        if all("completed_per_s" in r for r in rs):
            s["completed_per_s"] = round(statistics.median(r["completed_per_s"] for r in rs), 1)
            s["completion_lag_ms"] = {
                k: round(statistics.median(r["completion_lag_ms"][k] for r in rs), 1) for k in ("p50", "p99")
            }
            s["incomplete"] = sum(r["incomplete"] for r in rs)
            for key in asyncpath.PER_COMPLETED:
                s[key] = _median_of(rs, key)
        out.append(s)
    return out


def _median_of(rs: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in rs if r.get(key) is not None]
    return round(statistics.median(values), 2) if values else None


def _index(summary: list[dict[str, Any]]) -> dict[tuple[str, str, int, int], dict[str, Any]]:
    return {(s["app"], s["scenario"], s["workers"], s["connections"]): s for s in summary}


def throughput(s: dict[str, Any]) -> float:
    """The figure a scenario is judged by: requests/s, or completed payments/s on the async path."""
    value: float = s.get("completed_per_s", s["rps"])
    return value


def ratios(summary: list[dict[str, Any]], scenarios: list[ScenarioInfo]) -> list[dict[str, Any]]:
    idx = _index(summary)
    out = asyncpath.ratios(summary)
    for sc in scenarios:
        for (app, name, workers, connections), s in sorted(idx.items()):
            if app != "gateway" or name != sc.name:
                continue
            floor = idx.get(("floor", sc.floor_ref, workers, connections))
            if floor is None or not floor["rps"]:
                continue
            out.append(
                {
                    "scenario": sc.name,
                    "workers": workers,
                    "connections": connections,
                    "gateway": throughput(s),
                    "floor_scenario": sc.floor_ref,
                    "floor": floor["rps"],
                    "ratio": round(throughput(s) / floor["rps"], 3),
                }
            )
    return out


def targets(
    summary: list[dict[str, Any]],
    scenarios: list[ScenarioInfo],
    memory: list[dict[str, Any]],
    runs: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    idx = _index(summary)
    w, c = PRIMARY
    out: list[dict[str, Any]] = []

    def add(name: str, goal: str, measured: str, ok: bool | None) -> None:
        out.append(
            {
                "target": name,
                "goal": goal,
                "measured": measured,
                "result": "n/a" if ok is None else ("PASS" if ok else "FAIL"),
            }
        )

    for sc in scenarios:
        if sc.ratio_target is None:
            continue
        gw = idx.get(("gateway", sc.name, w, c))
        fl = idx.get(("floor", sc.floor_ref, w, c))
        label = f"{sc.name} / floor {sc.floor_ref} ({w} workers, {c} conns)"
        goal = f">= {sc.ratio_target:.0%}"
        if gw is None or fl is None or not fl["rps"]:
            add(label, goal, "not measured", None)
            continue
        ratio = throughput(gw) / fl["rps"]
        add(
            label,
            goal,
            f"{ratio:.0%} ({throughput(gw):.0f} vs {fl['rps']:.0f} req/s)",
            ratio >= sc.ratio_target,
        )
        other = idx.get(("floor", sc.beside, w, c)) if sc.beside else None
        if other is not None and other["rps"]:
            mine = throughput(gw) / other["rps"]
            add(
                f"{sc.name} / floor {sc.beside} ({w} workers, {c} conns)",
                "(no target)",
                f"{mine:.0%} ({throughput(gw):.0f} vs {other['rps']:.0f} req/s)",
                None,
            )
        if sc.name == "create":
            p99 = gw["latency_ms"]["p99"]
            add(
                f"create p99 ({w} workers, {c} conns)",
                f"<= {CREATE_P99_LIMIT_MS:.0f} ms",
                f"{p99:.1f} ms",
                p99 <= CREATE_P99_LIMIT_MS,
            )

    gw_mem = [m for m in memory if m["app"] == "gateway"]
    if gw_mem:
        peaks = [wk["VmHWM"] / 1024 for m in gw_mem for wk in m["workers"] if "VmHWM" in wk]
        worst = max(peaks) if peaks else 0.0
        add(
            "peak RSS per gateway worker (VmHWM, after the runs)",
            f"<= {RSS_LIMIT_MIB:.0f} MiB",
            ", ".join(f"{p:.0f}" for p in peaks) + " MiB",
            bool(peaks) and worst <= RSS_LIMIT_MIB,
        )

    gw_runs = [r for r in runs if r["app"] == "gateway"]
    socket_errors = sum(r["socket_errors"] for r in gw_runs)
    non_2xx = sum(r["non_2xx"] for r in gw_runs)
    incomplete = sum(r.get("incomplete", 0) for r in gw_runs if r["phase"] == "measured")
    add(
        "no errors, no unexpected non-2xx (every gateway run, warm-ups included)",
        "0",
        f"{socket_errors} socket errors, {non_2xx} non-2xx, {incomplete} async payments not completed",
        socket_errors == 0 and non_2xx == 0 and incomplete == 0,
    )
    out += asyncpath.targets(summary, PRIMARY)
    return out


def open_loop_targets(open_loop: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The open-loop runs' p99 targets (bench/openloop.py), and that every request was answered 2xx."""
    out = []
    for r in open_loop:
        goal = r.get("target_p99_ms")
        if goal is None:
            continue
        p99 = r["latency_ms"].get("p99")
        failed = r["non_2xx"] + sum(r["errors"].values()) + r["unanswered"]
        measured = "no answer" if p99 is None else f"{p99:.1f} ms at {r['rate']:.0f} req/s"
        if failed:
            measured += f" ({failed} failed or unanswered)"
        out.append(
            {
                "target": f"open loop: {r['name']} p99 from the intended send time",
                "goal": f"<= {goal:.0f} ms",
                "measured": measured,
                "result": "PASS" if p99 is not None and p99 <= goal and not failed else "FAIL",
            }
        )
    return out


def open_loop_table(open_loop: list[dict[str, Any]]) -> str:
    lines = [
        "| run | rate sent (basis) | answered/s | p50 / p90 / p99 / max ms | target p99 | result "
        "| non-2xx / errors / unanswered | send lag p99 / max ms | generator cores (µs/req) "
        "| gateway cores | PostgreSQL cores |",
        "|---|---|---:|---|---|---|---|---|---|---:|---:|",
    ]
    for r in open_loop:
        lat, lag = r["latency_ms"], r["send_lag_ms"]
        goal = r.get("target_p99_ms")
        p99 = lat.get("p99")
        failed = r["non_2xx"] + sum(r["errors"].values()) + r["unanswered"]
        if goal is None:
            verdict = "—"
        else:
            verdict = "**PASS**" if p99 is not None and p99 <= goal and not failed else "**FAIL**"
        cores = r.get("cpu_cores", {})
        lines.append(
            f"| {r['name']} | {r['rate']:.0f} ({r['rate_basis']}) | {r['achieved_rps']:.0f} | "
            f"{lat.get('p50', 0):.1f} / {lat.get('p90', 0):.1f} / {lat.get('p99', 0):.1f} / "
            f"{lat.get('max', 0):.1f} | {'—' if goal is None else f'<= {goal:.0f} ms'} | {verdict} | "
            f"{r['non_2xx']} / {sum(r['errors'].values())} / {r['unanswered']} | "
            f"{lag.get('p99', 0):.1f} / {lag.get('max', 0):.1f} | "
            f"{r['generator_cpu_cores']:.2f} ({r['generator_cpu_us_per_request']:.0f}) | "
            f"{cores.get('gateway', 0):.2f} | {cores.get('postgres', 0):.2f} |"
        )
    return "\n".join(lines)


def _open_loop_section(data: dict[str, Any]) -> str:
    rows = data.get("open_loop")
    if not rows:
        return ""
    return f"""
## Open loop (latency from the intended send time; bench/openloop.py)

{open_loop_table(rows)}

Requests sent on a fixed schedule whatever the gateway does, each timed from the instant it was
due to the last byte of its answer (no coordinated omission: waiting for a connection or for a
late generator counts). Send lag: how late the generator sent; if it nears the latencies, the
generator, not the gateway, made them.
"""


# --- Markdown ----------------------------------------------------------------------------------


def _ms(s: dict[str, Any]) -> str:
    lat = s["latency_ms"]
    return f"{lat['p50']:.1f} / {lat['p90']:.1f} / {lat['p99']:.1f}"


def _rps(s: dict[str, Any]) -> str:
    if s["runs"] > 1:
        return f"{s['rps']:.0f} ({s['rps_min']:.0f}-{s['rps_max']:.0f})"
    return f"{s['rps']:.0f}"


def _cpu(s: dict[str, Any]) -> str:
    app, pg = s.get("cpu_ms_per_request"), s.get("postgres_cpu_ms_per_request")
    return "—" if app is None or pg is None else f"{app:.2f} + {pg:.2f}"


def results_table(summary: list[dict[str, Any]], scenarios: list[ScenarioInfo]) -> str:
    idx = _index(summary)
    configs = sorted({(s["workers"], s["connections"]) for s in summary})
    lines = [
        "| scenario | workers | conns | gateway req/s | gateway p50 / p90 / p99 ms "
        "| gateway CPU ms/req (app + PG) | errors / non-2xx "
        "| floor | floor req/s | floor p50 / p90 / p99 ms | floor CPU ms/req (app + PG) | gateway / floor |",
        "|---|---:|---:|---:|---|---|---:|---|---:|---|---|---:|",
    ]
    for sc in scenarios:
        for w, c in configs:
            gw = idx.get(("gateway", sc.name, w, c))
            if gw is None:
                continue
            fl = idx.get(("floor", sc.floor_ref, w, c))
            gw_figure = _rps(gw)
            if sc.async_path and "completed_per_s" in gw:
                lag = gw["completion_lag_ms"]
                gw_figure = (
                    f"{gw['completed_per_s']:.0f} completed/s ({gw['rps']:.0f} creates/s; "
                    f"create→succeeded p50 {lag['p50']:.0f} ms, p99 {lag['p99']:.0f} ms)"
                )
            ratio = f"{throughput(gw) / fl['rps']:.2f}" if fl and fl["rps"] else "—"
            lines.append(
                f"| {sc.title} | {w} | {c} | {gw_figure} | {_ms(gw)} | {_cpu(gw)} | "
                f"{gw['socket_errors']} / {gw['non_2xx']} | {sc.floor_ref} | "
                + (f"{_rps(fl)} | {_ms(fl)} | {_cpu(fl)} | " if fl else "— | — | — | ")
                + f"{ratio} |"
            )
    return "\n".join(lines)


def cpu_table(summary: list[dict[str, Any]], scenarios: list[ScenarioInfo], nproc: int) -> str:
    """Where the machine's CPU went during the runs at the targets' point."""
    idx = _index(summary)
    w, c = PRIMARY
    lines = [
        f"| scenario | app | app | PostgreSQL | Redis | wrk | stand-in provider | other "
        f"| whole machine (of {nproc}) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for sc in scenarios:
        for app, name in (("gateway", sc.name), ("floor", sc.name)):
            s = idx.get((app, name, w, c))
            if s is None:
                continue
            cores = s["cpu_cores"]
            lines.append(
                f"| {sc.title} | {app} | {cores.get(app, 0):.2f} | {cores.get('postgres', 0):.2f} | "
                f"{cores.get('redis', 0):.2f} | {cores.get('wrk', 0):.2f} | {cores.get('provider', 0):.2f} | "
                f"{cores.get('other', 0):.2f} | "
                f"{cores.get('machine', 0):.2f} |"
            )
    return "\n".join(lines)


def targets_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| target | goal | measured | result |", "|---|---|---|---|"]
    lines += [f"| {t['target']} | {t['goal']} | {t['measured']} | **{t['result']}** |" for t in rows]
    return "\n".join(lines)


def memory_table(memory: list[dict[str, Any]]) -> str:
    lines = ["| app | workers | peak RSS per worker (VmHWM, MiB) | RSS now (MiB) |", "|---|---:|---|---|"]
    for m in memory:
        hwm = ", ".join(f"{wk['VmHWM'] / 1024:.0f}" for wk in m["workers"] if "VmHWM" in wk)
        rss = ", ".join(f"{wk['VmRSS'] / 1024:.0f}" for wk in m["workers"] if "VmRSS" in wk)
        lines.append(f"| {m['app']} | {m['workers_count']} | {hwm} | {rss} |")
    return "\n".join(lines)


def logs_list(logs: list[dict[str, Any]]) -> str:
    lines = []
    for entry in logs:
        events = ", ".join(f"{name}: {n}" for name, n in entry["events"].items()) or "nothing"
        lines.append(f"- {entry['workers_count']} worker(s): {events}")
    return "\n".join(lines) or "- nothing"


def _async_section(summary: list[dict[str, Any]]) -> str:
    table = asyncpath.table(summary)
    if not table:
        return ""
    return f"""## The asynchronous path, per completed payment

{table}

CPU per completed payment: from the start of the run until every payment it created has completed
(its last webhooks included), divided by those payments. The stand-in provider (bench/provider.py)
sends the sandbox's webhooks from a process of its own; its CPU is not the app's.
"""


def markdown(data: dict[str, Any], scenarios: list[ScenarioInfo]) -> str:
    m = data["machine"]
    v = data["versions"]
    pg = data["postgres_settings"]
    cfg = data["config"]
    git = data["git"]
    pkgs = ", ".join(f"{k} {val}" for k, val in v["packages"].items())
    dirty = " (with uncommitted changes)" if git["dirty"] else ""
    if not git.get("source_is_checkout", True):
        dirty = f" (checkout's HEAD; the gateway code measured was imported from {git['gateway_source']})"
    note = f"\n\nNote: {data['note']}" if data.get("note") else ""
    return f"""# Benchmark {data["date"]} ({data["mode"]})

Gateway commit `{git["commit"]}`{dirty}. Machine: {m["nproc"]} CPUs
({m["cpu_model"]}), {m["memory_gib"]} GiB, Linux {m["kernel"]}. Python {m["python"]}, PostgreSQL
{v["postgres"]} (fsync={pg["fsync"]}, synchronous_commit={pg["synchronous_commit"]}), Redis {v["redis"]},
{m["wrk"]}. {pkgs}.{note}

Everything on one box over 127.0.0.1: wrk ({cfg["wrk_threads"]} threads), the app under test (uvicorn,
uvloop, httptools), PostgreSQL and Redis. Each measured run lasts {cfg["duration_s"]:g} s after a
{cfg["warmup_s"]:g} s warm-up; figures are medians of {cfg["repeats_primary"]} run(s) at
{PRIMARY[0]} workers / {PRIMARY[1]} connections (range in brackets) and of {cfg["repeats_other"]}
elsewhere; the gateway and the floor run alternately. Latencies are wrk's, in ms. Cores busy
before the bench started: {data.get("background_load_cores", 0):.2f} (above ~0.2, something else was
running and the figures are noisier).

## Targets ({PRIMARY[0]} workers, {PRIMARY[1]} connections)

{targets_table(data["targets"])}

## Results

{results_table(data["summary"], scenarios)}

CPU ms/req: CPU time the app's processes (all workers) and PostgreSQL's used during the run, per
request answered: less noisy than requests/s on a shared box, and what an optimisation lowers.
"other" in the table below is the machine's busy time not accounted to the app under test,
PostgreSQL, Redis or wrk (the idle app, the harness, anything else running): it should be near 0.

{_async_section(data["summary"])}
## Where the CPU went ({PRIMARY[0]} workers, {PRIMARY[1]} connections; cores busy on average)

{cpu_table(data["summary"], scenarios, m["nproc"])}

{_open_loop_section(data)}
## Memory

{memory_table(data["memory"])}

## What the gateway logged (WARNING and above)

{logs_list(data.get("logs", []))}
"""


def main(argv: list[str]) -> int:
    """`python -m bench.report bench/results/<date>.json`: write its .md again (after a report change)."""
    if len(argv) != 1:
        print("usage: python -m bench.report bench/results/<date>.json", file=sys.stderr)
        return 2
    path = Path(argv[0])
    data = json.loads(path.read_text())
    scenarios = [ScenarioInfo(**s) for s in data["scenarios"]]
    path.with_suffix(".md").write_text(markdown(data, scenarios))
    print(path.with_suffix(".md"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
