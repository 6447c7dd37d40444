"""The access log of a real `gateway serve` process: callback URLs carry a secret, which never reaches it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import orjson

from gateway.embedded import EmbeddedServers, free_port
from support import wait_for

TOKEN = "cb-Zq8Xv3Lr6Tn1Wp4Ks9Hd2Jm7"


async def test_callback_tokens_never_reach_the_access_log(servers: EmbeddedServers, tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "GATEWAY_DATABASE_URL": servers.postgres.url,
        "GATEWAY_REDIS_URL": servers.redis.url,
        "GATEWAY_PORT": str(port),
        "GATEWAY_LOG_LEVEL": "INFO",
        "GATEWAY_LOG_JSON": "true",
        "GATEWAY_RECONCILER__RUN_IN_PROCESS": "false",
        "GATEWAY_DELIVERY__RUN_IN_PROCESS": "false",
    }
    log = tmp_path / "serve.log"
    server = subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve"], env=env, stderr=log.open("wb"))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as c:

            async def up() -> bool:
                try:
                    return (await c.get("/healthz")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_for(up, timeout=60)
            for provider, method in (("mpesa", "POST"), ("momo", "PUT"), ("momo", "POST")):
                r = await c.request(method, f"/v1/webhooks/{provider}/{TOKEN}", content=b"{}")
                assert r.status_code in (400, 401)

            async def logged() -> bool:
                return log.read_bytes().count(b'"event":"request"') >= 4

            await wait_for(logged)
    finally:
        server.terminate()
        server.wait(timeout=30)
    text = log.read_text()
    assert TOKEN not in text
    lines = [orjson.loads(line) for line in text.splitlines() if line.startswith("{")]
    callbacks = [e for e in lines if e.get("event") == "request" and e["path"] != "/healthz"]
    assert [(e["method"], e["path"]) for e in callbacks] == [
        ("POST", "/v1/webhooks/mpesa/[redacted]"),
        ("PUT", "/v1/webhooks/momo/[redacted]"),
        ("POST", "/v1/webhooks/momo/[redacted]"),
    ]
    assert {e["status"] for e in callbacks} <= {400, 401}
