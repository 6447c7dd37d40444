"""POST /v1/webhooks/{provider}: verified on raw bytes, stored once, processed after the reply.

The sandbox's webhooks are signed per the Standard Webhooks spec, so the tests sign theirs with the
`standardwebhooks` package (a peer implementation), not with our own signer.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from gateway.kit.ids import new_id
from gateway.webhooks.inbound import service
from support import SANDBOX_SECRET, Gateway, Merchant, signed, wait_for


async def create_waiting(client: httpx.AsyncClient, merchant: Merchant) -> dict[str, Any]:
    r = await client.post(
        "/v1/payments",
        json={"amount": 1500, "currency": "KES", "provider": "sandbox", "payment_method": "pm_action_never"},
        headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert r.status_code == 201
    assert r.json()["status"] == "requires_action"
    return dict(r.json())


def sandbox_event(payment: dict[str, Any], status: str, event_id: str | None = None, **data: Any) -> bytes:
    body = {
        "id": event_id or f"sbevt_{uuid.uuid4().hex}",
        "type": f"payment.{status}",
        "created": int(datetime.now(UTC).timestamp()),
        "data": {
            "object": "payment",
            "reference": payment["provider_reference"],
            "payment_id": payment["id"],
            "status": status,
            "amount": payment["amount"],
            "currency": payment["currency"],
            "failure_code": "card_declined" if status == "failed" else None,
            "failure_message": None,
            **data,
        },
    }
    return json.dumps(body).encode()


async def payment_state(client: httpx.AsyncClient, merchant: Merchant, payment_id: str) -> tuple[str, int]:
    p = (await client.get(f"/v1/payments/{payment_id}", headers=merchant.auth)).json()
    trail = (await client.get(f"/v1/payments/{payment_id}/events", headers=merchant.auth)).json()["data"]
    return p["status"], len(trail)


async def inbox_count(gateway: Gateway, payment_id: str) -> int:
    return int(
        await gateway.scalar(
            "SELECT count(*) FROM inbound_webhooks WHERE payload->'data'->>'payment_id' = :p", p=payment_id
        )
    )


async def test_signed_webhook_succeeds_and_a_duplicate_changes_nothing(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    p = await create_waiting(client, merchant)
    body = sandbox_event(p, "succeeded", event_id="sbevt_dup_" + p["id"])

    r = await client.post("/v1/webhooks/sandbox", content=body, headers=signed(body))
    assert r.status_code == 200
    assert r.json() == {"received": True}

    async def succeeded() -> bool:
        return (await payment_state(client, merchant, p["id"]))[0] == "succeeded"

    await wait_for(succeeded)
    assert await payment_state(client, merchant, p["id"]) == ("succeeded", 3)

    # The same event again (a provider retry, new delivery headers): acknowledged, ignored.
    again = await client.post("/v1/webhooks/sandbox", content=body, headers=signed(body))
    assert again.status_code == 200
    assert await inbox_count(gateway, p["id"]) == 1
    assert await payment_state(client, merchant, p["id"]) == ("succeeded", 3)


async def test_forged_webhooks_are_rejected_and_change_nothing(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    p = await create_waiting(client, merchant)
    body = sandbox_event(p, "succeeded")
    wrong_secret = "whsec_" + "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldA=="
    headers_ok = signed(body)

    cases = [
        signed(body, secret=wrong_secret),  # wrong key
        {**headers_ok, "webhook-signature": headers_ok["webhook-signature"][:-4] + "AAAA"},  # tampered
        signed(body, when=datetime.now(UTC) - timedelta(minutes=10)),  # replayed too late
        {"content-type": "application/json"},  # unsigned
    ]
    for headers in cases:
        r = await client.post("/v1/webhooks/sandbox", content=body, headers=headers)
        assert r.status_code == 401, headers
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["code"] == "webhook_signature_invalid"
        assert SANDBOX_SECRET not in r.text

    # Signed, then the body altered in flight: the signature covers the raw bytes.
    tampered = body.replace(b'"amount": 1500', b'"amount": 1')
    r = await client.post("/v1/webhooks/sandbox", content=tampered, headers=headers_ok)
    assert r.status_code == 401

    assert await inbox_count(gateway, p["id"]) == 0
    assert await payment_state(client, merchant, p["id"]) == ("requires_action", 2)


async def test_malformed_but_signed_body_is_400(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    p = await create_waiting(client, merchant)
    for body in (b"{not json", b'{"id": "x", "type": "payment.succeeded", "data": {"status": "succeeded"}}'):
        r = await client.post("/v1/webhooks/sandbox", content=body, headers=signed(body))
        assert r.status_code == 400
        assert r.json()["code"] == "webhook_malformed"
    assert await payment_state(client, merchant, p["id"]) == ("requires_action", 2)


async def test_unknown_provider_is_404(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/webhooks/nope", content=b"{}")
    assert r.status_code == 404
    assert r.json()["code"] == "resource_missing"


async def test_late_failure_after_success_is_recorded_not_applied(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    p = await create_waiting(client, merchant)
    ok = sandbox_event(p, "succeeded")
    assert (await client.post("/v1/webhooks/sandbox", content=ok, headers=signed(ok))).status_code == 200

    async def succeeded() -> bool:
        return (await payment_state(client, merchant, p["id"]))[0] == "succeeded"

    await wait_for(succeeded)
    late = sandbox_event(p, "failed")
    assert (await client.post("/v1/webhooks/sandbox", content=late, headers=signed(late))).status_code == 200

    async def recorded() -> bool:
        return (
            await inbox_count(gateway, p["id"]) == 2
            and await gateway.scalar(
                "SELECT count(*) FROM inbound_webhooks WHERE payload->'data'->>'payment_id' = :p "
                "AND processed_at IS NOT NULL",
                p=p["id"],
            )
            == 2
        )

    await wait_for(recorded)
    got = (await client.get(f"/v1/payments/{p['id']}", headers=merchant.auth)).json()
    assert got["status"] == "succeeded"
    assert got["failure_code"] is None
    trail = (await client.get(f"/v1/payments/{p['id']}/events", headers=merchant.auth)).json()["data"]
    assert [e["type"] for e in reversed(trail)] == [
        "payment.created",
        "payment.requires_action",
        "payment.succeeded",
        "payment.transition_rejected",
    ]
    rejected = trail[0]["data"]
    assert rejected["previous_status"] == "succeeded"
    assert rejected["object"]["rejected"] == {"target_status": "failed", "reason": "illegal_transition"}


async def test_success_naming_other_money_is_not_applied(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    p = await create_waiting(client, merchant)
    body = sandbox_event(p, "succeeded", amount=1)

    assert (await client.post("/v1/webhooks/sandbox", content=body, headers=signed(body))).status_code == 200

    async def processed() -> bool:
        return bool(
            await gateway.scalar(
                "SELECT processed_at IS NOT NULL FROM inbound_webhooks "
                "WHERE payload->'data'->>'payment_id' = :p",
                p=p["id"],
            )
        )

    await wait_for(processed)
    status, _ = await payment_state(client, merchant, p["id"])
    assert status == "requires_action"
    trail = (await client.get(f"/v1/payments/{p['id']}/events", headers=merchant.auth)).json()["data"]
    assert trail[0]["type"] == "payment.transition_rejected"
    assert trail[0]["data"]["object"]["rejected"]["reason"] == "amount_mismatch"


async def test_event_for_an_unknown_payment_is_stored_and_flagged(
    client: httpx.AsyncClient, gateway: Gateway
) -> None:
    ghost = {
        "id": new_id("pay"),
        "provider_reference": "sbx_ghost_" + uuid.uuid4().hex,
        "amount": 5,
        "currency": "KES",
    }
    body = sandbox_event(ghost, "succeeded")
    assert (await client.post("/v1/webhooks/sandbox", content=body, headers=signed(body))).status_code == 200

    async def flagged() -> bool:
        return bool(
            await gateway.scalar(
                "SELECT outcome FROM inbound_webhooks WHERE payload->'data'->>'payment_id' = :p",
                p=ghost["id"],
            )
            == "unmatched"
        )

    await wait_for(flagged)


async def test_sweeper_processes_an_event_stored_but_never_processed(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    """A crash between storing and processing leaves an inbox row; the sweeper finishes the job."""
    p = await create_waiting(client, merchant)
    # Checked before the row exists: once it does, the sweeper may finish the job at any moment.
    assert await payment_state(client, merchant, p["id"]) == ("requires_action", 2)
    payload = json.loads(sandbox_event(p, "succeeded"))
    await gateway.execute(
        "INSERT INTO inbound_webhooks (id, provider, provider_event_id, event_type, payload) "
        "VALUES (:id, 'sandbox', :eid, 'payment.succeeded', CAST(:payload AS text)::jsonb)",
        id=new_id("iwh"),
        eid=payload["id"],
        payload=json.dumps(payload),
    )

    async def swept() -> bool:
        return (await payment_state(client, merchant, p["id"]))[0] == "succeeded"

    await wait_for(swept, timeout=15)
    trail = (await client.get(f"/v1/payments/{p['id']}/events", headers=merchant.auth)).json()["data"]
    assert (trail[0]["type"], trail[0]["source"]) == ("payment.succeeded", "webhook")
    assert (
        await gateway.scalar(
            "SELECT outcome FROM inbound_webhooks WHERE provider_event_id = :e", e=payload["id"]
        )
        == "processed"
    )


# Deliveries that race for one payment: the unlocked way (a read, then a commit guarded by the row's
# version) and the locking way it falls back to apply each result once and store each event once.
async def _outcomes(gateway: Gateway, payment_id: str) -> list[str]:
    rows = await gateway.ctx.db.fetch(
        "SELECT outcome FROM inbound_webhooks WHERE payload->'data'->>'payment_id' = $1 ORDER BY outcome",
        payment_id,
    )
    return [r[0] for r in rows]


async def test_racing_events_of_one_result_move_the_payment_once(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    p = await create_waiting(client, merchant)
    bodies = [sandbox_event(p, "succeeded") for _ in range(12)]  # twelve event ids

    answers = await asyncio.gather(
        *(client.post("/v1/webhooks/sandbox", content=b, headers=signed(b)) for b in bodies)
    )

    assert [a.status_code for a in answers] == [200] * 12
    # Applied before the answers (a signed notification): created, requires_action, succeeded.
    assert await payment_state(client, merchant, p["id"]) == ("succeeded", 3)
    assert await _outcomes(gateway, p["id"]) == ["no_change"] * 11 + ["processed"]


async def test_racing_copies_of_one_event_store_it_once(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    p = await create_waiting(client, merchant)
    body = sandbox_event(p, "succeeded", event_id="sbevt_race_" + p["id"])

    answers = await asyncio.gather(
        *(client.post("/v1/webhooks/sandbox", content=body, headers=signed(body)) for _ in range(12))
    )

    assert [a.status_code for a in answers] == [200] * 12
    assert await inbox_count(gateway, p["id"]) == 1
    assert await _outcomes(gateway, p["id"]) == ["processed"]
    assert await payment_state(client, merchant, p["id"]) == ("succeeded", 3)


async def test_a_result_racing_another_result_applies_the_first_to_commit(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    """A success and a failure at once: whichever commits first wins, the other is refused by the
    state machine (a terminal payment does not move), and both events are stored with their outcome."""
    p = await create_waiting(client, merchant)
    bodies = [sandbox_event(p, "succeeded"), sandbox_event(p, "failed")]

    answers = await asyncio.gather(
        *(client.post("/v1/webhooks/sandbox", content=b, headers=signed(b)) for b in bodies)
    )

    assert [a.status_code for a in answers] == [200, 200]
    assert await _outcomes(gateway, p["id"]) == ["no_change", "processed"]
    got = (await client.get(f"/v1/payments/{p['id']}", headers=merchant.auth)).json()
    trail = (await client.get(f"/v1/payments/{p['id']}/events", headers=merchant.auth)).json()["data"]
    loser = "failed" if got["status"] == "succeeded" else "succeeded"
    assert [e["type"] for e in reversed(trail)] == [
        "payment.created",
        "payment.requires_action",
        f"payment.{got['status']}",
        "payment.transition_rejected",
    ]
    assert trail[0]["data"]["object"]["rejected"] == {"target_status": loser, "reason": "illegal_transition"}


async def _unlocked(gateway: Gateway, body: bytes) -> str | None:
    """The inline webhook's unlocked way (`service._store_and_apply_unlocked`) on a signed sandbox
    notification, as `receive` calls it."""
    provider = gateway.ctx.registry.get("sandbox")
    assert provider is not None
    [event] = provider.verify_webhook(signed(body), body)
    return await service._store_and_apply_unlocked(
        gateway.ctx.db, provider, service.Source("sandbox", ""), event
    )


async def test_a_result_naming_its_reference_is_applied_the_unlocked_way(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    p = await create_waiting(client, merchant)

    assert await _unlocked(gateway, sandbox_event(p, "succeeded")) == "processed"

    assert await payment_state(client, merchant, p["id"]) == ("succeeded", 3)
    assert await _outcomes(gateway, p["id"]) == ["processed"]
    attempts = await gateway.scalar(
        "SELECT attempts FROM inbound_webhooks WHERE payload->'data'->>'payment_id' = :p", p=p["id"]
    )
    assert attempts == 1


async def test_what_the_unlocked_way_cannot_decide_it_leaves_to_the_locking_way_unwritten(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    """No reference (found by the id it names), or a reference no payment holds now (an earlier
    attempt's, or none): nothing read as decided, nothing written."""
    p = await create_waiting(client, merchant)

    assert await _unlocked(gateway, sandbox_event(p, "succeeded", reference=None)) is None
    assert await _unlocked(gateway, sandbox_event(p, "succeeded", reference="sbx_no_such")) is None

    assert await inbox_count(gateway, p["id"]) == 0
    assert await payment_state(client, merchant, p["id"]) == ("requires_action", 2)
