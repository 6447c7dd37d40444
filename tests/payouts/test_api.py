"""POST/GET /v1/payouts and cancel: the body, idempotent replays, validation codes, lists, scopes."""

from __future__ import annotations

import uuid

import httpx

from auth.credentials import add_key
from payouts.helpers import (
    FAILS,
    PENDING_THEN_SUCCEEDS,
    SUCCEEDS,
    body,
    create,
    created,
    key,
    payout_events,
    unsubmitted,
)
from support import Gateway, Merchant, assert_problem


async def test_create_answers_the_payout_with_its_destination_masked(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    calls = gateway.calls("sandbox.create_payout")
    p = await created(client, merchant, body(SUCCEEDS, amount=12_345))
    assert p["id"].startswith("po_")
    assert {
        k: p[k] for k in ("object", "amount", "currency", "provider", "status", "reference", "livemode")
    } == {
        "object": "payout",
        "amount": 12_345,
        "currency": "KES",
        "provider": "sandbox",
        "status": "succeeded",
        "reference": "rider-42",
        "livemode": False,
    }
    assert p["destination"] == {
        "type": "mobile_money",
        "phone": "+254••••••000",
        "account_number": None,
        "bank_code": None,
        "name": "Amina",
    }
    assert p["provider_reference"] == "sbxpo_" + p["id"][3:]
    assert p["metadata"] == {"rider": "42"}
    assert p["submitted_at"] is not None
    assert p["completed_at"] is not None
    assert gateway.calls("sandbox.create_payout") == calls + 1
    got = await client.get(f"/v1/payouts/{p['id']}", headers=merchant.auth)
    assert got.status_code == 200
    assert got.json() == p
    # Stored unmasked (the rail needs it), shown masked everywhere.
    stored = await gateway.scalar("SELECT destination->>'phone' FROM payouts WHERE id = :id", id=p["id"])
    assert stored == SUCCEEDS
    assert await payout_events(gateway, p["id"]) == [("payout.created", "api"), ("payout.succeeded", "api")]


async def test_a_bank_account_destination_keeps_its_last_four_digits(
    client: httpx.AsyncClient, merchant: Merchant
) -> None:
    payload = body(currency="NGN")
    payload["destination"] = {"type": "bank_account", "account_number": "0123456789", "bank_code": "058"}
    p = await created(client, merchant, payload)
    assert p["destination"]["account_number"] == "••••••6789"
    assert p["destination"]["bank_code"] == "058"


async def test_a_replay_answers_the_same_payout_and_calls_no_provider(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    headers = key()
    first = await create(client, merchant, body(), headers)
    assert first.status_code == 201
    calls = gateway.calls("sandbox.create_payout")
    again = await create(client, merchant, body(), headers)
    assert (again.status_code, again.headers["idempotent-replayed"]) == (201, "true")
    assert again.json() == first.json()
    # Redis forgot the key: PostgreSQL's (merchant, key) still answers with the same payout.
    await gateway.ctx.redis.flushdb()
    third = await create(client, merchant, body(), headers)
    assert (third.status_code, third.json()["id"]) == (201, first.json()["id"])
    assert third.headers["idempotent-replayed"] == "true"
    assert gateway.calls("sandbox.create_payout") == calls
    count = await gateway.scalar("SELECT count(*) FROM payouts WHERE merchant_id = :m", m=merchant.id)
    assert count == 1


async def test_a_key_reused_with_another_body_is_refused(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    headers = key()
    assert (await create(client, merchant, body(amount=1_000), headers)).status_code == 201
    await gateway.ctx.redis.flushdb()
    r = await create(client, merchant, body(amount=2_000), headers)
    assert_problem(r, 422, "idempotency_key_reused")


async def test_an_idempotency_key_is_required(client: httpx.AsyncClient, merchant: Merchant) -> None:
    r = await client.post("/v1/payouts", json=body(), headers=merchant.auth)
    assert_problem(r, 400, "idempotency_key_missing")


async def _refused(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, payload: dict[str, object], code: str
) -> dict[str, object]:
    calls = gateway.calls("sandbox.create_payout")
    problem = assert_problem(await create(client, merchant, payload), 422, code)
    assert gateway.calls("sandbox.create_payout") == calls
    assert await gateway.scalar("SELECT count(*) FROM payouts WHERE merchant_id = :m", m=merchant.id) == 0
    return problem


async def test_bad_input_is_refused_with_its_code_and_nothing_is_written(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    no_phone = body()
    no_phone["destination"] = {"type": "mobile_money"}
    problem = await _refused(client, gateway, merchant, no_phone, "invalid_destination")
    assert problem["errors"][0]["loc"] == ["body", "destination"]  # type: ignore[index]
    half_bank = body()
    half_bank["destination"] = {"type": "bank_account", "account_number": "0123456789"}
    await _refused(client, gateway, merchant, half_bank, "invalid_destination")
    mixed = body()
    mixed["destination"] = {
        "type": "bank_account",
        "account_number": "01",
        "bank_code": "058",
        "phone": SUCCEEDS,
    }
    await _refused(client, gateway, merchant, mixed, "invalid_destination")
    await _refused(client, gateway, merchant, body(phone="+2547"), "invalid_phone")
    await _refused(client, gateway, merchant, body(currency="kes"), "invalid_currency")
    await _refused(client, gateway, merchant, body(amount=0), "validation_error")
    await _refused(client, gateway, merchant, body(amount=10**13), "amount_too_large")
    await _refused(client, gateway, merchant, body(provider="nope"), "provider_unknown")
    await _refused(client, gateway, merchant, body(provider="cash"), "payouts_not_supported")
    await _refused(client, gateway, merchant, body(currency="INR"), "currency_not_supported")
    await _refused(client, gateway, merchant, body(surprise=1), "validation_error")


async def test_list_filters_and_pages(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    ok = [await created(client, merchant, body(SUCCEEDS)) for _ in range(3)]
    failed = await created(client, merchant, body(FAILS))
    assert failed["status"] == "failed"
    assert failed["failure_code"] == "recipient_invalid"
    r = await client.get("/v1/payouts", headers=merchant.auth, params={"limit": 2})
    assert r.status_code == 200
    page = r.json()
    assert [p["id"] for p in page["data"]] == [failed["id"], ok[2]["id"]]
    assert page["has_more"] is True
    r = await client.get(
        "/v1/payouts", headers=merchant.auth, params={"limit": 2, "starting_after": ok[2]["id"]}
    )
    assert [p["id"] for p in r.json()["data"]] == [ok[1]["id"], ok[0]["id"]]
    assert r.json()["has_more"] is False
    r = await client.get("/v1/payouts", headers=merchant.auth, params={"status": "failed"})
    assert [p["id"] for p in r.json()["data"]] == [failed["id"]]
    r = await client.get("/v1/payouts", headers=merchant.auth, params={"provider": "mpesa"})
    assert r.json()["data"] == []
    r = await client.get(
        "/v1/payouts",
        headers=merchant.auth,
        params={"created_gte": ok[1]["created_at"], "created_lt": failed["created_at"]},
    )
    assert [p["id"] for p in r.json()["data"]] == [ok[2]["id"], ok[1]["id"]]
    assert_problem(
        await client.get("/v1/payouts", headers=merchant.auth, params={"status": "paid"}),
        422,
        "validation_error",
    )
    assert_problem(
        await client.get("/v1/payouts", headers=merchant.auth, params={"starting_after": "pay_x"}),
        422,
        "invalid_cursor",
    )


async def test_another_merchants_payout_is_not_found(
    client: httpx.AsyncClient, merchant: Merchant, other_merchant: Merchant
) -> None:
    p = await created(client, merchant, body())
    assert_problem(
        await client.get(f"/v1/payouts/{p['id']}", headers=other_merchant.auth), 404, "resource_missing"
    )
    r = await client.post(f"/v1/payouts/{p['id']}/cancel", headers={**other_merchant.auth, **key()})
    assert_problem(r, 404, "resource_missing")
    assert (await client.get("/v1/payouts", headers=other_merchant.auth)).json()["data"] == []


async def test_a_submitted_payout_cannot_be_canceled(client: httpx.AsyncClient, merchant: Merchant) -> None:
    p = await created(client, merchant, body(PENDING_THEN_SUCCEEDS))
    assert p["status"] == "pending"
    r = await client.post(f"/v1/payouts/{p['id']}/cancel", headers={**merchant.auth, **key()})
    problem = assert_problem(r, 409, "payout_not_cancelable")
    assert problem["status_now"] == "pending"


async def test_a_payout_never_submitted_is_canceled_and_then_never_sent(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    idem = str(uuid.uuid4())
    payout = await unsubmitted(gateway, merchant, body(), idem)
    calls = gateway.calls("sandbox.create_payout")
    r = await client.post(f"/v1/payouts/{payout.id}/cancel", headers={**merchant.auth, **key()})
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["submitted_at"]) == ("canceled", None)
    # The create's retry answers the canceled payout: it is never sent.
    again = await create(client, merchant, body(), {"Idempotency-Key": idem})
    assert (again.status_code, again.json()["status"]) == (201, "canceled")
    assert gateway.calls("sandbox.create_payout") == calls
    assert await payout_events(gateway, payout.id) == [("payout.created", "api"), ("payout.canceled", "api")]


async def test_a_retry_sends_a_payout_whose_first_request_died_before_sending_it(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    idem = str(uuid.uuid4())
    payout = await unsubmitted(gateway, merchant, body(), idem)
    calls = gateway.calls("sandbox.create_payout")
    r = await create(client, merchant, body(), {"Idempotency-Key": idem})
    assert (r.status_code, r.json()["id"], r.json()["status"]) == (201, payout.id, "succeeded")
    again = await create(client, merchant, body(), {"Idempotency-Key": idem})
    assert again.json()["status"] == "succeeded"
    assert gateway.calls("sandbox.create_payout") == calls + 1


async def _restricted(gateway: Gateway, merchant: Merchant, *scopes: str) -> Merchant:
    k = await add_key(gateway, merchant.id, "restricted", scopes=list(scopes))
    return Merchant(merchant.id, k.secret)


async def test_scopes_payouts_read_and_write(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    payments_only = await _restricted(gateway, merchant, "payments:write", "payments:read")
    assert_problem(await create(client, payments_only, body()), 403, "insufficient_scope")
    reader = await _restricted(gateway, merchant, "payouts:read")
    assert_problem(await create(client, reader, body()), 403, "insufficient_scope")
    writer = await _restricted(gateway, merchant, "payouts:write")
    p = await created(client, writer, body())
    assert (await client.get(f"/v1/payouts/{p['id']}", headers=reader.auth)).status_code == 200
    assert_problem(await client.get(f"/v1/payouts/{p['id']}", headers=writer.auth), 403, "insufficient_scope")
