"""The operator's admin API (/v1/admin) against the session gateway (GATEWAY_ADMIN_TOKEN set) and a
second app without the token: off is a plain 404, a wrong token 401, bad input 422 writing nothing."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from gateway.kit.ids import new_id
from gateway.main import create_app
from gateway.merchants.scopes import SCOPES
from gateway.settings import Settings
from management.invalidations import listening
from support import ADMIN_TOKEN, Gateway, Merchant, assert_problem, configured_app

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
MERCHANT_FIELDS = ["created", "id", "name", "object", "rate_limit", "status", "updated_at"]
KEY_FIELDS = [
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
    "secret",
    "status",
    "type",
]


async def create(client: httpx.AsyncClient, name: str, **extra: Any) -> dict[str, Any]:
    r = await client.post("/v1/admin/merchants", json={"name": name, **extra}, headers=ADMIN)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def count(gateway: Gateway, table: str) -> int:
    n: int = await gateway.scalar(f"SELECT count(*) FROM {table}")
    return n


# --- off, and who may call -------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "", "   "], ids=["unset", "empty", "blank"])
async def test_without_a_token_the_admin_api_does_not_exist(gateway: Gateway, token: str | None) -> None:
    settings = gateway.ctx.settings.model_copy(
        update={"admin_token": None if token is None else SecretStr(token)}
    )
    merchants = await count(gateway, "merchants")
    async with configured_app(settings) as c:
        unknown = await c.get("/v1/no-such-route")
        answers = [
            await c.get("/v1/admin/merchants", headers=ADMIN),
            await c.post("/v1/admin/merchants", json={"name": "Ghost"}, headers=ADMIN),
            await c.put("/v1/admin/merchants", json={"name": "Ghost"}),  # not a 405
            await c.patch(f"/v1/admin/merchants/{new_id('mer')}", content=b"x", headers={"X": "y"}),
            await c.post(f"/v1/admin/merchants/{new_id('mer')}/api-keys", json={}, headers=ADMIN),
            await c.get("/v1/admin"),
        ]
    for r in answers:
        problem = assert_problem(r, 404, "not_found")
        assert problem["detail"] == unknown.json()["detail"]
        assert "www-authenticate" not in r.headers
    assert await count(gateway, "merchants") == merchants


def test_the_document_shows_the_admin_api_only_where_it_exists() -> None:
    off = create_app(Settings()).openapi()
    assert not [p for p in off["paths"] if p.startswith("/v1/admin")]
    on = create_app(Settings(admin_token=SecretStr("t" * 32))).openapi()
    admin = {p: ops for p, ops in on["paths"].items() if p.startswith("/v1/admin")}
    assert sorted((p, m) for p, ops in admin.items() for m in ops) == [
        ("/v1/admin/merchants", "get"),
        ("/v1/admin/merchants", "post"),
        ("/v1/admin/merchants/{merchant_id}", "get"),
        ("/v1/admin/merchants/{merchant_id}", "patch"),
        ("/v1/admin/merchants/{merchant_id}/api-keys", "post"),
        ("/v1/admin/merchants/{merchant_id}/payout-limits", "get"),
        ("/v1/admin/merchants/{merchant_id}/payout-limits", "put"),
    ]
    for ops in admin.values():
        for op in ops.values():
            assert op["security"] == [{"AdminToken": []}]
            assert "401" in op["responses"]
    assert on["components"]["securitySchemes"]["AdminToken"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "The operator's token: GATEWAY_ADMIN_TOKEN",
    }
    cursor = next(
        p for p in on["paths"]["/v1/admin/merchants"]["get"]["parameters"] if p["name"] == "starting_after"
    )
    assert cursor["schema"]["pattern"] == "^mer_[0-9a-hjkmnp-tv-z]{26}$"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": f"Bearer {ADMIN_TOKEN}x"},
        {"Authorization": f"Bearer {ADMIN_TOKEN[:-1]}"},
        {"Authorization": f"Basic {ADMIN_TOKEN}"},
        {"Authorization": "Bearer"},
        {"Authorization": f"Bearer {ADMIN_TOKEN.upper()}"},
    ],
    ids=["missing", "longer", "shorter", "not-bearer", "no-token", "other-case"],
)
async def test_a_wrong_or_missing_token_is_401_and_writes_nothing(
    client: httpx.AsyncClient, gateway: Gateway, headers: dict[str, str]
) -> None:
    merchants = await count(gateway, "merchants")
    for r in (
        await client.post("/v1/admin/merchants", json={"name": "Intruder"}, headers=headers),
        await client.get("/v1/admin/merchants", headers=headers),
    ):
        assert_problem(r, 401, "invalid_admin_token")
        assert r.headers["www-authenticate"] == 'Bearer realm="gateway-admin"'
    assert await count(gateway, "merchants") == merchants


async def test_a_merchant_key_is_not_an_admin_token(
    client: httpx.AsyncClient, gateway: Gateway, merchant: Merchant
) -> None:
    keys = await count(gateway, "api_keys")
    r = await client.post(
        f"/v1/admin/merchants/{merchant.id}/api-keys", json={"type": "secret"}, headers=merchant.auth
    )
    assert_problem(r, 401, "invalid_admin_token")
    assert await count(gateway, "api_keys") == keys


# --- merchants -----------------------------------------------------------------------------------


async def test_create_and_retrieve_a_merchant(client: httpx.AsyncClient, gateway: Gateway) -> None:
    made = await create(client, "  Duka la Mama  ")
    assert sorted(made) == MERCHANT_FIELDS
    assert made["id"].startswith("mer_")
    assert (made["object"], made["name"], made["status"], made["rate_limit"]) == (
        "merchant",
        "Duka la Mama",
        "active",
        None,
    )
    datetime.fromisoformat(made["created"])
    got = await client.get(f"/v1/admin/merchants/{made['id']}", headers=ADMIN)
    assert (got.status_code, got.json()) == (200, made)
    row = await gateway.scalar(
        "SELECT row(name, status, rate_limit)::text FROM merchants WHERE id = :m", m=made["id"]
    )
    assert row == '("Duka la Mama",active,)'
    limited = await create(client, "Busy shop", rate_limit=250)
    assert limited["rate_limit"] == 250


async def test_an_unknown_merchant_is_404(client: httpx.AsyncClient) -> None:
    missing = new_id("mer")
    for r in (
        await client.get(f"/v1/admin/merchants/{missing}", headers=ADMIN),
        await client.patch(f"/v1/admin/merchants/{missing}", json={"name": "X"}, headers=ADMIN),
        await client.post(f"/v1/admin/merchants/{missing}/api-keys", json={}, headers=ADMIN),
    ):
        assert assert_problem(r, 404, "resource_missing")["param"] == "id"


async def test_list_merchants_in_pages_newest_first(client: httpx.AsyncClient) -> None:
    a, b, c = [await create(client, f"Page shop {n}") for n in range(3)]
    first = await client.get("/v1/admin/merchants", params={"limit": 2}, headers=ADMIN)
    assert first.status_code == 200
    assert (first.json()["object"], first.json()["has_more"]) == ("list", True)
    assert [m["id"] for m in first.json()["data"]] == [c["id"], b["id"]]
    assert first.json()["data"][0] == c
    older = await client.get(
        "/v1/admin/merchants", params={"limit": 1, "starting_after": b["id"]}, headers=ADMIN
    )
    assert [m["id"] for m in older.json()["data"]] == [a["id"]]
    newer = await client.get(
        "/v1/admin/merchants", params={"limit": 2, "ending_before": a["id"]}, headers=ADMIN
    )
    assert ([m["id"] for m in newer.json()["data"]], newer.json()["has_more"]) == ([c["id"], b["id"]], False)
    for params in ({"starting_after": new_id("mer")}, {"starting_after": new_id("pay")}, {"limit": 101}):
        r = await client.get("/v1/admin/merchants", params=params, headers=ADMIN)
        assert r.status_code == 422, (params, r.text)


async def test_disable_enable_rename_and_limit_a_merchant(
    client: httpx.AsyncClient, gateway: Gateway
) -> None:
    m = await create(client, "Changing shop")
    url = f"/v1/admin/merchants/{m['id']}"
    async with listening(gateway) as heard:
        r = await client.patch(url, json={"status": "disabled", "rate_limit": 40}, headers=ADMIN)
        assert r.status_code == 200, r.text
        assert (r.json()["status"], r.json()["rate_limit"], r.json()["name"]) == (
            "disabled",
            40,
            "Changing shop",
        )
        assert r.json()["updated_at"] > m["updated_at"]
        assert await heard.until(f"merchant:{m['id']}") == [f"merchant:{m['id']}"]
        row = "SELECT row(name, status, rate_limit)::text FROM merchants WHERE id = :m"
        assert await gateway.scalar(row, m=m["id"]) == '("Changing shop",disabled,40)'
        listed = await client.get("/v1/admin/merchants", params={"status": "disabled"}, headers=ADMIN)
        assert m["id"] in [x["id"] for x in listed.json()["data"]]
        assert {x["status"] for x in listed.json()["data"]} == {"disabled"}

        # A rename alone changes nothing other processes cache: nothing is announced.
        r = await client.patch(url, json={"name": "Renamed shop"}, headers=ADMIN)
        assert (r.json()["name"], r.json()["status"], r.json()["rate_limit"]) == (
            "Renamed shop",
            "disabled",
            40,
        )
        assert await heard.quiet() == [f"merchant:{m['id']}"]

        r = await client.patch(url, json={"status": "active", "rate_limit": None}, headers=ADMIN)
        assert (r.json()["status"], r.json()["rate_limit"]) == ("active", None)
        assert await heard.until(f"merchant:{m['id']}", times=2) == [f"merchant:{m['id']}"] * 2
    assert await gateway.scalar(row, m=m["id"]) == '("Renamed shop",active,)'


@pytest.mark.parametrize(
    "body",
    [
        {"status": "paused"},
        {"status": None, "name": ""},
        {"rate_limit": 0},
        {"rate_limit": "10"},
        {"rate_limit": 100_001},
        {"name": "x" * 201},
        {"owner": "someone"},
    ],
    ids=["status", "empty-name", "limit-0", "limit-string", "limit-high", "long-name", "unknown-field"],
)
async def test_a_bad_update_is_422_and_changes_nothing(
    client: httpx.AsyncClient, gateway: Gateway, body: dict[str, Any]
) -> None:
    m = await create(client, "Steady shop")
    r = await client.patch(f"/v1/admin/merchants/{m['id']}", json=body, headers=ADMIN)
    assert_problem(r, 422, "validation_error")
    got = await client.get(f"/v1/admin/merchants/{m['id']}", headers=ADMIN)
    assert got.json() == m


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": "   "},
        {"name": "x" * 201},
        {"name": "A", "rate_limit": -1},
        {"name": "A", "id": "mer_x"},
    ],
    ids=["no-name", "empty", "blank", "long", "negative-limit", "id-given"],
)
async def test_a_bad_merchant_is_422_and_writes_nothing(
    client: httpx.AsyncClient, gateway: Gateway, body: dict[str, Any]
) -> None:
    merchants = await count(gateway, "merchants")
    r = await client.post("/v1/admin/merchants", json=body, headers=ADMIN)
    assert_problem(r, 422, "validation_error")
    assert await count(gateway, "merchants") == merchants


# --- keys ----------------------------------------------------------------------------------------


async def test_create_a_key_of_each_type(client: httpx.AsyncClient, gateway: Gateway) -> None:
    m = await create(client, "Keyed shop")
    url = f"/v1/admin/merchants/{m['id']}/api-keys"
    secret = (await client.post(url, json={"mode": "test", "type": "secret"}, headers=ADMIN)).json()
    public = (await client.post(url, json={"mode": "live", "type": "publishable"}, headers=ADMIN)).json()
    r = await client.post(
        url,
        json={"type": "restricted", "scopes": ["events:read", "payments:read", "events:read"]},
        headers=ADMIN,
    )
    assert r.status_code == 201, r.text
    restricted = r.json()
    for key, prefix, mode in (
        (secret, "sk_test_", "test"),
        (public, "pk_live_", "live"),
        (restricted, "rk_test_", "test"),
    ):
        assert sorted(key) == KEY_FIELDS
        assert key["id"].startswith("key_")
        assert key["secret"].startswith(prefix)
        assert len(key["secret"]) == len(prefix) + 32
        assert (key["object"], key["merchant"], key["mode"], key["livemode"]) == (
            "api_key",
            m["id"],
            mode,
            mode == "live",
        )
        assert (key["prefix"], key["last4"]) == (key["secret"][:12], key["secret"][-4:])
        assert (key["status"], key["expires_at"], key["revoked_at"], key["rolled_to"]) == (
            "active",
            None,
            None,
            None,
        )
        stored = await gateway.scalar("SELECT key_hash FROM api_keys WHERE id = :k", k=key["id"])
        assert stored == hashlib.sha256(key["secret"].encode()).hexdigest()
    assert (secret["type"], secret["scopes"]) == ("secret", None)
    assert (public["type"], public["scopes"]) == ("publishable", None)
    # Each scope once, in the documented order.
    assert (restricted["type"], restricted["scopes"]) == ("restricted", ["payments:read", "events:read"])
    scopes = await gateway.scalar("SELECT scopes::text FROM api_keys WHERE id = :k", k=restricted["id"])
    assert scopes == "{payments:read,events:read}"
    # The new secret key is the merchant's.
    got = await client.get("/v1/payments", headers={"Authorization": f"Bearer {secret['secret']}"})
    assert (got.status_code, got.json()["data"]) == (200, [])


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"type": "secret", "scopes": ["payments:read"]}, "invalid_scopes"),
        ({"type": "publishable", "scopes": ["payments:read"]}, "invalid_scopes"),
        ({"type": "restricted"}, "invalid_scopes"),
        ({"type": "restricted", "scopes": []}, "invalid_scopes"),
        ({"type": "restricted", "scopes": ["payments:read", "keys:write"]}, "invalid_scopes"),
        ({"type": "admin"}, "validation_error"),
        ({"mode": "production"}, "validation_error"),
        ({"type": "restricted", "scopes": ["payments:read"] * (len(SCOPES) + 1)}, "validation_error"),
        ({"type": "secret", "livemode": True}, "validation_error"),
    ],
    ids=[
        "scopes-on-secret",
        "scopes-on-publishable",
        "restricted-without",
        "restricted-empty",
        "unknown-scope",
        "unknown-type",
        "unknown-mode",
        "too-many",
        "unknown-field",
    ],
)
async def test_a_bad_key_is_422_and_writes_nothing(
    client: httpx.AsyncClient, gateway: Gateway, body: dict[str, Any], code: str
) -> None:
    m = await create(client, "Careful shop")
    r = await client.post(f"/v1/admin/merchants/{m['id']}/api-keys", json=body, headers=ADMIN)
    problem = assert_problem(r, 422, code)
    if code == "invalid_scopes":
        assert problem["param"] == "scopes"
    assert await gateway.scalar("SELECT count(*) FROM api_keys WHERE merchant_id = :m", m=m["id"]) == 0
