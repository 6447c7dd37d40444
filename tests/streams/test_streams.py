"""Live streams (Server-Sent Events): fed by Redis across gateway processes, resumable with
Last-Event-ID from the event table, filtered, ending for a payment with its outcome, and leaving no
Redis subscription behind; and `gateway listen`, which prints them and resumes after a restart."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn

from drivers.sandbox import DRIVER as SANDBOX
from gateway.embedded import EmbeddedServers, free_port
from gateway.events.publisher import channel
from gateway.main import create_app
from gateway.settings import SandboxSettings, Settings, WebhookSettings
from gateway.streams import feed
from sse import Message, Stream
from support import ACTION_DELAY, SANDBOX_SECRET, Gateway, Merchant, wait_for, with_sandbox

HEARTBEAT = 0.3  # the second gateway's; the session gateway keeps the default 15 s


# --- a second gateway process: same PostgreSQL and Redis, another port --------------------------


class GatewayServer:
    """A uvicorn server like conftest's, that can be stopped and started again on its port."""

    def __init__(self, servers: EmbeddedServers, port: int):
        self.settings = Settings(
            environment="test",
            database_url=servers.postgres.url,
            redis_url=servers.redis.url,
            host="127.0.0.1",
            port=port,
            log_level="WARNING",
            sandbox=SandboxSettings(webhook_secret=SANDBOX_SECRET, action_delay_seconds=ACTION_DELAY),
            webhooks=WebhookSettings(sweep_after_seconds=1.0, sweep_interval_seconds=0.25),
            api_key_cache_seconds=0,
            stream_heartbeat_seconds=HEARTBEAT,
        )
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> Gateway:
        app = create_app(self.settings)
        # Open streams are cut 1 s into a shutdown (the session gateway would wait for them).
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.settings.port,
            log_config=None,
            lifespan="on",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.02)
        return Gateway(f"http://127.0.0.1:{self.settings.port}", app)

    async def stop(self) -> None:
        assert self._server is not None
        assert self._task is not None
        self._server.should_exit = True
        await self._task


@pytest.fixture(scope="module")
async def second_gateway(servers: EmbeddedServers) -> AsyncIterator[Gateway]:
    server = GatewayServer(servers, free_port())
    yield await server.start()
    await server.stop()


# --- helpers -------------------------------------------------------------------------------------


async def pay(client: httpx.AsyncClient, merchant: Merchant, method: str = "pm_success") -> dict[str, Any]:
    r = await client.post(
        "/v1/payments",
        json={"amount": 1200, "currency": "KES", "provider": "sandbox", "payment_method": method},
        headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert r.status_code in (201, 402), r.text
    return dict(r.json() if r.status_code == 201 else r.json()["payment"])


async def refund(client: httpx.AsyncClient, merchant: Merchant, payment_id: str) -> dict[str, Any]:
    r = await client.post(
        f"/v1/payments/{payment_id}/refunds",
        json={"amount": 200},
        headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def log_oldest_first(client: httpx.AsyncClient, merchant: Merchant) -> list[dict[str, Any]]:
    r = await client.get("/v1/events", headers=merchant.auth, params={"limit": 100})
    return list(reversed(r.json()["data"]))


def summary(messages: list[Message]) -> list[tuple[str | None, str, str]]:
    return [(m.id, m.data["type"], m.data["data"]["object"]["id"]) for m in messages]


# --- the tests -----------------------------------------------------------------------------------


async def test_a_stream_on_one_gateway_receives_events_written_through_another(
    client: httpx.AsyncClient, second_gateway: Gateway, merchant: Merchant
) -> None:
    async with (
        httpx.AsyncClient(base_url=second_gateway.base_url, timeout=10) as other,
        other.stream("GET", "/v1/events/stream", headers=merchant.auth) as r,
    ):
        stream = Stream(r)
        assert await stream.ready() == []
        p = await pay(client, merchant)  # through the session gateway, not the one streaming
        got = await stream.events(2)
    stored = await log_oldest_first(client, merchant)
    assert summary(got) == [
        (stored[0]["id"], "payment.created", p["id"]),
        (stored[1]["id"], "payment.succeeded", p["id"]),
    ]
    assert [m.data for m in got] == stored  # each message is the event as GET /v1/events shows it


async def test_last_event_id_resumes_with_exactly_the_missed_events_then_goes_live(
    client: httpx.AsyncClient, merchant: Merchant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(feed, "REPLAY_BATCH", 3)  # the four missed events take two reads
    seen = await pay(client, merchant)
    last_seen = (await log_oldest_first(client, merchant))[-1]
    assert (last_seen["type"], last_seen["data"]["object"]["id"]) == ("payment.succeeded", seen["id"])
    declined = await pay(client, merchant, "pm_card_declined")
    ok = await pay(client, merchant)
    missed = (await log_oldest_first(client, merchant))[2:]
    assert [(e["type"], e["data"]["object"]["id"]) for e in missed] == [
        ("payment.created", declined["id"]),
        ("payment.failed", declined["id"]),
        ("payment.created", ok["id"]),
        ("payment.succeeded", ok["id"]),
    ]

    headers = {**merchant.auth, "Last-Event-ID": last_seen["id"]}
    async with client.stream("GET", "/v1/events/stream", headers=headers) as r:
        stream = Stream(r)
        replayed = await stream.ready()
        assert [(m.id, m.data) for m in replayed] == [(e["id"], e) for e in missed]
        live = await pay(client, merchant, "pm_card_declined")
        got = await stream.events(2)
    after = (await log_oldest_first(client, merchant))[6:]
    assert summary(got) == [
        (after[0]["id"], "payment.created", live["id"]),
        (after[1]["id"], "payment.failed", live["id"]),
    ]

    bad = await client.get("/v1/events/stream", headers={**merchant.auth, "Last-Event-ID": seen["id"]})
    assert (bad.status_code, bad.json()["code"]) == (422, "invalid_cursor")


async def test_payment_stream_sends_the_payment_then_its_changes_and_ends_with_its_outcome(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, other_merchant: Merchant
) -> None:
    # The customer acts when this test says so (a sandbox that sends no webhooks; the test delivers
    # its success webhook once the stream is open), so the snapshot below is still the payment's.
    async with with_sandbox(gateway, send_webhooks=False) as held:
        p = await pay(held, merchant, "pm_action_success")
    assert p["status"] == "requires_action"
    url = f"/v1/payments/{p['id']}/stream"
    current = (await client.get(f"/v1/payments/{p['id']}", headers=merchant.auth)).json()

    hidden = await client.get(url, headers=other_merchant.auth)
    assert (hidden.status_code, hidden.json()["code"]) == (404, "resource_missing")
    anonymous = await client.get(url)
    assert anonymous.status_code == 401

    async with client.stream("GET", url, headers=merchant.auth) as r:
        stream = Stream(r)
        first = await stream.next()
        assert first is not None
        # The payment itself, as GET /v1/payments/{id} shows it, but for its client secret: streams
        # carry none (contract 1: only answers to a secret or restricted key show it).
        assert first.data == {**current, "client_secret": None}
        assert await stream.ready() == []
        headers, body = SANDBOX.success_webhook(p)  # the customer acts: the sandbox says so
        assert (await client.post("/v1/webhooks/sandbox", content=body, headers=headers)).status_code == 200
        rest = await stream.end()  # the payment's change, then the end

    trail = list(reversed((await client.get(f"{url[:-7]}/events", headers=merchant.auth)).json()["data"]))
    assert [e["type"] for e in trail] == ["payment.created", "payment.requires_action", "payment.succeeded"]
    assert first.id == trail[1]["id"]  # the SSE id of the snapshot: the last event it reflects
    assert [(m.id, m.data) for m in rest] == [(trail[2]["id"], trail[2])]
    assert rest[0].data["data"]["object"]["status"] == "succeeded"

    ch = channel(merchant.id, False)

    async def unsubscribed() -> bool:
        return dict(await gateway.ctx.redis.pubsub_numsub(ch))[ch.encode()] == 0

    await wait_for(unsubscribed, timeout=5)

    # A client that reconnects with the snapshot's id gets what it missed, and the end.
    assert first.id is not None
    async with client.stream("GET", url, headers={**merchant.auth, "Last-Event-ID": first.id}) as r:
        assert [(m.id, m.data) for m in await Stream(r).end()] == [(trail[2]["id"], trail[2])]
    # One that had everything is told to stop reconnecting (what EventSource does on a 204).
    done = await client.get(url, headers={**merchant.auth, "Last-Event-ID": trail[2]["id"]})
    assert (done.status_code, done.content) == (204, b"")
    # A new client of a payment whose outcome is known gets the payment, and the end.
    async with client.stream("GET", url, headers=merchant.auth) as r:
        only = await Stream(r).end()
    now = (await client.get(f"/v1/payments/{p['id']}", headers=merchant.auth)).json()
    assert [(m.id, m.data) for m in only] == [(trail[2]["id"], {**now, "client_secret": None})]
    assert now["status"] == "succeeded"


async def test_a_refund_filter_receives_no_payment_events_live_or_replayed(
    client: httpx.AsyncClient, merchant: Merchant
) -> None:
    params = {"type": "refund.*"}
    async with client.stream("GET", "/v1/events/stream", params=params, headers=merchant.auth) as r:
        stream = Stream(r)
        assert await stream.ready() == []
        refunds = []
        for _ in range(2):
            p = await pay(client, merchant)
            refunds.append(await refund(client, merchant, p["id"]))
        got = await stream.events(4)
    everything = await log_oldest_first(client, merchant)
    assert len(everything) == 10  # per payment: created, succeeded, refund.created, refund.succeeded,
    # payment.partially_refunded
    refund_events = [e for e in everything if e["type"].startswith("refund.")]
    r1, r2 = (x["id"] for x in refunds)
    assert summary(got) == [
        (refund_events[0]["id"], "refund.created", r1),
        (refund_events[1]["id"], "refund.succeeded", r1),
        (refund_events[2]["id"], "refund.created", r2),
        (refund_events[3]["id"], "refund.succeeded", r2),
    ]

    headers = {**merchant.auth, "Last-Event-ID": got[1].id or ""}
    async with client.stream("GET", "/v1/events/stream", params=params, headers=headers) as r:
        replayed = await Stream(r).ready()
    assert summary(replayed) == summary(got[2:])


async def test_disconnecting_drops_the_redis_subscription(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    ch = channel(merchant.id, False)

    async def subscribers() -> int:
        return int(dict(await gateway.ctx.redis.pubsub_numsub(ch))[ch.encode()])

    assert await subscribers() == 0
    p = await pay(client, merchant, "pm_action_never")
    async with client.stream("GET", "/v1/events/stream", headers=merchant.auth) as r:
        events = Stream(r)  # kept: a collected parser would close the response
        assert await events.ready() == []
        assert await subscribers() == 1
        async with client.stream("GET", f"/v1/payments/{p['id']}/stream", headers=merchant.auth) as r2:
            stream = Stream(r2)
            first = await stream.next()
            assert first is not None
            assert first.data["status"] == "requires_action"
            assert await stream.ready() == []
            assert await subscribers() == 2

        async def one_left() -> bool:
            return await subscribers() == 1

        await wait_for(one_left, timeout=5)

    async def none_left() -> bool:
        return await subscribers() == 0

    await wait_for(none_left, timeout=5)


async def test_a_broken_redis_connection_ends_the_stream_rather_than_leaving_a_gap(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    async def pubsub_clients() -> set[str]:
        return {c["id"] for c in await gateway.ctx.redis.client_list(_type="pubsub")}

    before = await pubsub_clients()
    async with client.stream("GET", "/v1/events/stream", headers=merchant.auth) as r:
        stream = Stream(r)
        assert await stream.ready() == []
        ours = await pubsub_clients() - before
        assert len(ours) == 1
        # What was published while redis-py reconnected would be lost: the stream must end, so that
        # the client resumes from the table with Last-Event-ID.
        assert await gateway.ctx.redis.client_kill_filter(_id=ours.pop()) == 1
        assert await stream.end(timeout=10) == []


async def test_heartbeats_keep_an_idle_stream_talking(second_gateway: Gateway, merchant: Merchant) -> None:
    async with (
        httpx.AsyncClient(base_url=second_gateway.base_url, timeout=10) as c,
        c.stream("GET", "/v1/events/stream", headers=merchant.auth) as r,
    ):
        stream = Stream(r)
        assert await stream.ready() == []
        beats = [await stream.next(timeout=HEARTBEAT * 5, heartbeats=True) for _ in range(2)]
    assert beats == [Message(comment="heartbeat"), Message(comment="heartbeat")]


async def test_stream_requests_are_checked(client: httpx.AsyncClient, merchant: Merchant) -> None:
    anonymous = await client.get("/v1/events/stream")
    assert (anonymous.status_code, anonymous.json()["code"]) == (401, "authentication_required")
    bad_type = await client.get("/v1/events/stream", params={"type": "Payment!"}, headers=merchant.auth)
    assert (bad_type.status_code, bad_type.json()["code"]) == (422, "validation_error")
    bad_id = await client.get("/v1/events/stream", headers={**merchant.auth, "Last-Event-ID": "nope"})
    assert (bad_id.status_code, bad_id.json()["code"]) == (422, "invalid_cursor")
    missing = await client.get("/v1/payments/pay_0000000000000000000000000a/stream", headers=merchant.auth)
    assert (missing.status_code, missing.json()["code"]) == (404, "resource_missing")
    schema = (await client.get("/openapi.json")).json()
    ops = {p: op["get"]["operationId"] for p, op in schema["paths"].items() if p.endswith("/stream")}
    assert ops == {"/v1/events/stream": "stream_events", "/v1/payments/{payment_id}/stream": "stream_payment"}


# --- gateway listen ------------------------------------------------------------------------------


async def _line(reader: asyncio.StreamReader, timeout: float = 15.0) -> str:
    line = await asyncio.wait_for(reader.readline(), timeout)
    assert line, "the listener exited"
    return line.decode().rstrip("\n")


def _fields(line: str) -> tuple[str, str, str, str]:
    # 2026-01-31 12:00:03  payment.succeeded   pay_…  succeeded   evt_…
    _date, _time, type_, object_id, status, event_id = line.split()
    return type_, object_id, status, event_id


async def test_gateway_listen_prints_events_and_resumes_after_the_gateway_restarts(
    client: httpx.AsyncClient, servers: EmbeddedServers, merchant: Merchant
) -> None:
    server = GatewayServer(servers, free_port())
    target = await server.start()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.cli",
        "listen",
        "--events",
        "payment.*",
        "--api-key",
        merchant.key,
        "--url",
        target.base_url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    running = True
    try:
        assert (await _line(proc.stderr)).startswith(
            f"Ready! Listening for payment.* events on {target.base_url}"
        )
        first = await pay(client, merchant)
        printed = [_fields(await _line(proc.stdout)) for _ in range(2)]

        await server.stop()  # the listener loses its connection...
        missed = await pay(client, merchant, "pm_card_declined")  # ...while these happen...
        await server.start()  # ...and comes back, resuming after the last event it printed
        printed += [_fields(await _line(proc.stdout)) for _ in range(2)]
        live = await pay(client, merchant)
        printed += [_fields(await _line(proc.stdout)) for _ in range(2)]

        log = await log_oldest_first(client, merchant)
        assert printed == [
            ("payment.created", first["id"], "pending", log[0]["id"]),
            ("payment.succeeded", first["id"], "succeeded", log[1]["id"]),
            ("payment.created", missed["id"], "pending", log[2]["id"]),
            ("payment.failed", missed["id"], "failed", log[3]["id"]),
            ("payment.created", live["id"], "pending", log[4]["id"]),
            ("payment.succeeded", live["id"], "succeeded", log[5]["id"]),
        ]
        proc.send_signal(signal.SIGINT)  # Ctrl-C: a clean exit
        assert await asyncio.wait_for(proc.wait(), 10) == 0
        running = False
        notes = (await proc.stderr.read()).decode()
        assert f"Reconnected; resumed after {log[1]['id']}" in notes
    finally:
        if running:
            proc.kill()
            await proc.wait()
        await server.stop()
