"""POST /v1/webhooks/{provider}: verified on raw bytes, stored once, processed after the reply.

The sandbox's webhooks are signed per the Standard Webhooks spec, so the tests sign theirs with the
`standardwebhooks` package (a peer implementation), not with our own signer.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import httpx

from gateway.kit.ids import new_id
from support import SANDBOX_SECRET, Gateway, Merchant, signed, wait_for
from webhooks.inbound_helpers import (
    create_waiting,
    inbox_count,
    payment_state,
    sandbox_event,
    store_unprocessed,
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
    await store_unprocessed(gateway, payload)

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
