"""The scale-out bench's Markdown (bench/scaleout.py): throughput, CPU per request by process group,
what that implies per core, the connections the servers held, and the exactly-once checks.

    python -m bench.scaleout_report bench/results/<date>-scaleout.json   # the Markdown again
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

SERVERS = ("postgres", "pgbouncer", "redis")


def cpu_ms(run: dict[str, Any], per: int) -> dict[str, float]:
    """CPU milliseconds per unit (request or completed payment) of each group: the replicas' API
    processes together, their `gateway worker` processes together, and each server."""
    s = run["cpu_seconds"]
    groups = {
        "api": sum(v for k, v in s.items() if k.endswith(" api")),
        "worker": sum(v for k, v in s.items() if k.endswith(" worker")),
        **{name: s.get(name, 0.0) for name in SERVERS},
        "wrk": s.get("wrk", 0.0),
    }
    return {k: round(1000 * v / per, 3) if per else 0.0 for k, v in groups.items()}


def units(run: dict[str, Any]) -> int:
    """What the run is counted in: requests, or completed payments on the asynchronous path."""
    return int(run["completed"]) if run["scenario"] == "async" else int(run["requests"])


def per_core(ms: float) -> str:
    return f"{1000 / ms:,.0f}" if ms else "—"


def busy(run: dict[str, Any]) -> str:
    """Cores the whole machine was busy on average: at the machine's count, CPU is what limits."""
    return f"{run['cpu_seconds']['machine'] / run['elapsed_s']:.2f}" if run["elapsed_s"] else "—"


def results_table(layouts: list[dict[str, Any]]) -> str:
    lines = [
        "| layout | scenario | throughput | p99 ms | gateway API CPU ms | + worker | PostgreSQL | PgBouncer "
        "| Redis | stack CPU ms | per gateway core | per stack core | machine busy | errors / non-2xx |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for lo in layouts:
        for run in lo["runs"]:
            if run["phase"] != "measured":
                continue
            ms = cpu_ms(run, units(run))
            gateway = ms["api"] + ms["worker"]
            stack = gateway + ms["postgres"] + ms["pgbouncer"] + ms["redis"]
            if run["scenario"] == "async":
                rate = f"{run['completed_per_s']:.0f} completed/s ({run['rps']:.0f} creates/s)"
            else:
                rate = f"{run['rps']:.0f} req/s"
            lines.append(
                f"| {lo['layout']} | {run['scenario']} | {rate} | {run['latency_ms_p99']:.1f} "
                f"| {ms['api']:.2f} | {ms['worker']:.2f} | {ms['postgres']:.2f} | {ms['pgbouncer']:.2f} "
                f"| {ms['redis']:.2f} | {stack:.2f} | {per_core(gateway)}/s | {per_core(stack)}/s "
                f"| {busy(run)} | {run['socket_errors']} / {run['non_2xx']} |"
            )
    return "\n".join(lines)


def connections_table(layouts: list[dict[str, Any]]) -> str:
    lines = [
        "| layout | scenario | client connections at PgBouncer | PgBouncer's server connections "
        "| PostgreSQL backends | Redis clients |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for lo in layouts:
        for run in lo["runs"]:
            if run["phase"] != "measured":
                continue
            c = run["connections_seen"]
            lines.append(
                f"| {lo['layout']} | {run['scenario']} | {c.get('pgbouncer_clients', '—')} "
                f"| {c.get('pgbouncer_servers', '—')} | {c['postgres_backends']} | {c['redis_clients']} |"
            )
    return "\n".join(lines)


def checks_table(layouts: list[dict[str, Any]]) -> str:
    lines = [
        "| layout | payments: rows / 201s (keys twice) | deliveries: events / received once "
        "(missing, twice) | streams: events / each replica's stream (missing, repeated) "
        "| outcomes twice | result |",
        "|---|---|---|---|---:|---|",
    ]
    for lo in layouts:
        c = lo["checks"]
        p, d, s = c["payments"], c["deliveries"], c["streams"]
        received_once = d["events"] - d["never_received"] - d["received_twice"]
        streams = ", ".join(
            f"{name} {v['received']} ({v['missing']}, {v['repeated']})" for name, v in s["streams"].items()
        )
        ok = all(v["ok"] for v in c.values())
        lines.append(
            f"| {lo['layout']} | {p['rows']} / {p['answered_201']} ({p['keys_with_two_payments']}) "
            f"| {d['events']} / {received_once} ({d['never_received']}, {d['received_twice']}) "
            f"| {s['events']} / {streams} | {c['one_outcome']['payments_succeeded_twice']} "
            f"| {'PASS' if ok else '**FAIL**'} |"
        )
    return "\n".join(lines)


def deliveries_line(layouts: list[dict[str, Any]]) -> str:
    parts = []
    for lo in layouts:
        delivered = lo["checks"]["deliveries"]["events"]
        per = round(1000 * lo["worker_cpu_s"] / delivered, 2) if delivered else 0.0
        parts.append(
            f"{lo['layout']}: {delivered} deliveries, {per} ms of `gateway worker` CPU each, the queue "
            f"empty {lo['deliveries_drained_s']:.0f} s after the last run"
        )
    return "; ".join(parts)


def markdown(data: dict[str, Any]) -> str:
    cfg, m = data["config"], data["machine"]
    route = "through PgBouncer (transaction mode)" if cfg["pgbouncer"] else "straight to PostgreSQL"
    layouts = data["layouts"]
    note = f" Note: {data['note']}" if data["note"] else ""
    return f"""# Scale-out benchmark {data["date"]}

Gateway commit `{data["git"]["commit"]}`{" (with uncommitted changes)" if data["git"]["dirty"] else ""}.
Machine: {m["nproc"]} CPUs ({m["cpu_model"]}), {m["memory_gib"]} GiB, Python {m["python"]},
PostgreSQL {data["versions"]["postgres"]} (fsync={data["postgres_settings"]["fsync"]},
synchronous_commit={data["postgres_settings"]["synchronous_commit"]}), Redis {data["versions"]["redis"]}.
Cores busy before the run: {data["background_load_cores"]:.2f}.{note}

Layouts `RxW`: R gateway replicas, each `uvicorn --workers W` plus one `gateway worker`, on one
PostgreSQL {route} and one Redis. Two wrk processes, {cfg["connections"]} connections in all
(half each), one on each replica (both on the one replica of a 1xW layout); {cfg["duration_s"]:.0f} s
measured after a {cfg["warmup_s"]:.0f} s warm-up. Provider webhooks go to the next replica. A live
event stream is held open on every replica throughout, and the merchant has one webhook endpoint
(`payment.succeeded`), so the gateway's CPU includes sending every event to two streams (one with
one replica) and the `gateway worker`'s includes the deliveries it sent during the run.

## Throughput and CPU

CPU ms per request (per completed payment for `async`), from /proc: the replicas' API processes,
their `gateway worker` processes, and each server; "stack" is all of them. "Per core" is 1000
divided by those: the requests one core of that kind serves, which holds however many cores a
deployment has as long as each replica gets its own. On this machine every layout shares the same
{m["nproc"]} cores ("machine busy": cores in use, wrk and this harness's stream readers included),
so a second replica cannot add throughput here: compare CPU per request.

{results_table(layouts)}

Outbound deliveries (counted over the whole layout, the queue drained after the runs):
{deliveries_line(layouts)}.

## Connections held after each run

{connections_table(layouts)}

## Exactly once

Payments: rows made with the runs' Idempotency-Keys against the 201s wrk counted (rows may exceed
201s by the requests in flight when wrk stopped, at most its connections), and keys with two rows.
Deliveries: every `payment.succeeded` event since the streams opened has one delivery row, delivered,
and reached the endpoint once. Streams: every event since they opened, on each replica's stream,
none repeated, none missing. Outcomes: no payment with two `payment.succeeded` events.

{checks_table(layouts)}
"""


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m bench.scaleout_report bench/results/<date>-scaleout.json", file=sys.stderr)
        return 2
    print(markdown(json.loads(Path(argv[1]).read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
