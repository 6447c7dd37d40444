"""API keys of every type on the real server: which are accepted where, and what each refusal says."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from auth.credentials import PAYMENT, Key, add_key, new_merchant, revoke
from support import Gateway, assert_problem

PUBLISHABLE_DETAIL = (
    "A publishable key may only confirm and read a payment with its client secret (in a browser); "
    "call this with a secret key or a restricted key with the `{scope}` scope."
)


def idem() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


@pytest.mark.parametrize("livemode", [False, True], ids=["test", "live"])
async def test_secret_and_restricted_keys_of_both_modes_are_accepted(
    gateway: Gateway, client: httpx.AsyncClient, livemode: bool
) -> None:
    merchant = await new_merchant(gateway)
    secret = await add_key(gateway, merchant, "secret", livemode=livemode)
    restricted = await add_key(gateway, merchant, "restricted", livemode=livemode, scopes=["payments:read"])
    mode = "live" if livemode else "test"
    assert secret.secret.startswith(f"sk_{mode}_")
    assert restricted.secret.startswith(f"rk_{mode}_")
    for key in (secret, restricted):
        r = await client.get("/v1/payments", headers=key.auth)
        assert r.status_code == 200, r.text
        assert r.json() == {"object": "list", "data": [], "has_more": False}


async def test_a_key_whose_prefix_lies_about_its_type_or_mode_is_unknown(
    gateway: Gateway, client: httpx.AsyncClient
) -> None:
    merchant = await new_merchant(gateway)
    secret = await add_key(gateway, merchant, "secret")
    body = secret.secret.split("_", 2)[2]
    for forged in (f"rk_test_{body}", f"pk_test_{body}", f"sk_live_{body}"):
        r = await client.get("/v1/payments", headers={"Authorization": f"Bearer {forged}"})
        assert_problem(r, 401, "invalid_api_key")
    # A row stored as restricted but presented as secret (its hash matches, its prefix does not).
    row = await add_key(gateway, merchant, "restricted", scopes=["payments:read"])
    await gateway.execute("UPDATE api_keys SET type = 'secret' WHERE id = :id", id=row.id)
    assert_problem(await client.get("/v1/payments", headers=row.auth), 401, "invalid_api_key")


async def test_revoked_and_expired_keys_are_refused(gateway: Gateway, client: httpx.AsyncClient) -> None:
    merchant = await new_merchant(gateway)
    revoked = await add_key(gateway, merchant)
    expired = await add_key(gateway, merchant, expires_at=datetime.now(UTC) - timedelta(seconds=1))
    later = await add_key(gateway, merchant, expires_at=datetime.now(UTC) + timedelta(hours=1))
    await revoke(gateway, revoked)
    assert_problem(await client.get("/v1/payments", headers=revoked.auth), 401, "invalid_api_key")
    problem = assert_problem(await client.get("/v1/payments", headers=expired.auth), 401, "invalid_api_key")
    assert problem["detail"] == "This API key has expired (it was rolled); use the key that replaced it."
    assert (await client.get("/v1/payments", headers=later.auth)).status_code == 200


async def test_a_disabled_merchants_keys_get_403(gateway: Gateway, client: httpx.AsyncClient) -> None:
    merchant = await new_merchant(gateway)
    secret = await add_key(gateway, merchant)
    restricted = await add_key(gateway, merchant, "restricted", scopes=["payments:write"])
    await gateway.execute("UPDATE merchants SET status = 'disabled' WHERE id = :id", id=merchant)
    for key in (secret, restricted):
        problem = assert_problem(await client.get("/v1/payments", headers=key.auth), 403, "merchant_disabled")
        assert problem["detail"] == "This merchant is disabled; its keys and tokens are refused."
    r = await client.post("/v1/payments", json=PAYMENT, headers=secret.auth | idem())
    assert_problem(r, 403, "merchant_disabled")
    assert await gateway.scalar("SELECT count(*) FROM payments WHERE merchant_id = :m", m=merchant) == 0


# Each scope's representative routes: (method, path, body or None, what a permitted call answers).
Route = tuple[str, str, dict[str, object] | None, int]
ROUTES: dict[str, list[Route]] = {
    "payments:read": [("GET", "/v1/payments", None, 200), ("GET", "/v1/providers", None, 200)],
    "payments:write": [("POST", "/v1/payments", PAYMENT, 201)],
    "refunds:write": [("POST", "/v1/payments/pay_01jx0000000000000000000000/refunds", {}, 404)],
    "events:read": [("GET", "/v1/events", None, 200)],
    "webhooks:write": [("GET", "/v1/webhook-endpoints", None, 200)],
}


async def call(client: httpx.AsyncClient, key: Key, method: str, path: str, body: object) -> httpx.Response:
    headers = key.auth | (idem() if method == "POST" else {})
    return await client.request(method, path, json=body, headers=headers)


@pytest.mark.parametrize("scope", list(ROUTES))
async def test_a_restricted_key_does_what_its_scopes_allow_and_nothing_else(
    gateway: Gateway, client: httpx.AsyncClient, scope: str
) -> None:
    merchant = await new_merchant(gateway)
    inside = await add_key(gateway, merchant, "restricted", scopes=[scope])
    others = [s for s in ROUTES if s != scope]
    outside = await add_key(gateway, merchant, "restricted", scopes=others)
    for method, path, body, status in ROUTES[scope]:
        r = await call(client, inside, method, path, body)
        assert r.status_code == status, (path, r.text)
        r = await call(client, outside, method, path, body)
        problem = assert_problem(r, 403, "insufficient_scope")
        assert problem["detail"] == f"This key may not do this: it needs the `{scope}` scope."
        assert problem["required_scope"] == scope
        assert problem["title"] == "The key may not do this"
    # The other scopes' routes refuse the key that holds only this one.
    for other in others:
        method, path, body, _ = ROUTES[other][0]
        problem = assert_problem(await call(client, inside, method, path, body), 403, "insufficient_scope")
        assert problem["required_scope"] == other
    assert await gateway.scalar("SELECT count(*) FROM payments WHERE merchant_id = :m", m=merchant) == (
        1 if scope == "payments:write" else 0
    )


async def test_the_live_stream_needs_events_read(gateway: Gateway, client: httpx.AsyncClient) -> None:
    merchant = await new_merchant(gateway)
    key = await add_key(gateway, merchant, "restricted", scopes=["payments:read"])
    r = await client.get("/v1/events/stream", headers=key.auth)
    assert assert_problem(r, 403, "insufficient_scope")["required_scope"] == "events:read"


async def test_a_restricted_key_without_scopes_may_do_nothing(
    gateway: Gateway, client: httpx.AsyncClient
) -> None:
    merchant = await new_merchant(gateway)
    key = await add_key(gateway, merchant, "restricted", scopes=[])
    for methods in ROUTES.values():
        method, path, body, _ = methods[0]
        assert_problem(await call(client, key, method, path, body), 403, "insufficient_scope")


@pytest.mark.parametrize("scope", list(ROUTES))
async def test_a_publishable_key_is_refused_on_every_route_of_a_secret_key(
    gateway: Gateway, client: httpx.AsyncClient, scope: str
) -> None:
    merchant = await new_merchant(gateway)
    key = await add_key(gateway, merchant, "publishable")
    assert key.secret.startswith("pk_test_")
    for method, path, body, _ in ROUTES[scope]:
        problem = assert_problem(await call(client, key, method, path, body), 403, "insufficient_scope")
        assert problem["detail"] == PUBLISHABLE_DETAIL.format(scope=scope)
        assert problem["required_scope"] == scope
    assert await gateway.scalar("SELECT count(*) FROM payments WHERE merchant_id = :m", m=merchant) == 0


async def test_a_refused_caller_neither_hears_nor_spoils_a_permitted_callers_idempotent_answer(
    gateway: Gateway, client: httpx.AsyncClient
) -> None:
    """The idempotency guard claims keys before the route runs: it must not replay a stored answer
    to a key the route refuses, nor store that key's 403 as the answer for the permitted caller."""
    merchant = await new_merchant(gateway)
    secret = await add_key(gateway, merchant)
    reader = await add_key(gateway, merchant, "restricted", scopes=["payments:read"])
    publishable = await add_key(gateway, merchant, "publishable")
    writer = await add_key(gateway, merchant, "restricted", scopes=["payments:write"])

    # A permitted caller's stored answer is not replayed to callers the route refuses.
    first = {"Idempotency-Key": str(uuid.uuid4())}
    created = await client.post("/v1/payments", json=PAYMENT, headers=secret.auth | first)
    assert created.status_code == 201
    for refused in (reader, publishable):
        r = await client.post("/v1/payments", json=PAYMENT, headers=refused.auth | first)
        assert_problem(r, 403, "insufficient_scope")
        assert "idempotent-replayed" not in r.headers
        assert created.json()["id"] not in r.text
        # Not even that the key was used with another body (idempotency_key_reused).
        r = await client.post("/v1/payments", json=PAYMENT | {"amount": 901}, headers=refused.auth | first)
        assert_problem(r, 403, "insufficient_scope")

    # A refused caller's 403 is not stored as the key's answer, nor does it hold the key.
    second = {"Idempotency-Key": str(uuid.uuid4())}
    assert_problem(
        await client.post("/v1/payments", json=PAYMENT, headers=reader.auth | second),
        403,
        "insufficient_scope",
    )
    made = await client.post("/v1/payments", json=PAYMENT, headers=secret.auth | second)
    assert made.status_code == 201, made.text
    again = await client.post("/v1/payments", json=PAYMENT, headers=secret.auth | second)
    assert (again.status_code, again.headers["idempotent-replayed"]) == (201, "true")
    assert again.json()["id"] == made.json()["id"]

    # A restricted key inside its scope gets the whole idempotency contract.
    third = {"Idempotency-Key": str(uuid.uuid4())}
    one = await client.post("/v1/payments", json=PAYMENT, headers=writer.auth | third)
    two = await client.post("/v1/payments", json=PAYMENT, headers=writer.auth | third)
    assert (one.status_code, two.status_code, two.headers.get("idempotent-replayed")) == (201, 201, "true")
    assert one.json()["id"] == two.json()["id"]
    assert await gateway.scalar("SELECT count(*) FROM payments WHERE merchant_id = :m", m=merchant) == 3
