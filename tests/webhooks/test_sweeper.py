"""The inbound sweeper gives up on a stored event whose processing keeps failing: it retries it until
`attempts` reaches max_attempts, then leaves it alone (unprocessed, outcome NULL, last error kept).

The failing event names a provider the gateway does not have, so processing it raises every time.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from gateway.webhooks.inbound import repository as inbox
from gateway.webhooks.inbound.service import process, sweep_once
from support import Gateway, wait_for

ERROR = "WebhookPayloadError: provider 'ghost' is no longer registered"


async def store_failing(gateway: Gateway) -> str:
    inbox_id = await inbox.store(
        gateway.ctx.db, "ghost", "", f"evt_{uuid.uuid4().hex}", "payment.succeeded", {"id": "evt"}
    )
    assert inbox_id is not None
    return inbox_id


async def row(gateway: Gateway, inbox_id: str) -> dict[str, Any]:
    got = await gateway.scalar(
        "SELECT json_build_object('attempts', attempts, 'outcome', outcome, 'last_error', last_error, "
        "'processed', processed_at IS NOT NULL) FROM inbound_webhooks WHERE id = :i",
        i=inbox_id,
    )
    return dict(got)


async def test_sweep_once_retries_a_failing_event_until_max_attempts_then_leaves_it(gateway: Gateway) -> None:
    # Stamped a day ahead, so the session gateway's own sweeper (events older than 1 s) never takes
    # it; the sweeps below look two days ahead instead of back.
    inbox_id = await store_failing(gateway)
    await gateway.execute(
        "UPDATE inbound_webhooks SET received_at = now() + interval '1 day' WHERE id = :i", i=inbox_id
    )
    ahead = -2 * 86_400.0
    db, registry = gateway.ctx.db, gateway.ctx.registry

    for n in (1, 2, 3):
        assert await sweep_once(db, registry, older_than_seconds=ahead, max_attempts=3) >= 1
        assert await row(gateway, inbox_id) == {
            "attempts": n,
            "outcome": None,
            "last_error": ERROR,
            "processed": False,
        }
    for _ in range(2):
        await sweep_once(db, registry, older_than_seconds=ahead, max_attempts=3)
        assert await row(gateway, inbox_id) == {
            "attempts": 3,
            "outcome": None,
            "last_error": ERROR,
            "processed": False,
        }
    # The cap is what stopped it: with a higher one, the same event is tried again.
    await sweep_once(db, registry, older_than_seconds=ahead, max_attempts=4)
    assert (await row(gateway, inbox_id))["attempts"] == 4


async def test_the_running_sweeper_stops_at_its_configured_max_attempts(gateway: Gateway) -> None:
    """The session gateway's sweeper (every 0.25 s, events older than 1 s) with its own setting."""
    max_attempts = gateway.ctx.settings.webhooks.max_attempts
    assert max_attempts == 10
    inbox_id = await store_failing(gateway)

    async def given_up() -> bool:
        return bool((await row(gateway, inbox_id))["attempts"] >= max_attempts)

    await wait_for(given_up, timeout=30)
    await asyncio.sleep(1.0)  # four more sweeps
    assert await row(gateway, inbox_id) == {
        "attempts": max_attempts,
        "outcome": None,
        "last_error": ERROR,
        "processed": False,
    }


async def test_two_processes_failing_the_same_attempt_count_it_once_and_the_cap_holds(
    gateway: Gateway,
) -> None:
    """One process claims the row between another's rollback and its count of the failure: both
    counted it, once. And a row at its cap is not claimed again."""
    inbox_id = await store_failing(gateway)
    await gateway.execute(
        "UPDATE inbound_webhooks SET received_at = now() + interval '1 day', attempts = 2 WHERE id = :i",
        i=inbox_id,
    )
    db = gateway.ctx.db
    await inbox.record_failure(db, inbox_id, ERROR, 2)
    await inbox.record_failure(db, inbox_id, ERROR, 2)  # the other process, same attempt
    assert (await row(gateway, inbox_id))["attempts"] == 3
    assert await process(db, gateway.ctx.registry, inbox_id, max_attempts=3) is None
    assert (await row(gateway, inbox_id))["attempts"] == 3
    assert await process(db, gateway.ctx.registry, inbox_id, max_attempts=4) == "failed"
    assert (await row(gateway, inbox_id))["attempts"] == 4
