"""Outbound webhooks: endpoints, signed deliveries (checked with the standardwebhooks package),
retries on the schedule, 410, manual retry, secret rotation, workers sharing the queue, SSRF."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from gateway.embedded import EmbeddedServers, free_port
from gateway.kit.ssrf import UnsafeUrl, check_url
from gateway.merchants.service import create_merchant
from gateway.settings import DeliverySettings
from receiver import running_receiver
from support import RETRY_SCHEDULE, Gateway, Merchant, configured_app, servers_env, wait_for


def key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


async def endpoint(
    client: httpx.AsyncClient, merchant: Merchant, url: str, events: list[str]
) -> dict[str, Any]:
    r = await client.post(
        "/v1/webhook-endpoints", json={"url": url, "enabled_events": events}, headers=merchant.auth
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def pay(client: httpx.AsyncClient, merchant: Merchant, **body: Any) -> dict[str, Any]:
    r = await client.post(
        "/v1/payments",
        json={"amount": 1000, "currency": "KES", "provider": "cash", **body},
        headers={**merchant.auth, **key()},
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def deliveries(client: httpx.AsyncClient, merchant: Merchant, endpoint_id: str) -> list[dict[str, Any]]:
    r = await client.get(
        f"/v1/webhook-endpoints/{endpoint_id}/deliveries", headers=merchant.auth, params={"limit": 100}
    )
    assert r.status_code == 200
    return list(r.json()["data"])


async def statuses(client: httpx.AsyncClient, merchant: Merchant, endpoint_id: str) -> list[str]:
    return [d["status"] for d in await deliveries(client, merchant, endpoint_id)]


async def test_a_payment_is_delivered_signed(client: httpx.AsyncClient, merchant: Merchant) -> None:
    async with running_receiver() as rx:
        ep = await endpoint(client, merchant, rx.url, ["payment.*"])
        assert ep["secret"].startswith("whsec_")
        p = await pay(client, merchant, provider="sandbox", payment_method="pm_action_success")

        async def all_sent() -> bool:
            # Its three events queued, each sent and answered (a succeeded delivery is never sent again).
            return await statuses(client, merchant, ep["id"]) == ["succeeded"] * 3

        await wait_for(all_sent)
    # Deliveries run concurrently, so arrival order is not promised (event ids sort by time).
    by_type = {json.loads(r.body)["type"]: r for r in rx.received}
    assert sorted(by_type) == ["payment.created", "payment.requires_action", "payment.succeeded"]
    last = by_type["payment.succeeded"]
    event = Webhook(ep["secret"]).verify(last.body, last.headers)
    assert event["data"]["object"]["id"] == p["id"]
    assert event["data"]["object"]["status"] == "succeeded"
    # The payment as GET shows it, how it was paid included (the sandbox's 3-D Secure test card).
    assert event["data"]["object"]["payment_method_details"] == {
        "type": "card",
        "brand": "visa",
        "last4": "3155",
        "exp_month": 12,
        "exp_year": 2034,
        "funding": "credit",
        "country": "US",
    }
    assert last.headers["webhook-id"] == event["id"]
    stored = (await client.get(f"/v1/events/{event['id']}", headers=merchant.auth)).json()
    assert stored == event
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "c29tZS1vdGhlci1zZWNyZXQtdmFsdWUtMTIzNDU2Nzg=").verify(last.body, last.headers)
    tampered = last.body.replace(b'"succeeded"', b'"failed"')
    with pytest.raises(WebhookVerificationError):
        Webhook(ep["secret"]).verify(tampered, last.headers)


async def test_failures_are_retried_on_the_schedule_and_logged(
    client: httpx.AsyncClient, merchant: Merchant
) -> None:
    async with running_receiver(script=[500, 503]) as rx:
        ep = await endpoint(client, merchant, rx.url, ["payment.succeeded"])
        await pay(client, merchant)

        async def delivered() -> bool:
            d = await deliveries(client, merchant, ep["id"])
            return bool(d) and d[0]["status"] == "succeeded"

        await wait_for(delivered)
    d = (await deliveries(client, merchant, ep["id"]))[0]
    assert d["attempt_count"] == 3
    assert [a["status_code"] for a in d["attempts"]] == [500, 503, 200]
    assert [a["response_body"] for a in d["attempts"]] == ["nope", "nope", "ok"]
    assert d["next_attempt_at"] is None
    assert len(rx.received) == 3
    assert len({r.headers["webhook-id"] for r in rx.received}) == 1  # the same message, retried


@pytest.fixture
async def slow_third_retry(gateway: Gateway) -> AsyncIterator[None]:
    """The test gateway's worker with a schedule whose third attempt is an hour after the second:
    a test makes it due (time passes) when it is ready, so nothing races the schedule."""
    await gateway.stop_worker()
    gateway.start_worker(
        gateway.ctx.settings.delivery.model_copy(update={"retry_schedule": [0.0, 0.3, 3600.0, 3600.0]})
    )
    try:
        yield
    finally:
        await gateway.stop_worker()
        gateway.start_worker()


async def test_receiver_down_then_back(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, slow_third_retry: None
) -> None:
    port = free_port()
    ep = await endpoint(client, merchant, f"http://127.0.0.1:{port}/hooks", ["payment.succeeded"])
    await pay(client, merchant)

    async def two_failures() -> bool:
        d = await deliveries(client, merchant, ep["id"])
        return bool(d) and d[0]["attempt_count"] == 2

    await wait_for(two_failures)
    d = (await deliveries(client, merchant, ep["id"]))[0]
    assert d["status"] == "pending"
    assert all(a["status_code"] is None and a["error"] for a in d["attempts"])
    async with running_receiver(port=port) as rx:
        # The receiver is back; the third attempt becomes due now instead of in an hour.
        await gateway.execute(
            "UPDATE webhook_deliveries SET next_attempt_at = now() WHERE id = :d", d=d["id"]
        )

        async def delivered() -> bool:
            d = await deliveries(client, merchant, ep["id"])
            return bool(d[0]["status"] == "succeeded")

        await wait_for(delivered)
    d = (await deliveries(client, merchant, ep["id"]))[0]
    assert [a["status_code"] for a in d["attempts"]] == [None, None, 200]
    assert len(rx.received) == 1


async def test_exhausted_schedule_fails_and_a_manual_retry_sends_again(
    client: httpx.AsyncClient, merchant: Merchant
) -> None:
    async with running_receiver(default=500) as rx:
        ep = await endpoint(client, merchant, rx.url, ["payment.succeeded"])
        await pay(client, merchant)

        async def failed() -> bool:
            d = await deliveries(client, merchant, ep["id"])
            return bool(d) and d[0]["status"] == "failed"

        await wait_for(failed)
        d = (await deliveries(client, merchant, ep["id"]))[0]
        assert d["attempt_count"] == len(RETRY_SCHEDULE)
        rx.default = 200
        r = await client.post(f"/v1/webhook-deliveries/{d['id']}/retry", headers=merchant.auth)
        assert r.status_code == 200
        assert r.json()["status"] == "pending"

        async def delivered() -> bool:
            d = await deliveries(client, merchant, ep["id"])
            return bool(d[0]["status"] == "succeeded")

        await wait_for(delivered)
    assert len(rx.received) == len(RETRY_SCHEDULE) + 1


async def test_410_disables_the_endpoint(client: httpx.AsyncClient, merchant: Merchant) -> None:
    async with running_receiver(default=410) as rx:
        ep = await endpoint(client, merchant, rx.url, ["*"])
        await pay(client, merchant)

        async def disabled() -> bool:
            got = (await client.get(f"/v1/webhook-endpoints/{ep['id']}", headers=merchant.auth)).json()
            return got["enabled"] is False

        await wait_for(disabled)

        async def both_finished() -> bool:
            # Its two events (cash: created, succeeded): one answered 410, the other 410 too or
            # refused for the disabled endpoint; neither is left to retry.
            return await statuses(client, merchant, ep["id"]) == ["failed", "failed"]

        await wait_for(both_finished)
    got = (await client.get(f"/v1/webhook-endpoints/{ep['id']}", headers=merchant.auth)).json()
    assert got["disabled_reason"] == "gone"
    assert "secret" not in got
    ds = await deliveries(client, merchant, ep["id"])
    assert {d["status"] for d in ds} == {"failed"}
    assert len(rx.received) == len({r.headers["webhook-id"] for r in rx.received})  # no retries after 410
    # Nothing new is queued for a disabled endpoint.
    await pay(client, merchant)
    assert len(await deliveries(client, merchant, ep["id"])) == len(ds)


async def test_an_endpoint_for_refunds_gets_no_payment_events(
    client: httpx.AsyncClient, merchant: Merchant
) -> None:
    async with running_receiver() as rx:
        ep = await endpoint(client, merchant, rx.url, ["refund.*"])
        p = await pay(client, merchant)
        r = await client.post(
            f"/v1/payments/{p['id']}/refunds", json={"amount": 100}, headers={**merchant.auth, **key()}
        )
        assert r.status_code == 201

        async def both_sent() -> bool:
            # Deliveries are queued with their events (the outbox), so these are all it will ever get.
            return await statuses(client, merchant, ep["id"]) == ["succeeded", "succeeded"]

        await wait_for(both_sent)
    queued = [d["event_type"] for d in await deliveries(client, merchant, ep["id"])]
    assert sorted(queued) == ["refund.created", "refund.succeeded"]
    assert sorted(json.loads(x.body)["type"] for x in rx.received) == ["refund.created", "refund.succeeded"]


async def test_rotated_secret_signs_beside_the_old_one(client: httpx.AsyncClient, merchant: Merchant) -> None:
    async with running_receiver() as rx:
        ep = await endpoint(client, merchant, rx.url, ["payment.succeeded"])
        rotated = await client.post(f"/v1/webhook-endpoints/{ep['id']}/rotate-secret", headers=merchant.auth)
        assert rotated.status_code == 200
        new_secret = rotated.json()["secret"]
        assert new_secret != ep["secret"]
        await pay(client, merchant)

        async def one() -> bool:
            return len(rx.received) >= 1

        await wait_for(one)
    got = rx.received[0]
    assert len(got.headers["webhook-signature"].split()) == 2
    for secret in (new_secret, ep["secret"]):
        assert Webhook(secret).verify(got.body, got.headers)["type"] == "payment.succeeded"


async def test_endpoint_crud_and_tenancy(
    client: httpx.AsyncClient, merchant: Merchant, other_merchant: Merchant
) -> None:
    ep = await endpoint(client, merchant, "http://127.0.0.1:9/hooks", ["payment.succeeded", "payment.*"])
    assert ep["enabled_events"] == ["payment.*", "payment.succeeded"]
    listed = (await client.get("/v1/webhook-endpoints", headers=merchant.auth)).json()
    assert [e["id"] for e in listed["data"]] == [ep["id"]]
    assert "secret" not in listed["data"][0]
    patched = await client.patch(
        f"/v1/webhook-endpoints/{ep['id']}",
        headers=merchant.auth,
        json={"enabled_events": ["refund.failed"], "enabled": False, "description": "x"},
    )
    assert (patched.status_code, patched.json()["enabled_events"], patched.json()["enabled"]) == (
        200,
        ["refund.failed"],
        False,
    )
    bad = await client.post(
        "/v1/webhook-endpoints",
        headers=merchant.auth,
        json={"url": "http://127.0.0.1:9/", "enabled_events": ["payment.exploded"]},
    )
    assert (bad.status_code, bad.json()["code"]) == (422, "validation_error")
    b = other_merchant.auth
    for r in (
        await client.get(f"/v1/webhook-endpoints/{ep['id']}", headers=b),
        await client.patch(f"/v1/webhook-endpoints/{ep['id']}", headers=b, json={"enabled": True}),
        await client.post(f"/v1/webhook-endpoints/{ep['id']}/rotate-secret", headers=b),
        await client.delete(f"/v1/webhook-endpoints/{ep['id']}", headers=b),
    ):
        assert (r.status_code, r.json()["code"]) == (404, "resource_missing")
    gone = await client.delete(f"/v1/webhook-endpoints/{ep['id']}", headers=merchant.auth)
    assert gone.status_code == 200
    again = await client.get(f"/v1/webhook-endpoints/{ep['id']}", headers=merchant.auth)
    assert again.status_code == 404


async def test_two_worker_processes_deliver_each_event_exactly_once(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, servers: EmbeddedServers, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        **servers_env(servers),
        "GATEWAY_LOG_LEVEL": "INFO",
        "GATEWAY_DELIVERY__ALLOW_PRIVATE_TARGETS": "true",
        "GATEWAY_DELIVERY__POLL_INTERVAL_SECONDS": "0.05",
        # One claim at a time per worker: two requests held at once can only be two workers'.
        "GATEWAY_DELIVERY__BATCH_SIZE": "1",
    }
    await gateway.stop_worker()  # only the two processes below deliver in this test
    logs = [tmp_path / f"worker{i}.log" for i in range(2)]
    workers = [
        subprocess.Popen([sys.executable, "-m", "gateway.cli", "worker"], env=env, stderr=log.open("wb"))
        for log in logs
    ]
    try:

        async def started() -> bool:
            return all(b"delivery_worker_started" in log.read_bytes() for log in logs)

        await wait_for(started, timeout=60)
        # The receiver holds the first requests until two are in flight at once, that is until both
        # processes hold a claim: each takes part, whatever the machine's timing.
        async with running_receiver(gate=2) as rx:
            await endpoint(client, merchant, rx.url, ["*"])
            for _ in range(100):  # 100 cash payments: 200 events
                await pay(client, merchant)

            async def all_sent() -> bool:
                return bool(
                    await gateway.scalar(
                        "SELECT count(*) FROM webhook_deliveries "
                        "WHERE merchant_id = :m AND status = 'succeeded'",
                        m=merchant.id,
                    )
                    == 200
                )

            await wait_for(all_sent, timeout=60)
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            w.wait(timeout=30)
        gateway.start_worker()
    ids = [r.headers["webhook-id"] for r in rx.received]
    assert len(ids) == 200
    assert len(set(ids)) == 200
    rows = await gateway.scalar(
        "SELECT json_agg(json_build_object('n', n, 'w', w)) FROM ("
        "SELECT count(*) n, count(DISTINCT a.worker) w FROM webhook_attempts a "
        "JOIN webhook_deliveries d ON d.id = a.delivery_id WHERE d.merchant_id = :m "
        "GROUP BY a.delivery_id) x",
        m=merchant.id,
    )
    assert len(rows) == 200
    assert all(r == {"n": 1, "w": 1} for r in rows)
    workers_used = await gateway.scalar(
        "SELECT count(DISTINCT a.worker) FROM webhook_attempts a JOIN webhook_deliveries d "
        "ON d.id = a.delivery_id WHERE d.merchant_id = :m",
        m=merchant.id,
    )
    assert workers_used == 2  # certain: the gate opened only with both holding a claim
    assert rx.max_in_flight == 2
    assert [w.returncode for w in workers] == [0, 0]  # SIGTERM: finished in-flight work, exited cleanly


@pytest.fixture
async def guarded(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    """A second gateway process on the same servers with the SSRF guard on."""
    settings = gateway.ctx.settings.model_copy(
        update={"delivery": DeliverySettings(allow_private_targets=False, run_in_process=False)}
    )
    async with configured_app(settings) as c:
        yield c


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hooks",
        "http://localhost:8000/hooks",
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.7/hooks",
        "http://[::1]/hooks",
        "http://192.168.1.1/",
        "http://0.0.0.0/",
    ],
)
async def test_ssrf_guard_refuses_private_targets(
    guarded: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, url: str
) -> None:
    r = await guarded.post(
        "/v1/webhook-endpoints", headers=merchant.auth, json={"url": url, "enabled_events": ["*"]}
    )
    assert (r.status_code, r.json()["code"]) == (422, "url_not_allowed")
    assert (
        await gateway.scalar("SELECT count(*) FROM webhook_endpoints WHERE merchant_id = :m", m=merchant.id)
        == 0
    )


async def test_ssrf_guard_follows_dns() -> None:
    async def resolves_to_ten(host: str, port: int) -> list[str]:
        return ["93.184.216.34", "10.1.2.3"]  # a DNS answer with one private address among public ones

    with pytest.raises(UnsafeUrl, match=r"10\.1\.2\.3"):
        await check_url("https://hooks.example.com/x", resolves_to_ten)

    async def public(host: str, port: int) -> list[str]:
        return ["93.184.216.34"]

    await check_url("https://hooks.example.com/x", public)


async def test_live_endpoints_need_https(gateway: Gateway, client: httpx.AsyncClient) -> None:
    live = await create_merchant(gateway.ctx.db, "Live shop", livemode=True)
    r = await client.post(
        "/v1/webhook-endpoints",
        headers={"Authorization": f"Bearer {live.secret_key}"},
        json={"url": "http://127.0.0.1:9/hooks", "enabled_events": ["*"]},
    )
    assert (r.status_code, r.json()["errors"][0]["type"]) == (422, "https_required")
