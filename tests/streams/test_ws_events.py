"""/v1/events/ws against real servers: a socket held on a second `gateway serve` process receives
what the session gateway commits, and is pinged at GATEWAY_STREAM_HEARTBEAT_SECONDS; subscribe and
unsubscribe narrow it to single payments; last_event_id resumes; bad client messages get error
messages and the connection goes on; publishable keys are refused."""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import AsyncIterator

import httpx
import pytest

from auth.credentials import add_key
from faults.processes import GatewayProcess
from gateway.embedded import EmbeddedServers, free_port
from streams.ws_client import cancel, events_of, pay, refused, socket
from support import JWT_KEYS, Gateway, Merchant

HEARTBEAT = 0.3


@pytest.fixture(scope="module")
async def replica(
    servers: EmbeddedServers, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[GatewayProcess]:
    """`gateway serve` on the same PostgreSQL and Redis: another process, as a replica would be."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env |= {
        "GATEWAY_DATABASE_URL": servers.postgres.url,
        "GATEWAY_REDIS_URL": servers.redis.url,
        "GATEWAY_ENVIRONMENT": "test",
        "GATEWAY_LOG_LEVEL": "WARNING",
        "GATEWAY_JWT_KEYS": JWT_KEYS,
        "GATEWAY_STREAM_HEARTBEAT_SECONDS": str(HEARTBEAT),
        "GATEWAY_SANDBOX__SEND_WEBHOOKS": "false",
        "GATEWAY_DELIVERY__RUN_IN_PROCESS": "false",
        "GATEWAY_RECONCILER__RUN_IN_PROCESS": "false",
    }
    process = GatewayProcess(
        "serve", env, tmp_path_factory.mktemp("ws-replica") / "api.log", port=free_port()
    )
    await process.start()
    try:
        yield process
    finally:
        await process.stop()


def summary(messages: list[dict[str, object]]) -> list[tuple[object, object]]:
    return [(m["type"], m["data"]["object"]["id"]) for m in messages]  # type: ignore[index]


async def test_a_socket_on_one_process_receives_events_committed_through_another(
    client: httpx.AsyncClient, replica: GatewayProcess, merchant: Merchant
) -> None:
    async with socket(replica.base_url, "/v1/events/ws", merchant.auth) as ws:
        assert await ws.message() == {"type": "ready"}
        p = await pay(client, merchant)  # through the session gateway, not the replica
        got = await ws.messages(2)
    assert got == await events_of(client, merchant)  # each as GET /v1/events/{id} shows it
    assert summary(got) == [("payment.created", p["id"]), ("payment.succeeded", p["id"])]


async def test_heartbeats_are_pings_at_the_configured_interval(
    replica: GatewayProcess, merchant: Merchant
) -> None:
    async with socket(replica.base_url, "/v1/events/ws", merchant.auth) as ws:
        assert await ws.message() == {"type": "ready"}
        await asyncio.sleep(HEARTBEAT * 4.5)
        pings = list(ws.pings)
    assert 3 <= len(pings) <= 6, pings
    gaps = [b - a for a, b in itertools.pairwise(pings)]
    assert all(HEARTBEAT * 0.5 < g < HEARTBEAT * 2 for g in gaps), gaps


async def test_subscriptions_narrow_the_socket_to_single_payments(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    followed = await pay(client, merchant, "pm_action_never")
    ignored = await pay(client, merchant, "pm_action_never")
    async with socket(gateway.base_url, "/v1/events/ws", merchant.auth) as ws:
        assert await ws.message() == {"type": "ready"}
        await ws.send_json({"action": "subscribe", "payment": followed["id"]})
        assert await ws.message() == {
            "type": "subscribed",
            "payment": followed["id"],
            "status": "requires_action",
            "types": [],
        }
        await cancel(client, merchant, ignored["id"])
        await pay(client, merchant)  # neither: not followed
        await cancel(client, merchant, followed["id"])
        only = await ws.message()
        assert (only["type"], only["data"]["object"]["id"]) == ("payment.canceled", followed["id"])

        await ws.send_json({"action": "unsubscribe", "payment": followed["id"]})
        assert await ws.message() == {"type": "unsubscribed", "payment": followed["id"]}
        after = await pay(client, merchant)  # no subscription left: every event again
        assert summary(await ws.messages(2)) == [
            ("payment.created", after["id"]),
            ("payment.succeeded", after["id"]),
        ]

        # A subscription's own type filter: only that payment's failures.
        held = await pay(client, merchant, "pm_action_never")
        created = await ws.message()
        assert (created["type"], created["data"]["object"]["id"]) == ("payment.created", held["id"])
        await ws.message()  # its payment.requires_action
        await ws.send_json({"action": "subscribe", "payment": held["id"], "type": "payment.failed"})
        assert (await ws.message())["types"] == ["payment.failed"]
        await cancel(client, merchant, held["id"])  # payment.canceled: filtered out
        await ws.send_json({"action": "unsubscribe", "payment": held["id"]})
        assert await ws.message() == {"type": "unsubscribed", "payment": held["id"]}


async def test_last_event_id_resumes_then_goes_live_and_type_filters(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    seen = await pay(client, merchant)
    declined = await pay(client, merchant, "pm_card_declined")
    log = await events_of(client, merchant)
    assert [e["data"]["object"]["id"] for e in log] == [seen["id"]] * 2 + [declined["id"]] * 2
    async with socket(gateway.base_url, "/v1/events/ws", merchant.auth, last_event_id=log[1]["id"]) as ws:
        assert await ws.messages(2) == log[2:]  # what was missed, from the table
        assert await ws.message() == {"type": "ready"}
        live = await pay(client, merchant)
        assert summary(await ws.messages(2)) == [
            ("payment.created", live["id"]),
            ("payment.succeeded", live["id"]),
        ]
    params = {"last_event_id": log[0]["id"], "type": "payment.failed,payment.canceled"}
    async with socket(gateway.base_url, "/v1/events/ws", merchant.auth, **params) as ws:
        assert await ws.messages(2) == [log[3], {"type": "ready"}]
        p = await pay(client, merchant, "pm_action_never")
        await pay(client, merchant)
        await cancel(client, merchant, p["id"])
        assert summary([await ws.message()]) == [("payment.canceled", p["id"])]


async def test_bad_client_messages_get_errors_and_the_socket_goes_on(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, other_merchant: Merchant
) -> None:
    theirs = await pay(client, other_merchant, "pm_action_never")
    async with socket(gateway.base_url, "/v1/events/ws", merchant.auth) as ws:
        assert await ws.message() == {"type": "ready"}
        cases: list[tuple[str | bytes, str]] = [
            ("not json", "invalid_message"),
            ("[1, 2]", "invalid_message"),
            (b"\x00binary", "invalid_message"),
            ('{"action": "dance", "payment": "pay_x"}', "unknown_action"),
            ('{"action": "subscribe"}', "invalid_message"),
            ('{"action": "subscribe", "payment": "evt_0000000000000000000000000a"}', "invalid_message"),
            (f'{{"action": "subscribe", "payment": "{theirs["id"]}"}}', "resource_missing"),
            (
                '{"action": "subscribe", "payment": "pay_0000000000000000000000000a", "type": 7}',
                "invalid_message",
            ),
            ("x" * 5000, "invalid_message"),
        ]
        for sent, expected in cases:
            await ws.send(sent)
            error = await ws.message()
            code = "invalid_message" if expected == "invalid_type" else expected
            assert (error["type"], error["code"]) == ("error", code), (sent, error)
            if expected == "invalid_type":
                assert "`type`" in error["message"]
            assert error["message"]
        # Still serving: a valid subscription, then its payment's change.
        mine = await pay(client, merchant, "pm_action_never")
        await ws.messages(2)  # its created, requires_action
        await ws.send_json({"action": "subscribe", "payment": mine["id"]})
        assert (await ws.message())["type"] == "subscribed"
        await cancel(client, merchant, mine["id"])
        assert (await ws.message())["type"] == "payment.canceled"


async def test_the_handshake_is_refused_to_publishable_keys_and_bad_queries(
    gateway: Gateway, merchant: Merchant
) -> None:
    pk = await add_key(gateway, merchant.id, "publishable")
    payments_only = await add_key(gateway, merchant.id, "restricted", scopes=["payments:read"])
    events_reader = await add_key(gateway, merchant.id, "restricted", scopes=["events:read"])
    base, path = gateway.base_url, "/v1/events/ws"
    for headers, params in (({"Authorization": f"Bearer {pk.secret}"}, {}), ({}, {"key": pk.secret})):
        status, problem = await refused(base, path, headers, **params)
        assert (status, problem["code"]) == (403, "insufficient_scope")
    status, problem = await refused(base, path, payments_only.auth)
    assert (status, problem["code"], problem["required_scope"]) == (403, "insufficient_scope", "events:read")
    assert (await refused(base, path))[1]["code"] == "authentication_required"
    status, problem = await refused(base, path, key=merchant.key)  # never in a URL
    assert (status, problem["code"]) == (401, "authentication_required")
    status, problem = await refused(base, path, merchant.auth, type="Payment!")
    assert (status, problem["code"]) == (422, "validation_error")
    status, problem = await refused(base, path, merchant.auth, last_event_id="nope")
    assert (status, problem["code"]) == (422, "invalid_cursor")
    async with socket(base, path, events_reader.auth) as ws:
        assert await ws.message() == {"type": "ready"}
