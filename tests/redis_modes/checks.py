"""What the Redis-mode tests check on a gateway built for a Redis URL: the API's Redis paths (the
idempotency claim and replay) and pub/sub (a live stream's subscription and the events published)."""

from __future__ import annotations

import asyncio
import uuid

import httpx

from gateway.events.publisher import channel
from gateway.main import create_app
from gateway.settings import Settings
from gateway.streams.feed import Subscription
from support import Merchant

BODY = {"amount": 2500, "currency": "KES", "provider": "sandbox", "payment_method": "pm_success"}


async def gateway_works_through(settings: Settings, merchant: Merchant) -> None:
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://redis-mode") as client,
    ):
        # The live stream's own subscription, on the gateway's client for this URL.
        sub = await Subscription(app.state.ctx.redis, channel(merchant.id, False)).open()
        try:
            headers = {**merchant.auth, "Idempotency-Key": str(uuid.uuid4())}
            created = await client.post("/v1/payments", json=BODY, headers=headers)
            assert (created.status_code, created.json()["status"]) == (201, "succeeded")
            replayed = await client.post("/v1/payments", json=BODY, headers=headers)
            assert (replayed.status_code, replayed.content) == (201, created.content)
            assert replayed.headers["idempotent-replayed"] == "true"

            seen = []
            while "payment.succeeded" not in seen:
                item = await asyncio.wait_for(sub.next(), timeout=10)
                assert item is not None
                assert item.object["id"] == created.json()["id"]
                seen.append(item.type)
            assert seen[-1] == "payment.succeeded"
        finally:
            await sub.close()
