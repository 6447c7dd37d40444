"""The delivery worker (`gateway worker`) SIGKILLed while deliveries are in flight, then started again.

The merchant's endpoint receives every event's webhook; it holds the first batch (ten deliveries)
unanswered, and the worker is killed while they wait. Its lease on them outlives the send timeout
(1 s here, so 31 s), after which the restarted worker sends them again: each event arrives at least
once, the ten held ones exactly twice, every arrival signed.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
from standardwebhooks.webhooks import Webhook

from faults.counting import Tally, report, until_final
from faults.peers import holding_receiver
from faults.processes import FaultServers, GatewayProcess, database, gateway_env
from gateway.embedded import free_port
from support import Merchant, wait_for

PAYMENTS = 20  # two events each: payment.created and payment.succeeded
BATCH = 10


async def test_a_killed_delivery_worker_loses_no_event(
    merchant_client: httpx.AsyncClient,
    fault_servers: FaultServers,
    fault_merchant: Merchant,
    tmp_path: Path,
) -> None:
    async with holding_receiver(free_port()) as receiver:
        r = await merchant_client.post(
            "/v1/webhook-endpoints", json={"url": receiver.url, "enabled_events": ["*"]}
        )
        assert r.status_code == 201, r.text
        secret = r.json()["secret"]
        tally = Tally()
        for _ in range(PAYMENTS):
            p = await until_final(
                merchant_client,
                tally,
                "/v1/payments",
                key=str(uuid.uuid4()),
                body={
                    "amount": 1_500,
                    "currency": "KES",
                    "provider": "sandbox",
                    "payment_method": "pm_success",
                },
            )
            assert (p.status_code, p.json()["status"]) == (201, "succeeded")

        env = gateway_env(
            fault_servers,
            DELIVERY__TIMEOUT_SECONDS="1",
            DELIVERY__POLL_INTERVAL_SECONDS="0.05",
            DELIVERY__BATCH_SIZE=str(BATCH),
            DELIVERY__ALLOW_PRIVATE_TARGETS="true",
            RECONCILER__INTERVAL_SECONDS="3600",
            SANDBOX__SEND_WEBHOOKS="false",
        )
        worker = GatewayProcess("worker", env, tmp_path / "worker.log")
        receiver.holding = True
        await worker.start()
        try:

            async def batch_in_flight() -> bool:
                return len(receiver.held) >= BATCH

            await wait_for(batch_in_flight, timeout=30)
            first_pid = worker.proc.pid if worker.proc else 0
            await worker.kill()
            killed_at = time.monotonic()
            receiver.release()  # answers for a dead worker: nobody reads them
            await worker.start()
            second_pid = worker.proc.pid if worker.proc else 0

            async with database(fault_servers.postgres_url) as db:

                async def all_delivered() -> bool:
                    n = await db.fetchval(
                        "SELECT count(*) FROM webhook_deliveries "
                        "WHERE merchant_id = $1 AND status = 'succeeded'",
                        fault_merchant.id,
                    )
                    return bool(n == 2 * PAYMENTS)

                await wait_for(all_delivered, timeout=75)
                redelivered_after = time.monotonic() - killed_at
                events = {
                    row["id"]
                    for row in await db.fetch(
                        "SELECT id FROM events WHERE merchant_id = $1", fault_merchant.id
                    )
                }
                deliveries = Counter(
                    row["status"]
                    for row in await db.fetch(
                        "SELECT status FROM webhook_deliveries WHERE merchant_id = $1", fault_merchant.id
                    )
                )
                attempts = await db.fetch(
                    "SELECT a.worker, a.status_code FROM webhook_attempts a "
                    "JOIN webhook_deliveries d ON d.id = a.delivery_id WHERE d.merchant_id = $1",
                    fault_merchant.id,
                )
        finally:
            assert await worker.stop() == 0

    per_event = Counter(a.headers["webhook-id"] for a in receiver.arrivals)
    assert len(events) == 2 * PAYMENTS
    assert set(per_event) == events  # every event arrived, none lost, nothing else
    assert len(set(receiver.held)) == BATCH
    assert per_event == {e: (2 if e in receiver.held else 1) for e in events}
    assert deliveries == {"succeeded": 2 * PAYMENTS}
    # The killed worker's attempts died with it; every recorded attempt is the restarted worker's.
    assert sorted(a["status_code"] for a in attempts) == [200] * (2 * PAYMENTS)
    assert {a["worker"].rsplit(":", 1)[1] for a in attempts} == {str(second_pid)}
    assert first_pid != second_pid
    signer = Webhook(secret)
    for arrival in receiver.arrivals:
        signer.verify(arrival.body, arrival.headers)  # raises if any arrival is not ours, intact
    report(
        "worker_sigkill",
        events=len(events),
        deliveries=sum(deliveries.values()),
        in_flight_at_kill=BATCH,
        arrivals=len(receiver.arrivals),
        events_delivered_twice=sum(1 for n in per_event.values() if n == 2),
        events_delivered_once=sum(1 for n in per_event.values() if n == 1),
        recorded_attempts=len(attempts),
        all_delivered_after_kill_s=round(redelivered_after, 1),
    )
