"""Flutterwave's webhooks are hints: a `charge.completed` moves a payment only through verify's answer.

`verif-hash` is the dashboard's secret hash sent as is, and `flutterwave-signature` is an HMAC keyed
with that same hash (docs/providers/flutterwave.md, "Callbacks: proof or hint"), so neither proves
what a body says. Each test posts a webhook the gateway accepts (right hash) and then checks, from
the database and from respx, that exactly what Flutterwave's verify said was applied: its calls
(counted on routes that match only this payment's tx_ref or id), the payment's status, its event
rows and the inbox row.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from typing import Any

import httpx
import pytest
import respx

from drivers.flutterwave import (
    LINK,
    NOT_FOUND,
    TOKEN,
    envelope,
    hashed,
    new_id,
    transaction,
    webhook,
)
from gateway.webhooks.inbound.service import sweep_once
from support import (
    FLUTTERWAVE_API,
    FLUTTERWAVE_SECRET_HASH,
    FLUTTERWAVE_SECRET_KEY,
    Gateway,
    Merchant,
    wait_for,
)

API = FLUTTERWAVE_API
AUTH = f"Bearer {FLUTTERWAVE_SECRET_KEY}"
RETURN_URL = "https://shop.example/orders/1042/return"
# The inbound sweeper's view two days ahead: it takes rows the tests stamped a day in the future.
AHEAD = -2 * 86_400.0


async def waiting(client: httpx.AsyncClient, merchant: Merchant, router: respx.Router) -> dict[str, Any]:
    router.post(f"{API}/v3/payments").respond(200, content=envelope("Hosted Link", {"link": LINK}))
    r = await client.post(
        "/v1/payments",
        json={
            "amount": 5_000,
            "currency": "KES",
            "provider": "flutterwave",
            "customer": {"name": "Amina Otieno", "email": "amina@example.com"},
            "return_url": RETURN_URL,
        },
        headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert r.status_code == 201, r.text
    assert (r.json()["status"], r.json()["provider_reference"]) == ("requires_action", None)
    return dict(r.json())


def by_reference(router: respx.Router, payment_id: str) -> respx.Route:
    """`GET /v3/transactions/verify_by_reference?tx_ref=<this payment>` only."""
    return router.get(f"{API}/v3/transactions/verify_by_reference", params={"tx_ref": payment_id})


def verified(data: dict[str, Any]) -> httpx.Response:
    return httpx.Response(200, content=envelope("Transaction fetched successfully", data))


async def post_hook(client: httpx.AsyncClient, headers: dict[str, str], raw: bytes) -> None:
    r = await client.post("/v1/webhooks/flutterwave", content=raw, headers=headers)
    assert (r.status_code, r.content) == (200, b'{"received":true}'), r.text


def signed(raw: bytes) -> dict[str, str]:
    """`flutterwave-signature`, computed here from the documented algorithm (not the adapter's helper)."""
    mac = hmac.new(FLUTTERWAVE_SECRET_HASH.encode(), raw, hashlib.sha256).digest()
    return {"content-type": "application/json", "flutterwave-signature": base64.b64encode(mac).decode()}


async def inbox_row(gateway: Gateway, tx_id: int) -> dict[str, Any] | None:
    got = await gateway.scalar(
        "SELECT json_build_object('id', id, 'attempts', attempts, 'outcome', outcome, "
        "'last_error', last_error, 'processed', processed_at IS NOT NULL) "
        "FROM inbound_webhooks WHERE provider = 'flutterwave' AND provider_event_id LIKE :k",
        k=f"charge.completed:{tx_id}:%",
    )
    return None if got is None else dict(got)


async def processed(gateway: Gateway, tx_id: int) -> dict[str, Any]:
    async def done() -> bool:
        row = await inbox_row(gateway, tx_id)
        return row is not None and row["processed"]

    await wait_for(done)
    row = await inbox_row(gateway, tx_id)
    assert row is not None
    return row


async def hold_from_sweeper(gateway: Gateway, tx_id: int) -> None:
    """Stamps the stored event a day ahead, so only this test decides when it is retried."""
    assert (
        await gateway.execute(
            "UPDATE inbound_webhooks SET received_at = now() + interval '1 day' "
            "WHERE provider = 'flutterwave' AND provider_event_id LIKE :k",
            k=f"charge.completed:{tx_id}:%",
        )
        == "UPDATE 1"
    )


async def failed_once(gateway: Gateway, tx_id: int) -> dict[str, Any]:
    async def recorded() -> bool:
        row = await inbox_row(gateway, tx_id)
        return row is not None and row["attempts"] == 1

    await wait_for(recorded)
    row = await inbox_row(gateway, tx_id)
    assert row is not None
    return row


async def payment_row(gateway: Gateway, payment_id: str) -> dict[str, Any]:
    got = await gateway.scalar(
        "SELECT json_build_object('status', status, 'provider_reference', provider_reference, "
        "'failure_code', failure_code, 'failure_message', failure_message) FROM payments WHERE id = :p",
        p=payment_id,
    )
    return dict(got)


async def events(gateway: Gateway, payment_id: str) -> list[tuple[str, str, str | None]]:
    got = await gateway.scalar(
        "SELECT coalesce(json_agg(json_build_array(type, source, status) ORDER BY id), '[]') "
        "FROM events WHERE payment_id = :p",
        p=payment_id,
    )
    return [(t, source, status) for t, source, status in got]


# A hosted payment's trail before any webhook: created, then its link handed out.
CREATED = [("payment.created", "api", "pending"), ("payment.requires_action", "api", "requires_action")]


# --- a right hash settles only what verify says ------------------------------------------------------


@pytest.mark.parametrize("auth", ["verif-hash", "flutterwave-signature"])
async def test_a_success_settles_only_after_one_verify_that_says_successful(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, provider_http: respx.Router, auth: str
) -> None:
    p = await waiting(client, merchant, provider_http)
    tx_id = new_id()
    data = transaction(tx_id, p["id"], 5_000, "KES", "successful", "Approved by Financial Institution")
    route = by_reference(provider_http, p["id"]).mock(return_value=verified(data))
    by_id = provider_http.get(f"{API}/v3/transactions/{tx_id}/verify")
    raw = webhook(data)
    # Either header is accepted; with the HMAC one the gateway still asks (see the module docstring).
    await post_hook(client, *hashed(raw)) if auth == "verif-hash" else await post_hook(
        client, signed(raw), raw
    )

    row = await processed(gateway, tx_id)
    assert (row["outcome"], row["attempts"], row["last_error"]) == ("processed", 1, None)
    assert (route.call_count, by_id.call_count) == (1, 0)
    request = route.calls.last.request
    assert (request.method, str(request.url)) == (
        "GET",
        f"{API}/v3/transactions/verify_by_reference?tx_ref={p['id']}",
    )
    assert request.headers["authorization"] == AUTH
    assert (await payment_row(gateway, p["id"]))["status"] == "succeeded"
    assert (await payment_row(gateway, p["id"]))["provider_reference"] == str(tx_id)
    assert await events(gateway, p["id"]) == [*CREATED, ("payment.succeeded", "webhook", "succeeded")]


@pytest.mark.parametrize(
    ("flw_status", "reason", "status", "code"),
    [
        ("failed", "Insufficient Funds", "failed", "insufficient_funds"),
        ("pending", "Pending validation", "processing", None),
    ],
)
async def test_a_success_that_verify_contradicts_takes_verify_s_word(
    client: httpx.AsyncClient,
    gateway: Gateway,
    merchant: Merchant,
    provider_http: respx.Router,
    flw_status: str,
    reason: str,
    status: str,
    code: str | None,
) -> None:
    p = await waiting(client, merchant, provider_http)
    tx_id = new_id()
    claimed = transaction(tx_id, p["id"], 5_000, "KES", "successful", "Approved")
    truth = transaction(tx_id, p["id"], 5_000, "KES", flw_status, reason)
    route = by_reference(provider_http, p["id"]).mock(return_value=verified(truth))
    await post_hook(client, *hashed(webhook(claimed)))

    row = await processed(gateway, tx_id)
    assert (row["outcome"], row["attempts"]) == ("processed", 1)
    assert route.call_count == 1
    after = await payment_row(gateway, p["id"])
    assert (after["status"], after["failure_code"]) == (status, code)
    assert after["failure_message"] == (reason if status == "failed" else None)
    assert await events(gateway, p["id"]) == [*CREATED, (f"payment.{status}", "webhook", status)]


@pytest.mark.parametrize(("amount", "currency"), [(4_999, "KES"), (5_001, "KES"), (5_000, "NGN")])
async def test_verify_naming_other_money_settles_nothing(
    client: httpx.AsyncClient,
    gateway: Gateway,
    merchant: Merchant,
    provider_http: respx.Router,
    amount: int,
    currency: str,
) -> None:
    p = await waiting(client, merchant, provider_http)
    tx_id = new_id()
    # The webhook names our money; Flutterwave's verify names other money for the same tx_ref.
    route = by_reference(provider_http, p["id"]).mock(
        return_value=verified(transaction(tx_id, p["id"], amount, currency, "successful", "Approved"))
    )
    await post_hook(client, *hashed(webhook(transaction(tx_id, p["id"], 5_000, "KES", "successful", "Ok"))))

    row = await processed(gateway, tx_id)
    # Processed, and nothing changed: the state machine refused the success (amount_mismatch).
    assert (row["outcome"], row["attempts"]) == ("no_change", 1)
    assert route.call_count == 1
    assert await payment_row(gateway, p["id"]) == {
        "status": "requires_action",
        "provider_reference": None,
        "failure_code": None,
        "failure_message": None,
    }
    assert await events(gateway, p["id"]) == [
        *CREATED,
        ("payment.transition_rejected", "webhook", "requires_action"),
    ]
    rejected = await gateway.scalar(
        "SELECT data->'rejected' FROM events WHERE payment_id = :p AND type = 'payment.transition_rejected'",
        p=p["id"],
    )
    assert rejected == {"target_status": "succeeded", "reason": "amount_mismatch"}


async def test_once_flutterwave_s_id_is_known_the_webhook_is_checked_by_that_id(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, provider_http: respx.Router
) -> None:
    tx_id = new_id()

    def pending(request: httpx.Request) -> httpx.Response:
        sent = json.loads(request.content)
        data = transaction(tx_id, sent["tx_ref"], 5_000, "KES", "pending", "Awaiting bank confirmation")
        return httpx.Response(200, content=envelope("Charge initiated", data))

    provider_http.post(f"{API}/v3/tokenized-charges").mock(side_effect=pending)
    r = await client.post(
        "/v1/payments",
        json={
            "amount": 5_000,
            "currency": "KES",
            "provider": "flutterwave",
            "payment_method": TOKEN,
            "customer": {"email": "amina@example.com"},
        },
        headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert (r.status_code, r.json()["status"], r.json()["provider_reference"]) == (
        201,
        "processing",
        str(tx_id),
    )
    pid = r.json()["id"]
    data = transaction(tx_id, pid, 5_000, "KES", "successful", "Approved")
    by_id = provider_http.get(f"{API}/v3/transactions/{tx_id}/verify").mock(return_value=verified(data))
    by_ref = by_reference(provider_http, pid)
    await post_hook(client, *hashed(webhook(data)))

    row = await processed(gateway, tx_id)
    assert (row["outcome"], row["attempts"]) == ("processed", 1)
    assert (by_id.call_count, by_ref.call_count) == (1, 0)
    assert by_id.calls.last.request.headers["authorization"] == AUTH
    assert await events(gateway, pid) == [
        ("payment.created", "api", "pending"),
        ("payment.processing", "api", "processing"),
        ("payment.succeeded", "webhook", "succeeded"),
    ]


async def test_a_repeated_webhook_is_verified_once_and_a_forged_failure_of_a_paid_payment_moves_nothing(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, provider_http: respx.Router
) -> None:
    p = await waiting(client, merchant, provider_http)
    tx_id = new_id()
    data = transaction(tx_id, p["id"], 5_000, "KES", "successful", "Approved")
    route = by_reference(provider_http, p["id"]).mock(return_value=verified(data))
    by_id = provider_http.get(f"{API}/v3/transactions/{tx_id}/verify").mock(return_value=verified(data))
    raw = webhook(data)
    await post_hook(client, *hashed(raw))
    await post_hook(client, *hashed(raw))  # the same delivery again: a duplicate, not stored
    await processed(gateway, tx_id)
    assert (route.call_count, by_id.call_count) == (1, 0)
    assert (
        await gateway.scalar(
            "SELECT count(*) FROM inbound_webhooks "
            "WHERE provider = 'flutterwave' AND provider_event_id LIKE :k",
            k=f"%:{tx_id}:%",
        )
        == 1
    )

    # A "failed" about the paid payment (another status word: a new event) is checked by the id we now
    # hold, and verify's "successful" changes nothing.
    await post_hook(client, *hashed(webhook({**data, "status": "failed"})))

    async def done() -> bool:
        return bool(
            await gateway.scalar(
                "SELECT outcome FROM inbound_webhooks WHERE provider_event_id = :k",
                k=f"charge.completed:{tx_id}:failed",
            )
            == "no_change"
        )

    await wait_for(done)
    assert (route.call_count, by_id.call_count) == (1, 1)
    assert await events(gateway, p["id"]) == [*CREATED, ("payment.succeeded", "webhook", "succeeded")]


# --- verify unreachable: nothing moves, the webhook is retried ----------------------------------------


@pytest.mark.parametrize("outage", ["timeout", "503"])
async def test_verify_unreachable_changes_nothing_and_the_webhook_is_retried(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, provider_http: respx.Router, outage: str
) -> None:
    p = await waiting(client, merchant, provider_http)
    tx_id = new_id()
    data = transaction(tx_id, p["id"], 5_000, "KES", "successful", "Approved")
    route = by_reference(provider_http, p["id"])
    if outage == "timeout":
        route.mock(side_effect=httpx.ReadTimeout("timed out"))
    else:
        route.respond(503, text="<html>Service Unavailable</html>")
    await post_hook(client, *hashed(webhook(data)))
    await hold_from_sweeper(gateway, tx_id)

    row = await failed_once(gateway, tx_id)
    error = "ProviderTimedOut" if outage == "timeout" else "ProviderUnavailable"
    assert (row["processed"], row["outcome"], row["attempts"]) == (False, None, 1)
    assert row["last_error"].startswith(error + ": flutterwave"), row["last_error"]
    assert route.call_count == 1
    assert await payment_row(gateway, p["id"]) == {
        "status": "requires_action",
        "provider_reference": None,
        "failure_code": None,
        "failure_message": None,
    }
    assert await events(gateway, p["id"]) == CREATED

    # Flutterwave is back; the sweeper's next round retries the stored event.
    route.mock(side_effect=None, return_value=verified(data))
    await sweep_once(gateway.ctx.db, gateway.ctx.registry, older_than_seconds=AHEAD, max_attempts=10)
    row = await processed(gateway, tx_id)
    assert (row["outcome"], row["attempts"], row["last_error"]) == ("processed", 2, None)
    assert route.call_count == 2
    assert (await payment_row(gateway, p["id"]))["status"] == "succeeded"
    assert await events(gateway, p["id"]) == [*CREATED, ("payment.succeeded", "webhook", "succeeded")]


# --- fabricated bodies with the right hash ----------------------------------------------------------


async def test_a_fabricated_success_for_a_tx_ref_we_never_made_asks_nothing(
    client: httpx.AsyncClient, gateway: Gateway, provider_http: respx.Router
) -> None:
    ghost = f"pay_{uuid.uuid4().hex[:26]}"
    tx_id = new_id()
    route = by_reference(provider_http, ghost)
    by_id = provider_http.get(f"{API}/v3/transactions/{tx_id}/verify")
    await post_hook(client, *hashed(webhook(transaction(tx_id, ghost, 5_000, "KES", "successful", "Ok"))))

    row = await processed(gateway, tx_id)
    assert (row["outcome"], row["attempts"]) == ("unmatched", 1)
    assert (route.call_count, by_id.call_count) == (0, 0)
    assert await gateway.scalar("SELECT count(*) FROM payments WHERE id = :p", p=ghost) == 0


async def test_a_fabricated_success_naming_another_provider_s_payment_is_unmatched(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, provider_http: respx.Router
) -> None:
    r = await client.post(
        "/v1/payments",
        json={"amount": 5_000, "currency": "KES", "provider": "cash"},
        headers={**merchant.auth, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert r.status_code == 201, r.text
    cash = r.json()["id"]
    before = await events(gateway, cash)
    tx_id = new_id()
    route = by_reference(provider_http, cash)
    await post_hook(client, *hashed(webhook(transaction(tx_id, cash, 5_000, "KES", "successful", "Ok"))))

    row = await processed(gateway, tx_id)
    assert (row["outcome"], row["attempts"]) == ("unmatched", 1)
    assert route.call_count == 0
    assert await events(gateway, cash) == before


async def test_a_fabricated_success_for_our_payment_that_flutterwave_does_not_know_settles_nothing(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, provider_http: respx.Router
) -> None:
    p = await waiting(client, merchant, provider_http)
    tx_id = new_id()  # an id Flutterwave never issued, for a payment nobody has paid
    route = by_reference(provider_http, p["id"]).respond(400, json=NOT_FOUND)
    by_id = provider_http.get(f"{API}/v3/transactions/{tx_id}/verify")
    await post_hook(client, *hashed(webhook(transaction(tx_id, p["id"], 5_000, "KES", "successful", "Ok"))))
    await hold_from_sweeper(gateway, tx_id)

    row = await failed_once(gateway, tx_id)
    # Asked by our own tx_ref, never by the id the body names; "no transaction" keeps the event for a
    # later retry (bounded by max_attempts) rather than guessing, and moves nothing.
    assert (row["processed"], row["outcome"], row["attempts"]) == (False, None, 1)
    assert row["last_error"].startswith("NoTransactionYet: flutterwave has no transaction"), row["last_error"]
    assert (route.call_count, by_id.call_count) == (1, 0)
    assert await payment_row(gateway, p["id"]) == {
        "status": "requires_action",
        "provider_reference": None,
        "failure_code": None,
        "failure_message": None,
    }
    assert await events(gateway, p["id"]) == CREATED
