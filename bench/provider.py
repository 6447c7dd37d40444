"""The bench's stand-in payment provider: the sandbox's webhooks, sent from a process of their own.

Not part of the product. In production the webhook that completes an asynchronous payment is sent by
the provider's servers, not by the gateway; the sandbox sends its own from inside the gateway process
(a task per payment, an httpx call back to itself) so that `gateway dev` needs nothing else. Measured
that way, the sender's work (~40% of a worker's CPU on the async path, `make profile`) would be
billed to the gateway. So the bench runs the gateway with `GATEWAY_SANDBOX__SEND_WEBHOOKS=false` and
this process sends what the sandbox would have sent, the same payload (`sandbox.transformers`), the
same Standard Webhooks signature and secret, the same delay after the payment's creation. Its CPU is
recorded apart (the group "provider" in the results).

It learns of each payment waiting for its customer from the app's live events (Redis pub/sub): the
gateway publishes `payment.requires_action` anyway; the floor (bench/floor.py) publishes the same
message for its asynchronous creates. `PROVIDER_TARGETS` maps each channel to the URL the webhooks
for its payments go to.

Environment: PROVIDER_REDIS_URL, PROVIDER_TARGETS ("channel=url channel=url"), PROVIDER_DELAY (s),
PROVIDER_CONNECTIONS (at most this many connections per target at once: 100, httpx's default limit,
which the sandbox's own sender has).
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import orjson
from redis.asyncio import Redis

from gateway.kit.signing import standard_webhook_signature
from gateway.providers.sandbox import transformers as tf
from gateway.providers.sandbox.settings import SandboxSettings

SECRET = SandboxSettings().webhook_secret.get_secret_value()
WAITING = "payment.requires_action"
WAITING_TYPE = b'"type":"payment.requires_action"'  # as both apps render it (orjson)


class Target:
    """Keep-alive HTTP/1.1 connections to one app. A hand-written client: httpx costs ~3 ms of CPU a
    call, which on a 2-core box would take the cores the apps under test need."""

    def __init__(self, url: str, connections: int):
        parts = urlsplit(url)
        self.host, self.port, self.path = parts.hostname or "127.0.0.1", parts.port or 80, parts.path
        # Last in, first out: open connections are reused before another is opened.
        self._idle: asyncio.LifoQueue[tuple[asyncio.StreamReader, asyncio.StreamWriter] | None] = (
            asyncio.LifoQueue()
        )
        for _ in range(connections):
            self._idle.put_nowait(None)  # opened when first needed
        self.sent = 0
        self.failed = 0

    async def post(self, body: bytes, headers: dict[str, str]) -> int:
        conn = await self._idle.get()
        try:
            if conn is None:
                conn = await asyncio.open_connection(self.host, self.port)
            reader, writer = conn
            head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            writer.write(
                f"POST {self.path} HTTP/1.1\r\nhost: {self.host}:{self.port}\r\n{head}"
                f"content-length: {len(body)}\r\n\r\n".encode()
                + body
            )
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            status = int(status_line.split()[1])
        except (OSError, ValueError, IndexError, asyncio.IncompleteReadError):
            if conn is not None:
                conn[1].close()
            conn = None
            raise
        finally:
            self._idle.put_nowait(conn)
        return status


class Provider:
    def __init__(self, redis: Redis, targets: dict[str, Target], delay: float):
        self.redis = redis
        self.targets = targets
        self.delay = delay
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(*self.targets)
        print("provider: listening on", ", ".join(self.targets), flush=True)
        async for message in pubsub.listen():
            # Most of the gateway's events are not for this provider (it publishes three per payment):
            # passed over unparsed, so that its CPU per payment is the floor's (one message).
            if WAITING_TYPE not in message["data"]:
                continue
            channel = message["channel"].decode()
            event = orjson.loads(message["data"])
            if event.get("type") != WAITING:
                continue
            payment = event["data"]["object"]
            if payment.get("provider") != "sandbox":
                continue
            task = asyncio.create_task(self._complete(self.targets[channel], payment))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _complete(self, target: Target, payment: dict[str, Any]) -> None:
        scenario = tf.scenario_for(payment["payment_method"])
        if scenario is None or scenario.outcome is None:
            return
        created = datetime.fromisoformat(payment["created_at"].replace("Z", "+00:00")).timestamp()
        await asyncio.sleep(max(created + self.delay - time.time(), 0.0))
        msg_id, body = webhook_for(payment, scenario.outcome)
        for attempt in range(5):  # as the sandbox: a few retries, then the reconciler's job
            try:
                if await target.post(body, signed_headers(msg_id, body)) < 300:
                    target.sent += 1
                    return
            except (OSError, ValueError, IndexError, asyncio.IncompleteReadError) as e:
                print(f"provider: {type(e).__name__} sending to {target.path}", flush=True)
            target.failed += 1
            await asyncio.sleep(0.5 * 2**attempt)


def webhook_for(payment: dict[str, Any], outcome: str) -> tuple[str, bytes]:
    """The sandbox's webhook that gives `payment` its `outcome`: its message id and body."""
    scenario = tf.scenario_for(payment["payment_method"])
    if scenario is None:
        raise ValueError(f"{payment['payment_method']}: not one of the sandbox's test values")
    reference = tf.reference_for(payment["id"])
    payload = tf.webhook_payload(
        event_id=f"sbevt_{reference}_{outcome}",
        payment_id=payment["id"],
        reference=reference,
        status=outcome,
        amount=payment["amount"],
        currency=payment["currency"],
        scenario=scenario,
        created=int(time.time()),
    )
    return f"msg_{payload['id']}", orjson.dumps(payload)


def signed_headers(msg_id: str, body: bytes) -> dict[str, str]:
    """The headers the sandbox sends with a webhook, signed now (Standard Webhooks)."""
    ts = int(time.time())
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": standard_webhook_signature(SECRET, msg_id, ts, body),
    }


def targets_from(spec: str, connections: int) -> dict[str, Target]:
    pairs = [p.partition("=") for p in spec.split()]
    return {channel: Target(url, connections) for channel, _, url in pairs}


async def main() -> None:
    redis = Redis.from_url(os.environ["PROVIDER_REDIS_URL"])
    connections = int(os.environ.get("PROVIDER_CONNECTIONS", "100"))
    provider = Provider(
        redis,
        targets_from(os.environ["PROVIDER_TARGETS"], connections),
        float(os.environ.get("PROVIDER_DELAY", "0.2")),
    )
    try:
        await provider.run()
    finally:
        await redis.aclose()


if __name__ == "__main__":
    import contextlib

    import uvloop

    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(main())
