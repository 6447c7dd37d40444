"""Refunds: full, partial and several, never more than was paid, however many requests race."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from support import ACTION_DELAY, Gateway, Merchant, signed, wait_for, with_sandbox


def key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


async def paid(
    client: httpx.AsyncClient,
    merchant: Merchant,
    method: str = "pm_success",
    amount: int = 10_000,
    provider: str = "sandbox",
) -> dict[str, Any]:
    r = await client.post(
        "/v1/payments",
        json={"amount": amount, "currency": "KES", "provider": provider, "payment_method": method}
        if provider == "sandbox"
        else {"amount": amount, "currency": "KES", "provider": provider},
        headers={**merchant.auth, **key()},
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def refund(
    client: httpx.AsyncClient,
    merchant: Merchant,
    payment_id: str,
    headers: dict[str, str] | None = None,
    **body: Any,
) -> httpx.Response:
    return await client.post(
        f"/v1/payments/{payment_id}/refunds", json=body, headers={**merchant.auth, **(headers or key())}
    )


async def payment(client: httpx.AsyncClient, merchant: Merchant, payment_id: str) -> dict[str, Any]:
    return dict((await client.get(f"/v1/payments/{payment_id}", headers=merchant.auth)).json())


async def trail(client: httpx.AsyncClient, merchant: Merchant, payment_id: str) -> list[str]:
    r = await client.get(f"/v1/payments/{payment_id}/events", headers=merchant.auth, params={"limit": 100})
    return [e["type"] for e in reversed(r.json()["data"])]


async def test_twenty_racing_partial_refunds_never_exceed_the_payment(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    p = await paid(client, merchant, amount=10_000)  # KES 100.00
    calls = gateway.calls("sandbox.refund_payment")

    responses = await asyncio.gather(*(refund(client, merchant, p["id"], amount=1_000) for _ in range(20)))

    ok = [r for r in responses if r.status_code == 201]
    # A refusal names what the request saw: all 10 000 held by refunds still in flight (422), or the
    # payment already `refunded` once they had all succeeded (409). Which one is a matter of timing.
    refused = [r for r in responses if r.status_code in (409, 422)]
    unexpected = [(r.status_code, r.text) for r in responses if r.status_code not in (201, 409, 422)]
    statuses = sorted(r.status_code for r in responses)
    assert (len(ok), len(refused)) == (10, 10), (statuses, unexpected)
    assert all(r.json()["status"] == "succeeded" and r.json()["amount"] == 1_000 for r in ok)
    for r in refused:
        if r.status_code == 422:
            assert (r.json()["code"], r.json()["remaining"]) == ("refund_exceeds_remaining", 0)
        else:
            assert (r.json()["code"], r.json()["status_now"]) == ("payment_not_refundable", "refunded")
    after = await payment(client, merchant, p["id"])
    assert (after["status"], after["amount_refunded"]) == ("refunded", 10_000)
    assert await gateway.scalar("SELECT count(*) FROM refunds WHERE payment_id = :p", p=p["id"]) == 10
    assert gateway.calls("sandbox.refund_payment") - calls == 10
    types = await trail(client, merchant, p["id"])
    assert types.count("refund.created") == types.count("refund.succeeded") == 10
    assert types.count("payment.partially_refunded") == 9
    assert types[-1] == "payment.refunded"


async def test_one_key_one_refund_one_provider_call(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    p = await paid(client, merchant)
    headers = key()
    calls = gateway.calls("sandbox.refund_payment")
    responses = await asyncio.gather(
        *(refund(client, merchant, p["id"], headers, amount=2_500, reason="duplicate") for _ in range(10))
    )
    created = [r for r in responses if r.status_code == 201]
    assert {r.status_code for r in responses} <= {201, 409}
    assert len({r.content for r in created}) == 1
    again = await refund(client, merchant, p["id"], headers, amount=2_500, reason="duplicate")
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.content == created[0].content
    assert gateway.calls("sandbox.refund_payment") - calls == 1
    assert await gateway.scalar("SELECT count(*) FROM refunds WHERE payment_id = :p", p=p["id"]) == 1

    # With Redis flushed, the database's unique (merchant, key) still answers with the same refund.
    await gateway.ctx.redis.flushall()
    flushed = await refund(client, merchant, p["id"], headers, amount=2_500, reason="duplicate")
    assert flushed.status_code == 201
    assert flushed.headers["idempotent-replayed"] == "true"  # answered from PostgreSQL
    assert flushed.json()["id"] == created[0].json()["id"]
    assert gateway.calls("sandbox.refund_payment") - calls == 1
    other = await refund(client, merchant, p["id"], headers, amount=100)
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"


async def test_partial_then_the_rest_then_nothing_more(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    p = await paid(client, merchant, amount=7_300)
    first = await refund(
        client, merchant, p["id"], amount=300, reason="requested_by_customer", metadata={"ticket": "SUP-1"}
    )
    assert first.status_code == 201
    body = first.json()
    assert body["id"].startswith("re_")
    assert {
        k: body[k]
        for k in (
            "object",
            "payment",
            "amount",
            "currency",
            "status",
            "reason",
            "metadata",
            "livemode",
            "failure_code",
        )
    } == {
        "object": "refund",
        "payment": p["id"],
        "amount": 300,
        "currency": "KES",
        "status": "succeeded",
        "reason": "requested_by_customer",
        "metadata": {"ticket": "SUP-1"},
        "livemode": False,
        "failure_code": None,
    }
    assert body["provider_reference"] == "sbxre_" + body["id"][3:]
    mid = await payment(client, merchant, p["id"])
    assert (mid["status"], mid["amount_refunded"]) == ("partially_refunded", 300)

    too_much = await refund(client, merchant, p["id"], amount=7_001)
    assert too_much.status_code == 422
    assert (too_much.json()["code"], too_much.json()["remaining"]) == ("refund_exceeds_remaining", 7_000)

    rest = await refund(client, merchant, p["id"])  # no amount: all that is left
    assert rest.status_code == 201
    assert rest.json()["amount"] == 7_000
    end = await payment(client, merchant, p["id"])
    assert (end["status"], end["amount_refunded"]) == ("refunded", 7_300)

    after = await refund(client, merchant, p["id"], amount=1)
    assert after.status_code == 409
    assert after.json()["code"] == "payment_not_refundable"
    listed = (await client.get(f"/v1/payments/{p['id']}/refunds", headers=merchant.auth)).json()
    assert [r["amount"] for r in listed["data"]] == [7_000, 300]


@pytest.mark.parametrize("method", ["pm_action_never", "pm_insufficient_funds"])
async def test_unsettled_or_failed_payments_cannot_be_refunded(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, method: str
) -> None:
    r = await client.post(
        "/v1/payments",
        json={"amount": 900, "currency": "KES", "provider": "sandbox", "payment_method": method},
        headers={**merchant.auth, **key()},
    )
    payment_id = r.json()["id"] if r.status_code == 201 else r.json()["payment"]["id"]
    refused = await refund(client, merchant, payment_id, amount=100)
    assert refused.status_code == 409
    assert refused.json()["code"] == "payment_not_refundable"
    assert await gateway.scalar("SELECT count(*) FROM refunds WHERE payment_id = :p", p=payment_id) == 0


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"amount": 0}, 422, "validation_error"),
        ({"amount": -5}, 422, "validation_error"),
        ({"amount": "100"}, 422, "validation_error"),
        ({"reason": "because"}, 422, "validation_error"),
        ({"amount": 10_001}, 422, "refund_exceeds_remaining"),
        ({"metadata": {"k" * 41: "v"}}, 422, "invalid_metadata"),
        ({"colour": "red"}, 422, "validation_error"),
    ],
)
async def test_bad_refund_requests_write_nothing(
    client: httpx.AsyncClient,
    gateway: Gateway,
    merchant: Merchant,
    body: dict[str, Any],
    status: int,
    code: str,
) -> None:
    p = await paid(client, merchant)
    calls = gateway.calls("sandbox.refund_payment")
    r = await refund(client, merchant, p["id"], **body)
    assert r.status_code == status
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == code
    assert await gateway.scalar("SELECT count(*) FROM refunds WHERE payment_id = :p", p=p["id"]) == 0
    assert gateway.calls("sandbox.refund_payment") == calls


async def test_refund_needs_an_idempotency_key(client: httpx.AsyncClient, merchant: Merchant) -> None:
    p = await paid(client, merchant)
    r = await client.post(f"/v1/payments/{p['id']}/refunds", json={}, headers=merchant.auth)
    assert r.status_code == 400
    assert r.json()["code"] == "idempotency_key_missing"


async def test_immediate_refund_failure_frees_the_amount(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    p = await paid(client, merchant, method="pm_refund_failure", amount=5_000)
    r = await refund(client, merchant, p["id"])
    assert r.status_code == 201
    assert (r.json()["status"], r.json()["failure_code"]) == ("failed", "refund_declined")
    same = await payment(client, merchant, p["id"])
    assert (same["status"], same["amount_refunded"]) == ("succeeded", 0)
    # Failed refunds hold nothing: the whole amount can be asked for again.
    again = await refund(client, merchant, p["id"], amount=5_000)
    assert again.status_code == 201
    assert await trail(client, merchant, p["id"]) == [
        "payment.created",
        "payment.succeeded",
        "refund.created",
        "refund.failed",
        "refund.created",
        "refund.failed",
    ]


def sandbox_refund_event(p: dict[str, Any], refund: dict[str, Any], status: str) -> bytes:
    """The refund webhook the sandbox sends, written out here (not made by the gateway's own code)."""
    body = {
        "id": f"sbevt_{refund['provider_reference']}_{status}",
        "type": f"refund.{status}",
        "created": int(time.time()),
        "data": {
            "object": "refund",
            "reference": refund["provider_reference"],
            "refund_id": refund["id"],
            "payment_id": p["id"],
            "status": status,
            "amount": refund["amount"],
            "currency": "KES",
            "failure_code": None,
            "failure_message": None,
        },
    }
    return json.dumps(body).encode()


async def test_asynchronous_refund_success_by_webhook_and_its_duplicate(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    # A sandbox that sends no webhooks: the refund stays pending until this test delivers the
    # provider's webhook, so what is checked "while pending" cannot have settled already.
    async with with_sandbox(gateway, send_webhooks=False) as held:
        p = await paid(held, merchant, method="pm_refund_async", amount=4_000)
        r = await refund(held, merchant, p["id"], amount=1_500)
    assert r.status_code == 201
    assert r.json()["status"] == "pending"
    refund_id = r.json()["id"]
    assert (await payment(client, merchant, p["id"]))["amount_refunded"] == 0
    # While pending, its amount is reserved.
    over = await refund(client, merchant, p["id"], amount=2_501)
    assert (over.status_code, over.json()["remaining"]) == (422, 2_500)
    got = (await client.get(f"/v1/refunds/{refund_id}", headers=merchant.auth)).json()
    assert got["status"] == "pending"

    body = sandbox_refund_event(p, r.json(), "succeeded")
    assert (await client.post("/v1/webhooks/sandbox", content=body, headers=signed(body))).status_code == 200

    async def settled() -> bool:
        got = (await client.get(f"/v1/refunds/{refund_id}", headers=merchant.auth)).json()
        return bool(got["status"] == "succeeded")

    await wait_for(settled)
    after = await payment(client, merchant, p["id"])
    assert (after["status"], after["amount_refunded"]) == ("partially_refunded", 1_500)
    inbox = "SELECT {} FROM inbound_webhooks WHERE payload->'data'->>'refund_id' = :r"
    assert await gateway.scalar(inbox.format("outcome"), r=refund_id) == "processed"

    # The provider delivers the same event again: dropped as a duplicate before the 200 (nothing is
    # stored, so nothing is left to process), and nothing moves.
    dup = await client.post("/v1/webhooks/sandbox", content=body, headers=signed(body))
    assert dup.status_code == 200
    assert await gateway.scalar(inbox.format("count(*)"), r=refund_id) == 1
    assert await gateway.scalar(inbox.format("outcome"), r=refund_id) == "processed"
    assert (await trail(client, merchant, p["id"])).count("refund.succeeded") == 1
    assert (await payment(client, merchant, p["id"]))["amount_refunded"] == 1_500


async def test_asynchronous_refund_failure_frees_the_amount(
    client: httpx.AsyncClient, merchant: Merchant
) -> None:
    p = await paid(client, merchant, method="pm_refund_async_failure", amount=4_000)
    r = await refund(client, merchant, p["id"])
    assert (r.status_code, r.json()["status"], r.json()["amount"]) == (201, "pending", 4_000)
    refund_id = r.json()["id"]

    async def failed() -> bool:
        got = (await client.get(f"/v1/refunds/{refund_id}", headers=merchant.auth)).json()
        return bool(got["status"] == "failed")

    await wait_for(failed, timeout=ACTION_DELAY + 10)
    got = (await client.get(f"/v1/refunds/{refund_id}", headers=merchant.auth)).json()
    assert got["failure_code"] == "refund_declined"
    after = await payment(client, merchant, p["id"])
    assert (after["status"], after["amount_refunded"]) == ("succeeded", 0)
    again = await refund(client, merchant, p["id"], amount=4_000)
    assert again.status_code == 201


async def test_webhook_arriving_before_the_api_answer_is_applied_once(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    """The sandbox delivers refund.succeeded (and we store it) before its API answers 'pending'."""
    for _ in range(3):
        p = await paid(client, merchant, method="pm_refund_webhook_first", amount=2_000)
        r = await refund(client, merchant, p["id"], amount=2_000)
        assert r.status_code == 201
        assert r.json()["status"] in ("pending", "succeeded")
        refund_id = r.json()["id"]

        async def settled(rid: str = refund_id) -> bool:
            got = (await client.get(f"/v1/refunds/{rid}", headers=merchant.auth)).json()
            return bool(got["status"] == "succeeded")

        await wait_for(settled)
        after = await payment(client, merchant, p["id"])
        assert (after["status"], after["amount_refunded"]) == ("refunded", 2_000)
        types = await trail(client, merchant, p["id"])
        assert types == [
            "payment.created",
            "payment.succeeded",
            "refund.created",
            "refund.succeeded",
            "payment.refunded",
        ]


async def test_cash_refunds_are_recorded_at_once(client: httpx.AsyncClient, merchant: Merchant) -> None:
    p = await paid(client, merchant, provider="cash", amount=20_000)
    r = await refund(client, merchant, p["id"], amount=5_000)
    assert (r.status_code, r.json()["status"], r.json()["provider_reference"]) == (
        201,
        "succeeded",
        "cash_" + r.json()["id"][3:],
    )


async def test_other_merchants_see_nothing(
    client: httpx.AsyncClient, merchant: Merchant, other_merchant: Merchant
) -> None:
    p = await paid(client, merchant)
    mine = (await refund(client, merchant, p["id"], amount=100)).json()
    b = other_merchant.auth
    for r in (
        await client.post(f"/v1/payments/{p['id']}/refunds", json={"amount": 1}, headers={**b, **key()}),
        await client.get(f"/v1/payments/{p['id']}/refunds", headers=b),
        await client.get(f"/v1/refunds/{mine['id']}", headers=b),
    ):
        assert r.status_code == 404
        assert r.json()["code"] == "resource_missing"
    assert (await client.get("/v1/refunds", headers=b)).json()["data"] == []
    listed = (await client.get("/v1/refunds", headers=merchant.auth, params={"payment": p["id"]})).json()
    assert [r["id"] for r in listed["data"]] == [mine["id"]]


async def test_list_refunds_filters_and_pages(client: httpx.AsyncClient, merchant: Merchant) -> None:
    p1 = await paid(client, merchant, method="pm_refund_failure")
    p2 = await paid(client, merchant)
    failed = (await refund(client, merchant, p1["id"], amount=100)).json()
    ok = [(await refund(client, merchant, p2["id"], amount=100)).json() for _ in range(3)]
    everything = (await client.get("/v1/refunds", headers=merchant.auth, params={"limit": 100})).json()
    assert [r["id"] for r in everything["data"]] == [r["id"] for r in reversed([failed, *ok])]
    only_failed = (await client.get("/v1/refunds", headers=merchant.auth, params={"status": "failed"})).json()
    assert [r["id"] for r in only_failed["data"]] == [failed["id"]]
    page1 = (await client.get("/v1/refunds", headers=merchant.auth, params={"limit": 2})).json()
    page2 = (
        await client.get(
            "/v1/refunds",
            headers=merchant.auth,
            params={"limit": 2, "starting_after": page1["data"][-1]["id"]},
        )
    ).json()
    assert [r["id"] for r in page1["data"] + page2["data"]] == [r["id"] for r in everything["data"]]
    assert (page1["has_more"], page2["has_more"]) == (True, False)
    bad = await client.get("/v1/refunds", headers=merchant.auth, params={"starting_after": p1["id"]})
    assert (bad.status_code, bad.json()["code"]) == (422, "invalid_cursor")


@pytest.fixture
async def no_refund_gateway(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    """A second gateway process on the same servers whose sandbox declares it cannot refund."""
    async with with_sandbox(gateway, refunds=False) as c:
        yield c


async def test_a_provider_that_cannot_refund_answers_422(
    no_refund_gateway: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    p = await paid(no_refund_gateway, merchant)
    r = await refund(no_refund_gateway, merchant, p["id"], amount=100)
    assert r.status_code == 422
    assert r.json()["code"] == "refund_not_supported"
    assert await gateway.scalar("SELECT count(*) FROM refunds WHERE payment_id = :p", p=p["id"]) == 0
