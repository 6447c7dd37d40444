"""The outbound delivery worker, driven one round at a time: Retry-After, timeouts, the SSRF re-check at
send time, the 16-endpoint cap, the end of a rotated secret's overlap, and response-body truncation.

The session gateway's own worker is paused (`gateway.stop_worker()`) where a test runs its own
`DeliveryWorker` and calls `run_once()`; receivers are real HTTP servers on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.requests import Request
from starlette.responses import Response

from gateway.embedded import free_port
from gateway.settings import DeliverySettings
from gateway.webhooks.outbound.worker import MAX_RETRY_AFTER, RESPONSE_BODY_LIMIT, DeliveryWorker
from receiver import running_receiver, serving
from support import Gateway, Merchant, wait_for

# --- a receiver that answers as scripted: status, headers, body, and how long it takes ----------


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    delay: float = 0.0


@dataclass
class ScriptedReceiver:
    port: int
    script: list[Answer] = field(default_factory=list)
    received: list[dict[str, str]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        await request.body()
        self.received.append({k.lower(): v for k, v in request.headers.items()})
        answer = self.script.pop(0) if self.script else Answer()
        if answer.delay:
            await asyncio.sleep(answer.delay)
        await Response(answer.body, status_code=answer.status, headers=answer.headers)(scope, receive, send)


@contextlib.asynccontextmanager
async def scripted(*answers: Answer, host: str = "127.0.0.1") -> AsyncIterator[ScriptedReceiver]:
    rx = ScriptedReceiver(free_port(), list(answers))
    async with serving(rx, rx.port, host=host, force_exit=True):  # a slow answer must not hold the test
        yield rx


# --- helpers -------------------------------------------------------------------------------------


@pytest.fixture
async def paused(gateway: Gateway) -> AsyncIterator[Gateway]:
    """The session gateway with its delivery worker stopped: only the test's worker sends."""
    await gateway.stop_worker()
    try:
        yield gateway
    finally:
        gateway.start_worker()


def worker(gateway: Gateway, **settings: Any) -> DeliveryWorker:
    base: dict[str, Any] = {
        "retry_schedule": [0.0, 30.0, 30.0],
        "allow_private_targets": True,
        "timeout_seconds": 2.0,
        "run_in_process": False,
    }
    return DeliveryWorker(gateway.ctx.db, DeliverySettings(**(base | settings)))


async def endpoint(client: httpx.AsyncClient, merchant: Merchant, url: str) -> dict[str, Any]:
    r = await client.post(
        "/v1/webhook-endpoints",
        json={"url": url, "enabled_events": ["payment.succeeded"]},
        headers=merchant.auth,
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def pay(client: httpx.AsyncClient, merchant: Merchant) -> dict[str, Any]:
    r = await client.post(
        "/v1/payments",
        json={"amount": 1000, "currency": "KES", "provider": "cash"},
        headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert (r.status_code, r.json()["status"]) == (201, "succeeded"), r.text
    return dict(r.json())


async def the_delivery(gateway: Gateway, endpoint_id: str) -> dict[str, Any]:
    """The endpoint's one delivery row and its attempts, read from PostgreSQL."""
    row = await gateway.scalar(
        "SELECT json_build_object('id', d.id, 'status', d.status, 'attempts', d.attempts, "
        "'next_at', extract(epoch FROM d.next_attempt_at), 'n', (SELECT count(*) FROM webhook_deliveries "
        "WHERE endpoint_id = :e), 'tries', (SELECT coalesce(json_agg(json_build_object("
        "'status_code', a.status_code, 'error', a.error, 'response_body', a.response_body) ORDER BY a.id), "
        "'[]') FROM webhook_attempts a WHERE a.delivery_id = d.id)) "
        "FROM webhook_deliveries d WHERE d.endpoint_id = :e",
        e=endpoint_id,
    )
    assert row is not None, "no delivery was queued"
    assert row["n"] == 1
    return dict(row)


async def attempt(gateway: Gateway, w: DeliveryWorker, endpoint_id: str) -> dict[str, Any]:
    """Runs the worker until the endpoint's delivery has one more attempt; returns the delivery."""
    before = (await the_delivery(gateway, endpoint_id))["attempts"]
    for _ in range(50):
        await w.run_once()
        got = await the_delivery(gateway, endpoint_id)
        if got["attempts"] > before:
            return got
        await asyncio.sleep(0.05)
    raise AssertionError("the worker never attempted the delivery")


# --- Retry-After -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("retry_after", "delay"),
    [
        ("120", 120.0),  # seconds, beyond the schedule's 30 s
        ("http-date+300", 300.0),  # an HTTP-date 5 minutes ahead
        ("10000000", MAX_RETRY_AFTER),  # bounded: a day at most
        ("5", 30.0),  # shorter than the schedule: the schedule wins
        ("-50", 30.0),  # negative counts as none
        ("soon", 30.0),  # unreadable counts as none
    ],
)
async def test_retry_after_pushes_the_next_attempt_at_least_that_far(
    paused: Gateway, client: httpx.AsyncClient, merchant: Merchant, retry_after: str, delay: float
) -> None:
    # An HTTP-date names a whole second: the next attempt is exactly then.
    when = (datetime.now(UTC) + timedelta(seconds=300)).replace(microsecond=0)
    value = format_datetime(when, usegmt=True) if retry_after == "http-date+300" else retry_after
    async with scripted(Answer(503, {"Retry-After": value}, b"busy")) as rx:
        ep = await endpoint(client, merchant, rx.url)
        await pay(client, merchant)
        w = worker(paused)
        try:
            before = datetime.now(UTC).timestamp()
            got = await attempt(paused, w, ep["id"])
            after = datetime.now(UTC).timestamp()
        finally:
            await w.aclose()
    assert len(rx.received) == 1
    assert (got["status"], got["attempts"]) == ("pending", 1)
    assert got["tries"] == [{"status_code": 503, "error": None, "response_body": "busy"}]
    if retry_after == "http-date+300":
        assert got["next_at"] == pytest.approx(when.timestamp(), abs=0.01)
    else:
        assert before + delay <= got["next_at"] <= after + delay + 0.01
    # Not due yet: another round sends nothing to this receiver.
    w2 = worker(paused)
    try:
        await w2.run_once()
    finally:
        await w2.aclose()
    assert len(rx.received) == 1


# --- a receiver that does not answer in time -----------------------------------------------------


async def test_a_delivery_timeout_is_recorded_as_an_attempt_and_retried(
    paused: Gateway, client: httpx.AsyncClient, merchant: Merchant
) -> None:
    async with scripted(Answer(200, delay=3.0), Answer(200, body=b"thanks")) as rx:
        ep = await endpoint(client, merchant, rx.url)
        await pay(client, merchant)
        w = worker(paused, timeout_seconds=0.5, retry_schedule=[0.0, 0.0, 0.0])
        try:
            first = await attempt(paused, w, ep["id"])
            assert (first["status"], first["attempts"]) == ("pending", 1)
            assert first["tries"] == [{"status_code": None, "error": "timeout", "response_body": None}]
            second = await attempt(paused, w, ep["id"])
        finally:
            await w.aclose()
    assert (second["status"], second["attempts"]) == ("succeeded", 2)
    assert second["tries"] == [
        {"status_code": None, "error": "timeout", "response_body": None},
        {"status_code": 200, "error": None, "response_body": "thanks"},
    ]
    assert len(rx.received) == 2
    assert rx.received[0]["webhook-id"] == rx.received[1]["webhook-id"]  # the same message, again


# --- the SSRF guard, again at send time ------------------------------------------------------------


async def test_a_host_resolving_to_a_private_address_is_refused_at_send_time(
    paused: Gateway, client: httpx.AsyncClient, merchant: Merchant
) -> None:
    """The endpoint was accepted (the test gateway allows private targets); a worker with the guard on
    checks the URL again before sending. DeliveryWorker takes no resolver, so the host is `localhost`,
    which the system resolver answers with a loopback address."""
    async with scripted() as rx:
        ep = await endpoint(client, merchant, f"http://localhost:{rx.port}/hooks")
        await pay(client, merchant)
        guarded = worker(paused, allow_private_targets=False)
        try:
            got = await attempt(paused, guarded, ep["id"])
        finally:
            await guarded.aclose()
        assert rx.received == []  # nothing was sent
        assert (got["status"], got["attempts"]) == ("pending", 1)
        [refused] = got["tries"]
        assert refused["status_code"] is None
        assert refused["response_body"] is None
        assert re.fullmatch(
            r"refused: the host 'localhost' resolves to a non-public address \((127\.0\.0\.1|::1)\)",
            refused["error"],
        ), refused["error"]
        # The same delivery, by a worker without the guard, arrives: the refusal was the guard's.
        await paused.execute(
            "UPDATE webhook_deliveries SET next_attempt_at = now() WHERE id = :d", d=got["id"]
        )
        open_worker = worker(paused)
        try:
            sent = await attempt(paused, open_worker, ep["id"])
        finally:
            await open_worker.aclose()
    assert (sent["status"], sent["attempts"]) == ("succeeded", 2)
    assert len(rx.received) == 1


# --- at most 16 endpoints per merchant and mode ----------------------------------------------------


async def test_the_seventeenth_endpoint_is_422_too_many_endpoints(
    gateway: Gateway, client: httpx.AsyncClient, merchant: Merchant
) -> None:
    created = [await endpoint(client, merchant, f"http://127.0.0.1:9/hooks/{i}") for i in range(16)]
    r = await client.post(
        "/v1/webhook-endpoints",
        json={"url": "http://127.0.0.1:9/hooks/16", "enabled_events": ["*"]},
        headers=merchant.auth,
    )
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert (body["code"], body["status"], body["title"]) == (
        "too_many_endpoints",
        422,
        "The merchant has as many endpoints as allowed",
    )
    assert body["detail"] == "At most 16 webhook endpoints per mode."
    count = "SELECT count(*) FROM webhook_endpoints WHERE merchant_id = :m AND deleted_at IS NULL"
    assert await gateway.scalar(count, m=merchant.id) == 16
    # A deleted endpoint frees its place.
    gone = await client.delete(f"/v1/webhook-endpoints/{created[0]['id']}", headers=merchant.auth)
    assert gone.status_code == 200
    await endpoint(client, merchant, "http://127.0.0.1:9/hooks/again")
    assert await gateway.scalar(count, m=merchant.id) == 16
    again = await client.post(
        "/v1/webhook-endpoints",
        json={"url": "http://127.0.0.1:9/hooks/17", "enabled_events": ["*"]},
        headers=merchant.auth,
    )
    assert (again.status_code, again.json()["code"]) == (422, "too_many_endpoints")


# --- the end of the old secret's 24 h overlap ------------------------------------------------------


async def test_after_the_overlap_only_the_new_secret_signs(
    gateway: Gateway, client: httpx.AsyncClient, merchant: Merchant
) -> None:
    async with running_receiver() as rx:
        ep = await endpoint(client, merchant, rx.url)
        old = ep["secret"]
        r = await client.post(f"/v1/webhook-endpoints/{ep['id']}/rotate-secret", headers=merchant.auth)
        assert r.status_code == 200
        new = r.json()["secret"]
        expires = await gateway.scalar(
            "SELECT extract(epoch FROM previous_secret_expires_at - now()) "
            "FROM webhook_endpoints WHERE id = :e",
            e=ep["id"],
        )
        assert 24 * 3600 - 60 < float(expires) <= 24 * 3600

        await pay(client, merchant)

        async def first() -> bool:
            return len(rx.received) >= 1

        await wait_for(first)
        await gateway.execute(
            "UPDATE webhook_endpoints SET previous_secret_expires_at = now() - interval '1 second' "
            "WHERE id = :e",
            e=ep["id"],
        )
        await pay(client, merchant)

        async def second() -> bool:
            return len(rx.received) >= 2

        await wait_for(second)
        await asyncio.sleep(0.2)
    assert len(rx.received) == 2
    during, after = rx.received
    assert len(during.headers["webhook-signature"].split()) == 2
    for secret in (new, old):
        assert Webhook(secret).verify(during.body, during.headers)["type"] == "payment.succeeded"
    assert len(after.headers["webhook-signature"].split()) == 1
    assert Webhook(new).verify(after.body, after.headers)["type"] == "payment.succeeded"
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(after.body, after.headers)


# --- what is kept of a receiver's answer -----------------------------------------------------------


@pytest.mark.parametrize("status", [500, 200])
async def test_the_recorded_response_body_is_cut_at_the_limit(
    paused: Gateway, client: httpx.AsyncClient, merchant: Merchant, status: int
) -> None:
    body = "".join(f"{i:05d}," for i in range(1_000))  # 6,000 characters, each prefix distinct
    async with scripted(Answer(status, body=body.encode())) as rx:
        ep = await endpoint(client, merchant, rx.url)
        await pay(client, merchant)
        w = worker(paused)
        try:
            got = await attempt(paused, w, ep["id"])
        finally:
            await w.aclose()
    assert len(rx.received) == 1
    assert RESPONSE_BODY_LIMIT == 2_000
    [recorded] = got["tries"]
    assert recorded["status_code"] == status
    assert recorded["response_body"] == body[:RESPONSE_BODY_LIMIT]
    assert (got["status"], got["attempts"]) == ("succeeded" if status == 200 else "pending", 1)
    # The API shows the same cut body.
    r = await client.get(f"/v1/webhook-endpoints/{ep['id']}/deliveries", headers=merchant.auth)
    assert [a["response_body"] for a in r.json()["data"][0]["attempts"]] == [body[:RESPONSE_BODY_LIMIT]]
