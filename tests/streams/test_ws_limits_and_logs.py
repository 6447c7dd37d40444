"""A WebSocket handshake counts once against its key (the browser's publishable key in the query
too) and is refused with the usual 429 over the limit; the access log of a real `gateway serve`
shows a socket's path and status, never the publishable key or the client secret in its query."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import orjson
import pytest
from websockets.exceptions import InvalidStatus

from auth.credentials import add_key
from faults.processes import GatewayProcess
from gateway.embedded import EmbeddedServers, free_port
from ratelimits.serving import serving
from sse import Stream
from streams.ws_client import cancel, client_secret, pay, socket
from support import Gateway, Merchant


async def test_a_handshake_counts_once_against_its_key_and_is_refused_over_the_limit(
    gateway: Gateway, client: httpx.AsyncClient, merchant: Merchant
) -> None:
    pk = await add_key(gateway, merchant.id, "publishable")
    p = await pay(client, merchant, "pm_action_never")
    secret = await client_secret(gateway, p["id"])
    forwarded = {"X-Forwarded-For": "10.77.0.1"}
    async with serving(gateway, "10.77.0.1", test="3/minute") as (c, _):
        base = str(c.base_url).rstrip("/")
        remaining = []
        for _ in range(3):
            async with socket(base, "/v1/events/ws", merchant.auth | forwarded) as ws:
                assert await ws.message() == {"type": "ready"}
                for _ in range(5):  # messages on an open socket count nothing
                    await ws.send_json({"action": "subscribe", "payment": p["id"]})
                    assert (await ws.message())["type"] == "subscribed"
                assert ws.response is not None
                remaining.append(int(ws.response.headers["RateLimit-Remaining"]))
        assert remaining == [2, 1, 0]
        with pytest.raises(InvalidStatus) as over:
            async with socket(base, "/v1/events/ws", merchant.auth | forwarded):
                pass
        response = over.value.response
        assert response.status_code == 429
        assert int(response.headers["Retry-After"]) >= 1
        assert orjson.loads(response.body or b"{}")["code"] == "rate_limited"
        # The browser's key in the query is its own key's count.
        path = f"/v1/payments/{p['id']}/ws"
        async with socket(base, path, forwarded, key=pk.secret, client_secret=secret) as ws:
            assert (await ws.message())["status"] == "requires_action"
            assert ws.response is not None
            assert ws.response.headers["RateLimit-Remaining"] == "2"
    await cancel(client, merchant, p["id"])


async def test_the_access_log_has_the_sockets_path_never_the_key_or_the_client_secret(
    servers: EmbeddedServers, gateway: Gateway, client: httpx.AsyncClient, merchant: Merchant, tmp_path: Path
) -> None:
    pk = await add_key(gateway, merchant.id, "publishable")
    p = await pay(client, merchant, "pm_action_never")
    secret = await client_secret(gateway, p["id"])
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env |= {
        "GATEWAY_DATABASE_URL": servers.postgres.url,
        "GATEWAY_REDIS_URL": servers.redis.url,
        "GATEWAY_ENVIRONMENT": "test",
        "GATEWAY_LOG_LEVEL": "DEBUG",  # everything anyone logs
        "GATEWAY_LOG_JSON": "true",
        "GATEWAY_DELIVERY__RUN_IN_PROCESS": "false",
        "GATEWAY_RECONCILER__RUN_IN_PROCESS": "false",
    }
    process = GatewayProcess("serve", env, tmp_path / "api.log", port=free_port())
    await process.start()
    try:
        path = f"/v1/payments/{p['id']}/ws"
        async with socket(process.base_url, path, key=pk.secret, client_secret=secret) as ws:
            assert (await ws.message())["status"] == "requires_action"
        async with (
            httpx.AsyncClient(base_url=process.base_url, timeout=10) as c,
            c.stream(
                "GET", f"/v1/payments/{p['id']}/stream", params={"key": pk.secret, "client_secret": secret}
            ) as r,
        ):
            assert (await Stream(r).next()) is not None
        refused = await httpx.AsyncClient(base_url=process.base_url).get(
            f"/v1/payments/{p['id']}/stream", params={"key": pk.secret, "client_secret": "wrong"}
        )
        assert refused.status_code == 404
    finally:
        await process.stop()
    text = (tmp_path / "api.log").read_text()
    assert secret not in text
    assert pk.secret not in text
    lines = [orjson.loads(line) for line in text.splitlines() if line.startswith("{")]
    requests = [(e["method"], e["path"], e["status"]) for e in lines if e.get("event") == "request"]
    stream = f"/v1/payments/{p['id']}/stream"
    assert [r for r in requests if r[1] != "/healthz"] == [
        ("WEBSOCKET", path, 101),
        ("GET", stream, 200),
        ("GET", stream, 404),
    ]
    await cancel(client, merchant, p["id"])
