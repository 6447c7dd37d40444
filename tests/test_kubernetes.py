"""deploy/kubernetes/ agrees with itself and with the gateway.

`make check-container` validates each manifest against the Kubernetes API schemas; these tests
check what a schema cannot: that selectors select, that names refer to things that exist, that every
GATEWAY_* variable is a setting the gateway reads, that ports, probes and commands are the gateway's,
that the grace period covers the shutdown it is sized for, and that `gateway serve` and `gateway
worker` start, answer their probes and stop with exactly the manifests' settings.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from pydantic import AliasChoices, BaseModel

from gateway.cli import SERVE_GRACEFUL_SHUTDOWN_SECONDS
from gateway.embedded import EmbeddedServers, free_port
from gateway.embedded_pgbouncer import start_pgbouncer
from gateway.kit.secretbox import new_key_text
from gateway.main import create_app
from gateway.merchants import tokens
from gateway.settings import Settings
from support import Merchant, wait_for

ROOT = Path(__file__).parents[1]
MANIFESTS = ROOT / "deploy" / "kubernetes"
Resource = dict[str, Any]


def resources() -> list[Resource]:
    found: list[Resource] = []
    for path in sorted(MANIFESTS.glob("*.yaml")):
        found += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return found


def one(kind: str, name: str) -> Resource:
    matches = [r for r in resources() if r["kind"] == kind and r["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


def workloads() -> list[Resource]:
    return [r for r in resources() if r["kind"] in ("Deployment", "Job")]


def pod_spec(workload: Resource) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def container(workload: Resource) -> dict[str, Any]:
    containers = pod_spec(workload)["containers"]
    assert len(containers) == 1
    c: dict[str, Any] = containers[0]
    return c


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def setting_names(model: type[BaseModel] = Settings, prefix: str = "GATEWAY_") -> set[str]:
    """Every environment variable the settings read (nested groups joined by `__`)."""
    names: set[str] = set()
    for field_name, field in model.model_fields.items():
        env = prefix + field_name.upper()
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names |= setting_names(annotation, env + "__")
        else:
            names.add(env)
        if isinstance(field.validation_alias, AliasChoices):
            names |= {c.upper() for c in field.validation_alias.choices if isinstance(c, str)}
    return names


def config_data() -> dict[str, str]:
    data: dict[str, str] = one("ConfigMap", "gateway-config")["data"]
    return data


def secret_data() -> dict[str, str]:
    data: dict[str, str] = one("Secret", "gateway-secrets")["stringData"]
    return data


# --- the manifests among themselves -------------------------------------------------------------


def test_every_workload_selects_its_own_pods_and_runs_the_one_image() -> None:
    images = set()
    for w in workloads():
        labels = w["spec"]["template"]["metadata"]["labels"]
        if w["kind"] == "Deployment":
            assert selects(w["spec"]["selector"]["matchLabels"], labels), w["metadata"]["name"]
        images.add(container(w)["image"])
    assert len(images) == 1, images
    deployments = {r["metadata"]["name"] for r in resources() if r["kind"] == "Deployment"}
    assert deployments == {"gateway-api", "gateway-worker"}


def test_services_and_budgets_select_exactly_one_deployment_and_the_autoscaler_targets_the_api() -> None:
    pods = {
        r["metadata"]["name"]: r["spec"]["template"]["metadata"]["labels"]
        for r in resources()
        if r["kind"] == "Deployment"
    }
    for r in resources():
        if r["kind"] == "Service" and r["spec"].get("type") != "ExternalName":
            selector = r["spec"]["selector"]
        elif r["kind"] == "PodDisruptionBudget":
            selector = r["spec"]["selector"]["matchLabels"]
        else:
            continue
        chosen = [name for name, labels in pods.items() if selects(selector, labels)]
        assert chosen == [r["metadata"]["name"]], (r["kind"], r["metadata"]["name"], chosen)
    hpa = one("HorizontalPodAutoscaler", "gateway-api")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "gateway-api",
    }
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]
    # The autoscaler owns the count: a `replicas` in the Deployment would reset it at every apply.
    assert "replicas" not in one("Deployment", "gateway-api")["spec"]


def test_config_and_secret_references_exist() -> None:
    secret = secret_data()
    for w in workloads():
        c = container(w)
        for source in c.get("envFrom", []):
            if "configMapRef" in source:
                one("ConfigMap", source["configMapRef"]["name"])
            else:
                one("Secret", source["secretRef"]["name"])
        for var in c.get("env", []):
            ref = var.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["name"] == "gateway-secrets", var
                assert ref["key"] in secret, var
        port_names = {p["name"] for p in c.get("ports", [])}
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            if probe in c:
                assert c[probe]["httpGet"]["port"] in port_names, (w["metadata"]["name"], probe)
    service = one("Service", "gateway-api")
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"]


def test_every_gateway_variable_is_a_setting_the_gateway_reads() -> None:
    known = setting_names()
    names = [k for k in (*config_data(), *secret_data()) if k.startswith("GATEWAY_")]
    assert names
    assert not [n for n in names if n not in known]
    for w in workloads():
        for var in container(w).get("env", []):
            assert not var["name"].startswith("GATEWAY_") or var["name"] in known, var["name"]
    # The secret's comments name settings too (the sandbox's secret, provider accounts).
    text = (MANIFESTS / "02-secret.example.yaml").read_text()
    mentioned = set(re.findall(r"\bGATEWAY_[A-Z0-9_]*[A-Z0-9]\b", text))
    assert mentioned
    assert not mentioned - known


# --- the manifests and the gateway --------------------------------------------------------------


def manifest_settings(monkeypatch: pytest.MonkeyPatch, **overrides: str) -> Settings:
    """The settings a pod reads: the ConfigMap, the Secret with its placeholders filled in."""
    for name in list(os.environ):
        if name.startswith("GATEWAY_"):
            monkeypatch.delenv(name)
    env = config_data() | secret_data() | filled_secrets() | overrides
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings(_env_file=None)


def filled_secrets() -> dict[str, str]:
    return {
        "GATEWAY_SECRETS_KEYS": new_key_text("k8s"),
        "GATEWAY_JWT_KEYS": "k8s-1:" + base64.urlsafe_b64encode(os.urandom(32)).decode(),
    }


def test_the_settings_are_what_the_manifests_say(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = manifest_settings(monkeypatch)
    api = container(one("Deployment", "gateway-api"))
    ports = {p["name"]: p["containerPort"] for p in api["ports"]}
    assert (settings.environment, settings.host) == ("production", "0.0.0.0")
    assert (settings.port, settings.metrics_port) == (ports["http"], ports["metrics"])
    assert settings.metrics_host == "0.0.0.0"
    assert settings.workers == 2
    assert settings.database.pgbouncer is True
    # Deliveries and the reconciler run in the worker Deployment, not in the API's processes.
    assert (settings.delivery.run_in_process, settings.reconciler.run_in_process) == (False, False)
    assert settings.base_url == config_data()["GATEWAY_PUBLIC_URL"]
    assert settings.admin_token is not None
    assert settings.admin_token.get_secret_value() == ""
    worker = container(one("Deployment", "gateway-worker"))
    assert [p["containerPort"] for p in worker["ports"]] == [settings.metrics_port]


def test_the_unfilled_template_stops_the_gateway_with_a_message(monkeypatch: pytest.MonkeyPatch) -> None:
    placeholders = {name: secret_data()[name] for name in ("GATEWAY_SECRETS_KEYS", "GATEWAY_JWT_KEYS")}
    settings = manifest_settings(monkeypatch, **placeholders)
    r = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "serve"],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 2, r.stderr
    assert "GATEWAY_SECRETS_KEYS" in r.stderr
    assert settings.jwt_keys is not None
    with pytest.raises(ValueError, match="GATEWAY_JWT_KEYS"):
        tokens.from_settings(settings.jwt_keys.get_secret_value(), settings.public_url)


def test_commands_ports_and_probes_are_the_gateways() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'CMD ["gateway", "serve"]' in dockerfile
    assert "USER 10001:10001" in dockerfile
    assert container(one("Deployment", "gateway-api"))["command"] == ["gateway", "serve"]
    assert container(one("Deployment", "gateway-worker"))["command"] == ["gateway", "worker"]
    assert container(one("Job", "gateway-migrate"))["command"] == ["gateway", "migrate"]
    paths = {getattr(route, "path", None) for route in create_app(Settings(_env_file=None)).routes}
    api = container(one("Deployment", "gateway-api"))
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert api["livenessProbe"]["httpGet"]["path"] == api["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert {"/readyz", "/healthz"} <= paths
    for w in workloads():
        pod = pod_spec(w)
        assert pod["securityContext"]["runAsUser"] == 10001
        assert pod["securityContext"]["runAsNonRoot"]
        assert pod["automountServiceAccountToken"] is False
        c = container(w)
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        assert c["securityContext"]["allowPrivilegeEscalation"] is False
        # The one writable place: prometheus_client's metric files and temporary files.
        assert [m["mountPath"] for m in c["volumeMounts"]] == ["/tmp"]


def test_the_grace_period_covers_the_load_balancer_and_the_requests_in_flight() -> None:
    api = one("Deployment", "gateway-api")
    sleep = container(api)["lifecycle"]["preStop"]["exec"]["command"]
    assert sleep[0] == "sleep"
    pre_stop = int(sleep[1])
    # Longer than the 10 s of deregistration the docs ask the load balancer for.
    assert pre_stop > 10
    grace = pod_spec(api)["terminationGracePeriodSeconds"]
    # preStop, then uvicorn's drain, then the lifespan's shutdown (10 s): all before SIGKILL.
    assert grace >= pre_stop + SERVE_GRACEFUL_SHUTDOWN_SECONDS + 10
    assert Settings(_env_file=None).provider_timeout_seconds <= SERVE_GRACEFUL_SHUTDOWN_SECONDS
    worker = one("Deployment", "gateway-worker")
    assert (
        pod_spec(worker)["terminationGracePeriodSeconds"] > Settings(_env_file=None).delivery.timeout_seconds
    )


# --- the processes, with the manifests' settings -------------------------------------------------


@pytest.fixture
def pod_env(servers: EmbeddedServers, tmp_path: Path) -> Iterator[dict[str, str]]:
    """A pod's environment: the ConfigMap and the filled Secret, on this machine's servers and ports
    (loopback, where the pod binds 0.0.0.0), its database through a real PgBouncer in transaction
    mode as 00-external-services.yaml expects."""
    bouncer = servers.pgbouncer or start_pgbouncer(servers.postgres, tmp_path / "pgbouncer")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_") and k != "WEB_CONCURRENCY"}
    env |= config_data() | secret_data() | filled_secrets()
    env |= {
        "GATEWAY_DATABASE_URL": bouncer.url,
        "GATEWAY_REDIS_URL": servers.redis.url,
        "GATEWAY_HOST": "127.0.0.1",
        "GATEWAY_PORT": str(free_port()),
        "GATEWAY_METRICS_HOST": "127.0.0.1",
        "GATEWAY_METRICS_PORT": str(free_port()),
    }
    try:
        yield env
    finally:
        if bouncer is not servers.pgbouncer:
            bouncer.stop()


def stopped_in(proc: subprocess.Popen[bytes], limit: float) -> float:
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=limit)
    return time.monotonic() - started


async def test_serve_and_worker_run_and_stop_with_the_manifests_settings(
    pod_env: dict[str, str], merchant: Merchant, tmp_path: Path
) -> None:
    api_pod = pod_spec(one("Deployment", "gateway-api"))
    api_grace = api_pod["terminationGracePeriodSeconds"] - int(
        api_pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"][1]
    )
    worker_grace = pod_spec(one("Deployment", "gateway-worker"))["terminationGracePeriodSeconds"]
    worker_env = pod_env | {"GATEWAY_METRICS_PORT": str(free_port())}
    api_log, worker_log = tmp_path / "api.log", tmp_path / "worker.log"
    api = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "serve"], env=pod_env, cwd=tmp_path, stderr=api_log.open("wb")
    )
    worker = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "worker"],
        env=worker_env,
        cwd=tmp_path,
        stderr=worker_log.open("wb"),
    )
    try:
        async with httpx.AsyncClient(timeout=10) as c:
            base = f"http://127.0.0.1:{pod_env['GATEWAY_PORT']}"

            async def ready() -> bool:
                assert api.poll() is None, api_log.read_text()
                try:
                    return (await c.get(base + "/readyz")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_for(ready, timeout=60)
            r = await c.get(base + "/readyz")
            assert r.json() == {"status": "ok", "checks": {"postgres": "ok", "redis": "ok"}}
            assert (await c.get(base + "/healthz")).json() == {"status": "ok"}
            # A payment's transaction, through PgBouncer with the ConfigMap's GATEWAY_DATABASE__PGBOUNCER.
            body = {"amount": 700, "currency": "KES", "provider": "sandbox", "payment_method": "pm_success"}
            headers = merchant.auth | {"Idempotency-Key": str(uuid.uuid4())}
            created = await c.post(base + "/v1/payments", json=body, headers=headers)
            assert created.status_code == 201, created.text
            read = await c.get(base + f"/v1/payments/{created.json()['id']}", headers=merchant.auth)
            assert read.json()["status"] == "succeeded"
            metrics = await c.get(f"http://127.0.0.1:{pod_env['GATEWAY_METRICS_PORT']}/metrics")
            assert metrics.status_code == 200
            assert "gateway_backlog_up 1.0" in metrics.text

            async def worker_exporting() -> bool:
                assert worker.poll() is None, worker_log.read_text()
                try:
                    url = f"http://127.0.0.1:{worker_env['GATEWAY_METRICS_PORT']}/metrics"
                    return (await c.get(url)).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_for(worker_exporting, timeout=60)
    finally:
        api_took = await asyncio.to_thread(stopped_in, api, api_grace)
        worker_took = await asyncio.to_thread(stopped_in, worker, worker_grace)
    assert (api.returncode, worker.returncode) == (0, 0), api_log.read_text() + worker_log.read_text()
    assert api_took < api_grace
    assert worker_took < worker_grace
