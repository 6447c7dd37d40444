"""`gateway worker` is the API's own runtime without HTTP: what its reconciler settles reaches live
streams served by any gateway process, through the same event publisher."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import httpx

from gateway.embedded import EmbeddedServers
from sse import Stream
from support import Gateway, Merchant, servers_env, wait_for, with_sandbox

METHOD = "pm_action_success"  # the customer acts; the sandbox reports it only when asked


async def test_a_payment_the_worker_process_reconciles_reaches_an_open_stream(
    client: httpx.AsyncClient,
    gateway: Gateway,
    merchant: Merchant,
    servers: EmbeddedServers,
    tmp_path: Path,
) -> None:
    async with with_sandbox(gateway, send_webhooks=False) as quiet:  # the payment waits for the reconciler
        r = await quiet.post(
            "/v1/payments",
            json={
                "amount": 1500,
                "currency": "KES",
                "provider": "sandbox",
                "payment_method": "pm_action_success",
            },
            headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())},
        )
    assert (r.status_code, r.json()["status"]) == (201, "requires_action")
    payment_id = r.json()["id"]
    env = {
        **os.environ,
        **servers_env(servers),
        "GATEWAY_LOG_LEVEL": "INFO",
        "GATEWAY_SANDBOX__ACTION_DELAY_SECONDS": "0",  # its simulated customer has already paid
        "GATEWAY_RECONCILER__INTERVAL_SECONDS": "0.2",
        "GATEWAY_DELIVERY__ALLOW_PRIVATE_TARGETS": "true",
    }
    log = tmp_path / "worker.log"
    worker = subprocess.Popen([sys.executable, "-m", "gateway.cli", "worker"], env=env, stderr=log.open("wb"))
    try:
        async with client.stream(
            "GET", f"/v1/payments/{payment_id}/stream", headers=merchant.auth, timeout=60
        ) as response:
            stream = Stream(response)
            [current] = await stream.ready()
            assert (current.data["id"], current.data["status"]) == (payment_id, "requires_action")

            async def started() -> bool:
                return b"gateway_started" in log.read_bytes()

            await wait_for(started, timeout=60)
            await gateway.execute("UPDATE payments SET next_reconcile_at = now() WHERE id = :i", i=payment_id)

            async def settled() -> bool:
                status = await gateway.scalar("SELECT status FROM payments WHERE id = :i", i=payment_id)
                return bool(status == "succeeded")

            await wait_for(settled, timeout=30)
            # Published by the worker process once its transaction committed: here within 2 s.
            [event] = await stream.events(1, timeout=2.0)
            assert event.data["type"] == "payment.succeeded"
            assert event.data["source"] == "reconciler"
            assert event.data["data"]["object"]["status"] == "succeeded"
            assert await stream.end() == []
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    assert worker.returncode == 0
