"""The asynchronous path in the bench: the stand-in provider's process, the figures counted in
PostgreSQL after each run, and the async floor's ratios and targets (issue #15).

A run of the `async` scenario creates `pm_action_success` payments (201 `requires_action`); the
stand-in provider (bench/provider.py, a process of its own) sends each one's signed webhook 0.2 s
after its creation, to the gateway's `/v1/webhooks/sandbox` or to the floor's `/floor/webhook`. The
figures: payments completed per second inside wrk's window, the create → succeeded lag, and the CPU
per completed payment, from the start of the run until every payment it created has completed (so
the webhooks of the run's last creates are in it too).
"""

from __future__ import annotations

import os
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bench.infra import ROOT, App, BenchError, Db, Proc, Processes, WrkResult, cpu_snapshot, say
from gateway.events.publisher import channel

# The targets for the asynchronous path, at 2 workers and 16 connections.
RATIO_TARGET = 0.40  # completed payments/s against the floor's creates/s
CPU_FACTOR_TARGET = 2.0  # gateway CPU per completed payment against a create's
LAG_P99_TARGET_MS = 500.0
FLOOR_CHANNEL = "floor:payments"  # bench/floor.py's PROVIDER_CHANNEL
FLOOR_WEBHOOK_PATH = "/floor/webhook"


def start_provider(
    procs: Processes,
    redis_url: str,
    merchant_id: str,
    gateway: App,
    floor: App | None,
    run_dir: Path,
    delay: float,
) -> Proc:
    targets = {channel(merchant_id, False): gateway.base_url + "/v1/webhooks/sandbox"}
    if floor is not None:
        targets[FLOOR_CHANNEL] = floor.base_url + FLOOR_WEBHOOK_PATH
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "FLOOR_", "PROVIDER_"))}
    env |= {
        "PROVIDER_REDIS_URL": redis_url,
        "PROVIDER_TARGETS": " ".join(f"{c}={u}" for c, u in targets.items()),
        "PROVIDER_DELAY": str(delay),
    }
    log_path = run_dir / "provider.log"
    proc = procs.start(
        "provider", [sys.executable, "-m", "bench.provider"], env=env, cwd=ROOT, log_path=log_path
    )
    deadline = time.monotonic() + 15
    while "listening" not in proc.log_tail():
        if not proc.alive() or time.monotonic() > deadline:
            raise BenchError(f"the stand-in provider did not start:\n{proc.log_tail()}")
        time.sleep(0.1)
    return proc


_MINE = "merchant_id = $1 AND payment_method = 'pm_action_success'"


def measure(
    db: Db,
    merchant_id: str,
    app: str,
    started: datetime,
    ended: datetime,
    wrk: WrkResult,
    cpu_before: dict[str, float],
    groups: dict[str, int],
) -> dict[str, Any]:
    window_start = ended - timedelta(seconds=wrk.duration_s)
    completed = db.value(
        f"SELECT count(*) FROM payments WHERE {_MINE} AND status = 'succeeded' "
        "AND completed_at >= $2 AND completed_at < $3",
        merchant_id,
        window_start,
        ended,
    )
    # Let the last webhooks land (and the next run start clean); anything left is a lost completion.
    drain_started = time.monotonic()
    pending = -1
    while time.monotonic() - drain_started < 30:
        pending = db.value(
            f"SELECT count(*) FROM payments WHERE {_MINE} AND status = 'requires_action'",
            merchant_id,
        )
        if pending == 0:
            break
        time.sleep(0.05)
    cpu_after = cpu_snapshot(groups)
    row = db.fetch(
        "SELECT count(*) AS made, count(completed_at) AS done, "
        "percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP "
        "(ORDER BY extract(epoch FROM completed_at - created_at)) AS q FROM payments "
        f"WHERE {_MINE} AND created_at >= $2 AND created_at < $3",
        merchant_id,
        started,
        ended,
    )[0]
    q = row["q"] or [0.0, 0.0]
    done = int(row["done"])

    def per_completed(group: str) -> float | None:
        if not done or group not in cpu_after:
            return None
        return round(1000 * (cpu_after[group] - cpu_before[group]) / done, 3)

    return {
        "completed": completed,
        "completed_per_s": round(completed / wrk.duration_s, 1) if wrk.duration_s else 0.0,
        "completion_lag_ms": {"p50": round(q[0] * 1000, 1), "p99": round(q[1] * 1000, 1)},
        "drain_s": round(time.monotonic() - drain_started, 2),
        "incomplete": pending,
        # From the run's start until its last payment completed, per payment the run created.
        "created_in_run": row["made"],
        "cpu_ms_per_completed": per_completed(app),
        "postgres_cpu_ms_per_completed": per_completed("postgres"),
        "provider_cpu_ms_per_completed": per_completed("provider"),
    }


PER_COMPLETED = ("cpu_ms_per_completed", "postgres_cpu_ms_per_completed", "provider_cpu_ms_per_completed")


# --- report -------------------------------------------------------------------------------------


def _idx(summary: list[dict[str, Any]]) -> dict[tuple[str, str, int, int], dict[str, Any]]:
    return {(s["app"], s["scenario"], s["workers"], s["connections"]): s for s in summary}


def ratios(summary: list[dict[str, Any]], name: str = "async") -> list[dict[str, Any]]:
    """The async path against the async floor (completed payments/s on both sides)."""
    idx = _idx(summary)
    out = []
    for (app, scenario, w, c), s in sorted(idx.items()):
        floor = idx.get(("floor", scenario, w, c))
        if app != "gateway" or scenario != name or floor is None or not floor.get("completed_per_s"):
            continue
        out.append(
            {
                "scenario": name,
                "workers": w,
                "connections": c,
                "gateway": s["completed_per_s"],
                "floor_scenario": f"{name} (floor webhook)",
                "floor": floor["completed_per_s"],
                "ratio": round(s["completed_per_s"] / floor["completed_per_s"], 3),
            }
        )
    return out


def targets(
    summary: list[dict[str, Any]], primary: tuple[int, int], name: str = "async"
) -> list[dict[str, Any]]:
    """CPU per completed payment against a create's, and the lag's p99 (the ratio to the floor's
    create is the scenario's ratio_target, checked with the others)."""
    idx = _idx(summary)
    w, c = primary
    gw, create = idx.get(("gateway", name, w, c)), idx.get(("gateway", "create", w, c))
    out: list[dict[str, Any]] = []
    if gw is None or "completed_per_s" not in gw:
        return out
    per = gw.get("cpu_ms_per_completed")
    per_create = create.get("cpu_ms_per_request") if create else None
    if per is not None and per_create:
        out.append(
            {
                "target": f"gateway CPU per completed async payment / per create ({w} workers, {c} conns)",
                "goal": f"<= {CPU_FACTOR_TARGET:.1f}x",
                "measured": f"{per / per_create:.2f}x ({per:.2f} vs {per_create:.2f} ms)",
                "result": "PASS" if per <= CPU_FACTOR_TARGET * per_create else "FAIL",
            }
        )
    p99 = gw["completion_lag_ms"]["p99"]
    out.append(
        {
            "target": f"async create → succeeded lag p99 ({w} workers, {c} conns, delay 0.2 s)",
            "goal": f"<= {LAG_P99_TARGET_MS:.0f} ms",
            "measured": f"{p99:.0f} ms (p50 {gw['completion_lag_ms']['p50']:.0f} ms)",
            "result": "PASS" if p99 <= LAG_P99_TARGET_MS else "FAIL",
        }
    )
    return out


def _ms(v: float | None) -> str:
    return "—" if v is None else f"{v:.2f}"


def table(summary: list[dict[str, Any]], name: str = "async") -> str:
    """Both sides of the async path, per completed payment."""
    lines = [
        "| app | workers | conns | creates/s | completed/s | lag p50 / p99 ms "
        "| CPU ms per completed (app + PG) | stand-in provider CPU ms per completed "
        "| completed/s vs the async floor's |",
        "|---|---:|---:|---:|---:|---|---|---:|---:|",
    ]
    idx = _idx(summary)
    for (app, scenario, w, c), s in sorted(idx.items()):
        if scenario != name or "completed_per_s" not in s:
            continue
        lag = s["completion_lag_ms"]
        floor = idx.get(("floor", scenario, w, c), {})
        ratio = "—"
        if app == "gateway" and floor.get("completed_per_s"):
            ratio = f"{s['completed_per_s'] / floor['completed_per_s']:.2f}"
        lines.append(
            f"| {app} | {w} | {c} | {s['rps']:.0f} | {s['completed_per_s']:.0f} | "
            f"{lag['p50']:.0f} / {lag['p99']:.0f} | {_ms(s.get('cpu_ms_per_completed'))} + "
            f"{_ms(s.get('postgres_cpu_ms_per_completed'))} | {_ms(s.get('provider_cpu_ms_per_completed'))} "
            f"| {ratio} |"
        )
    return "\n".join(lines) if len(lines) > 2 else ""


def check_floor(floor: App, api_key: str, body: str) -> None:
    """The floor's asynchronous create is completed by the stand-in provider's webhook."""
    import uuid

    import httpx

    headers = {
        "Authorization": f"Bearer {api_key}",
        "Idempotency-Key": f"bench-check-{uuid.uuid4().hex}",
        "Content-Type": "application/json",
    }
    with httpx.Client(base_url=floor.base_url, timeout=15) as c:
        r = c.post("/v1/payments", content=body, headers=headers)
        if r.status_code != 201 or r.json()["status"] != "requires_action":
            raise BenchError(f"floor async create: {r.status_code} {r.text[:300]}")
        payment_id = r.json()["id"]
    deadline = time.monotonic() + 15
    with httpx.Client(base_url=floor.base_url, timeout=15) as c:
        while c.get(f"/v1/payments/{payment_id}", headers=headers).json()["status"] != "succeeded":
            if time.monotonic() > deadline:
                raise BenchError("floor async path: the stand-in provider's webhook did not complete it")
            time.sleep(0.1)
    say("  async path checked on both sides (the stand-in provider's webhooks complete payments)")
