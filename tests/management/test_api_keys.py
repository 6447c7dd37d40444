"""The merchant's own keys (/v1/api-keys): listed without secrets, created in the caller's mode, rolled
with an overlap, revoked everywhere (gateway:revoked-keys and the broadcast), another's key a 404."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from gateway.kit.ids import new_id
from gateway.merchants.service import create_merchant
from management.invalidations import listening, revoked_at
from support import ADMIN_TOKEN, Gateway, Merchant, assert_problem

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
LISTED_FIELDS = [
    "created",
    "expires_at",
    "id",
    "last4",
    "livemode",
    "merchant",
    "mode",
    "object",
    "prefix",
    "revoked_at",
    "rolled_to",
    "scopes",
    "status",
    "type",
]


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def admin_key(client: httpx.AsyncClient, merchant_id: str, **body: Any) -> dict[str, Any]:
    r = await client.post(f"/v1/admin/merchants/{merchant_id}/api-keys", json=body, headers=ADMIN)
    assert r.status_code == 201, r.text
    key: dict[str, Any] = r.json()
    return key


async def key_of(gateway: Gateway, merchant: Merchant) -> str:
    key_id: str = await gateway.scalar(
        "SELECT id FROM api_keys WHERE merchant_id = :m ORDER BY id LIMIT 1", m=merchant.id
    )
    return key_id


async def key_rows(gateway: Gateway, merchant_id: str) -> int:
    n: int = await gateway.scalar("SELECT count(*) FROM api_keys WHERE merchant_id = :m", m=merchant_id)
    return n


async def works(client: httpx.AsyncClient, secret: str) -> int:
    return (await client.get("/v1/payments", headers=bearer(secret))).status_code


# --- list and create -----------------------------------------------------------------------------


async def test_the_list_never_shows_a_secret(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, other_merchant: Merchant
) -> None:
    made = [
        await admin_key(client, merchant.id, type="restricted", scopes=["payments:read"]),
        await admin_key(client, merchant.id, type="publishable"),
    ]
    r = await client.post("/v1/api-keys", json={"type": "secret"}, headers=merchant.auth)
    assert r.status_code == 201, r.text
    made.append(r.json())
    live = await admin_key(client, merchant.id, mode="live")
    theirs = await admin_key(client, other_merchant.id)

    listed = await client.get("/v1/api-keys", headers=merchant.auth)
    assert listed.status_code == 200
    body = listed.json()
    assert (body["object"], body["has_more"]) == ("list", False)
    first_key = await key_of(gateway, merchant)
    assert [k["id"] for k in body["data"]] == [made[2]["id"], made[1]["id"], made[0]["id"], first_key]
    for key in body["data"]:
        assert sorted(key) == LISTED_FIELDS
    for shown, key in zip(body["data"], made[::-1], strict=False):
        assert shown == {k: v for k, v in key.items() if k != "secret"}
    for secret in [merchant.key, *(k["secret"] for k in made), live["secret"], theirs["secret"]]:
        assert secret not in listed.text
        assert secret[12:-4] not in listed.text  # nothing between the prefix and the last 4 either
    # Only this merchant's keys in this mode.
    assert live["id"] not in listed.text
    assert theirs["id"] not in listed.text

    page = await client.get("/v1/api-keys", params={"limit": 2}, headers=merchant.auth)
    assert ([k["id"] for k in page.json()["data"]], page.json()["has_more"]) == (
        [made[2]["id"], made[1]["id"]],
        True,
    )
    rest = await client.get("/v1/api-keys", params={"starting_after": made[1]["id"]}, headers=merchant.auth)
    assert [k["id"] for k in rest.json()["data"]] == [made[0]["id"], first_key]
    foreign = await client.get("/v1/api-keys", params={"starting_after": theirs["id"]}, headers=merchant.auth)
    assert_problem(foreign, 422, "invalid_cursor")


async def test_create_is_in_the_callers_mode(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    r = await client.post(
        "/v1/api-keys", json={"type": "restricted", "scopes": ["refunds:write"]}, headers=merchant.auth
    )
    assert r.status_code == 201, r.text
    assert r.json()["secret"].startswith("rk_test_")
    assert (r.json()["mode"], r.json()["scopes"], r.json()["merchant"]) == (
        "test",
        ["refunds:write"],
        merchant.id,
    )
    before = await key_rows(gateway, merchant.id)
    for body, code in (
        ({"mode": "live"}, "validation_error"),
        ({"type": "secret", "scopes": ["events:read"]}, "invalid_scopes"),
        ({"type": "restricted", "scopes": ["everything"]}, "invalid_scopes"),
    ):
        problem = assert_problem(
            await client.post("/v1/api-keys", json=body, headers=merchant.auth), 422, code
        )
        if body.get("mode"):
            assert problem["errors"] == [
                {"loc": ["body", "mode"], "msg": "must be test, the caller's mode", "type": "mode"}
            ]
    assert await key_rows(gateway, merchant.id) == before

    live = await create_merchant(gateway.ctx.db, "Live keys shop", livemode=True)
    r = await client.post(
        "/v1/api-keys", json={"mode": "live", "type": "publishable"}, headers=bearer(live.secret_key)
    )
    assert r.status_code == 201, r.text
    assert (r.json()["mode"], r.json()["livemode"]) == ("live", True)
    assert r.json()["secret"].startswith("pk_live_")


async def test_a_replayed_create_answers_the_same_key_without_its_secret(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    headers = {**merchant.auth, "Idempotency-Key": str(uuid.uuid4())}
    first = await client.post("/v1/api-keys", json={"type": "secret"}, headers=headers)
    assert first.status_code == 201, first.text
    secret = first.json()["secret"]
    again = await client.post("/v1/api-keys", json={"type": "secret"}, headers=headers)
    assert (again.status_code, again.headers["idempotent-replayed"]) == (201, "true")
    assert again.json() == first.json() | {"secret": None}
    assert secret not in again.text
    assert await key_rows(gateway, merchant.id) == 2  # the fixture's key and this one
    stored = await gateway.ctx.redis.keys(f"idem:{merchant.id}:*")
    assert stored
    for redis_key in stored:  # the stored answer holds no secret either
        stored_answer = await gateway.ctx.redis.get(redis_key)
        assert isinstance(stored_answer, bytes)
        assert secret.encode() not in stored_answer
    other = await client.post("/v1/api-keys", json={"type": "publishable"}, headers=headers)
    assert_problem(other, 422, "idempotency_key_reused")


# --- roll ----------------------------------------------------------------------------------------


async def test_roll_with_an_overlap(client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant) -> None:
    old = await admin_key(client, merchant.id, type="restricted", scopes=["payments:read", "events:read"])
    async with listening(gateway) as heard:
        before = datetime.now(UTC)
        r = await client.post(
            f"/v1/api-keys/{old['id']}/roll", json={"expires_in": 3600}, headers=merchant.auth
        )
        assert r.status_code == 200, r.text
        assert await heard.until(f"key:{old['id']}") == [f"key:{old['id']}"]
    new = r.json()
    assert new["id"] != old["id"]
    assert new["secret"].startswith("rk_test_")
    assert new["secret"] != old["secret"]
    assert (new["type"], new["scopes"], new["status"], new["expires_at"]) == (
        "restricted",
        ["payments:read", "events:read"],
        "active",
        None,
    )
    listed = {k["id"]: k for k in (await client.get("/v1/api-keys", headers=merchant.auth)).json()["data"]}
    rolled = listed[old["id"]]
    assert (rolled["status"], rolled["rolled_to"]) == ("active", new["id"])
    expires = datetime.fromisoformat(rolled["expires_at"])
    assert before + timedelta(seconds=3600) <= expires <= datetime.now(UTC) + timedelta(seconds=3600)
    # Scheduled at its expiry, so access tokens made from it stop then too.
    assert await revoked_at(gateway, old["id"]) == int(expires.timestamp())

    # Once rolled, not again: the new key is the one to roll.
    again = await client.post(f"/v1/api-keys/{old['id']}/roll", json={"expires_in": 0}, headers=merchant.auth)
    assert assert_problem(again, 409, "api_key_not_rollable")["detail"] == (
        f"The API key {old['id']} was rolled to {new['id']}."
    )
    assert await key_rows(gateway, merchant.id) == 3


async def test_roll_now_and_the_new_key_works(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    old_id = await key_of(gateway, merchant)
    r = await client.post(f"/v1/api-keys/{old_id}/roll", json={"expires_in": 0}, headers=merchant.auth)
    assert r.status_code == 200, r.text
    new = r.json()
    assert new["secret"].startswith("sk_test_")
    assert await works(client, new["secret"]) == 200
    expired = await gateway.scalar("SELECT expires_at <= now() FROM api_keys WHERE id = :k", k=old_id)
    assert expired is True
    rolled_to = await gateway.scalar("SELECT rolled_to FROM api_keys WHERE id = :k", k=old_id)
    assert rolled_to == new["id"]
    listed = (await client.get("/v1/api-keys", headers=bearer(new["secret"]))).json()["data"]
    assert [(k["id"], k["status"]) for k in listed] == [(new["id"], "active"), (old_id, "expired")]
    # An expired key cannot be rolled (nor rolled again): 409, nothing written.
    again = await client.post(
        f"/v1/api-keys/{old_id}/roll", json={"expires_in": 60}, headers=bearer(new["secret"])
    )
    assert_problem(again, 409, "api_key_not_rollable")
    assert await key_rows(gateway, merchant.id) == 2


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"expires_in": -1},
        {"expires_in": 604_801},
        {"expires_in": "60"},
        {"expires_in": 1.5},
        {"expires_in": 60, "x": 1},
    ],
    ids=["missing", "negative", "over-7-days", "string", "float", "unknown-field"],
)
async def test_a_bad_roll_is_422_and_writes_nothing(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, body: dict[str, Any]
) -> None:
    key_id = await key_of(gateway, merchant)
    r = await client.post(f"/v1/api-keys/{key_id}/roll", json=body, headers=merchant.auth)
    assert_problem(r, 422, "validation_error")
    assert await key_rows(gateway, merchant.id) == 1
    row = await gateway.scalar(
        "SELECT row(expires_at, rolled_to)::text FROM api_keys WHERE id = :k", k=key_id
    )
    assert row == "(,)"


async def test_the_longest_roll_is_seven_days(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    key_id = await key_of(gateway, merchant)
    r = await client.post(f"/v1/api-keys/{key_id}/roll", json={"expires_in": 604_800}, headers=merchant.auth)
    assert r.status_code == 200, r.text
    days = await gateway.scalar("SELECT expires_at - created_at FROM api_keys WHERE id = :k", k=key_id)
    assert timedelta(days=7) <= days < timedelta(days=7, minutes=5)
    assert await works(client, merchant.key) == 200


# --- revoke --------------------------------------------------------------------------------------


async def test_revoke_is_heard_and_the_key_refused(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    other = await admin_key(client, merchant.id)
    assert await works(client, other["secret"]) == 200
    async with listening(gateway) as heard:
        r = await client.post(f"/v1/api-keys/{other['id']}/revoke", headers=merchant.auth)
        assert r.status_code == 200, r.text
        assert await heard.until(f"key:{other['id']}") == [f"key:{other['id']}"]
    revoked = r.json()
    assert sorted(revoked) == LISTED_FIELDS
    assert (revoked["id"], revoked["status"]) == (other["id"], "revoked")
    when = datetime.fromisoformat(revoked["revoked_at"])
    assert abs(when.timestamp() - time.time()) < 5
    assert await revoked_at(gateway, other["id"]) == int(when.timestamp())
    assert_problem(await client.get("/v1/payments", headers=bearer(other["secret"])), 401, "invalid_api_key")
    assert await works(client, merchant.key) == 200

    # Again: the same answer, announced again (a retry after an outage completes the announcement).
    async with listening(gateway) as heard:
        again = await client.post(f"/v1/api-keys/{other['id']}/revoke", headers=merchant.auth)
        assert (again.status_code, again.json()) == (200, revoked)
        await heard.until(f"key:{other['id']}")
    # A revoked key cannot be rolled.
    rolled = await client.post(
        f"/v1/api-keys/{other['id']}/roll", json={"expires_in": 0}, headers=merchant.auth
    )
    assert_problem(rolled, 409, "api_key_not_rollable")


async def test_a_revocation_drops_the_entries_no_token_can_outlive(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    """gateway:revoked-keys keeps the last hour (a token lives 15 minutes) and the rolls to come."""
    redis, now = gateway.ctx.redis, int(time.time())
    stale, recent, coming = (new_id("key") for _ in range(3))
    await redis.zadd("gateway:revoked-keys", {stale: now - 3601, recent: now - 3500, coming: now + 86400})
    other = await admin_key(client, merchant.id)
    r = await client.post(f"/v1/api-keys/{other['id']}/revoke", headers=merchant.auth)
    assert r.status_code == 200, r.text
    assert await revoked_at(gateway, stale) is None
    assert await revoked_at(gateway, recent) == now - 3500
    assert await revoked_at(gateway, coming) == now + 86400
    when = datetime.fromisoformat(r.json()["revoked_at"])
    assert await revoked_at(gateway, other["id"]) == int(when.timestamp())


async def test_revoking_the_calling_key_takes_effect_at_once(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    key_id = await key_of(gateway, merchant)
    r = await client.post(f"/v1/api-keys/{key_id}/revoke", headers=merchant.auth)
    assert (r.status_code, r.json()["status"]) == (200, "revoked")
    assert_problem(await client.get("/v1/api-keys", headers=merchant.auth), 401, "invalid_api_key")


# --- reach ---------------------------------------------------------------------------------------


async def test_another_merchants_or_modes_key_is_404_and_untouched(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, other_merchant: Merchant
) -> None:
    theirs = await key_of(gateway, other_merchant)
    my_live = (await admin_key(client, merchant.id, mode="live"))["id"]
    for key_id in (theirs, my_live, new_id("key"), "key_nope"):
        for r in (
            await client.post(f"/v1/api-keys/{key_id}/roll", json={"expires_in": 0}, headers=merchant.auth),
            await client.post(f"/v1/api-keys/{key_id}/revoke", headers=merchant.auth),
        ):
            assert assert_problem(r, 404, "resource_missing")["param"] == "id"
        assert await revoked_at(gateway, key_id) is None
    row = "SELECT row(revoked_at, expires_at, rolled_to)::text FROM api_keys WHERE id = :k"
    assert await gateway.scalar(row, k=theirs) == "(,,)"
    assert await gateway.scalar(row, k=my_live) == "(,,)"
    assert await works(client, other_merchant.key) == 200


@pytest.mark.parametrize("key_type", ["restricted", "publishable"])
async def test_only_a_secret_key_manages_keys(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant, key_type: str
) -> None:
    scopes = (
        {"scopes": ["payments:read", "payments:write", "refunds:write"]} if key_type == "restricted" else {}
    )
    key = await admin_key(client, merchant.id, type=key_type, **scopes)
    my_key = await key_of(gateway, merchant)
    for r in (
        await client.get("/v1/api-keys", headers=bearer(key["secret"])),
        await client.post("/v1/api-keys", json={"type": "secret"}, headers=bearer(key["secret"])),
        await client.post(f"/v1/api-keys/{my_key}/revoke", headers=bearer(key["secret"])),
        await client.post(
            f"/v1/api-keys/{my_key}/roll", json={"expires_in": 0}, headers=bearer(key["secret"])
        ),
    ):
        assert_problem(r, 403, "insufficient_scope")
    assert await key_rows(gateway, merchant.id) == 2
    assert await works(client, merchant.key) == 200


async def test_a_replayed_roll_answers_the_same_new_key_without_its_secret(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    key_id = await key_of(gateway, merchant)
    headers = {**merchant.auth, "Idempotency-Key": str(uuid.uuid4())}
    first = await client.post(f"/v1/api-keys/{key_id}/roll", json={"expires_in": 60}, headers=headers)
    assert first.status_code == 200, first.text
    again = await client.post(f"/v1/api-keys/{key_id}/roll", json={"expires_in": 60}, headers=headers)
    assert (again.status_code, again.headers["idempotent-replayed"]) == (200, "true")
    assert again.json() == first.json() | {"secret": None}
    assert await key_rows(gateway, merchant.id) == 2
