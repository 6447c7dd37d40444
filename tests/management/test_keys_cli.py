"""`gateway merchants create/list` and `gateway keys create/roll/revoke`, run as a person runs them
(subprocesses, tests/commands.py) against the test servers; revoking from the CLI is heard by every
gateway process like the API's."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from commands import NO_DEV, clean_env, gateway_cli
from gateway.commands.common import NO_REDIS
from gateway.embedded import EmbeddedServers
from gateway.merchants.service import create_merchant
from management.invalidations import listening, revoked_at
from support import Gateway, Merchant, assert_problem


def servers_env(servers: EmbeddedServers, *, redis: bool = True) -> dict[str, str]:
    env = {"GATEWAY_DATABASE_URL": servers.postgres.url}
    if redis:
        env["GATEWAY_REDIS_URL"] = servers.redis.url
    return clean_env(**env)


async def test_merchants_list_shows_every_merchant_newest_first(
    gateway: Gateway, servers: EmbeddedServers, tmp_path: Path
) -> None:
    older = await create_merchant(gateway.ctx.db, "CLI list shop 1")
    newer = await create_merchant(gateway.ctx.db, "CLI list shop 2")
    await gateway.execute(
        "UPDATE merchants SET status = 'disabled', rate_limit = 7 WHERE id = :m", m=newer.merchant_id
    )
    r = await gateway_cli(tmp_path, servers_env(servers, redis=False), "merchants", "list", "--json")
    assert r.returncode == 0, r.stderr
    listed = json.loads(r.stdout)
    total = await gateway.scalar("SELECT count(*) FROM merchants")
    assert len(listed) == total  # every page of them
    ids = [m["id"] for m in listed]
    assert ids == sorted(ids, reverse=True)
    assert ids[:2] == [newer.merchant_id, older.merchant_id]
    assert {k: listed[0][k] for k in ("name", "status", "rate_limit")} == {
        "name": "CLI list shop 2",
        "status": "disabled",
        "rate_limit": 7,
    }
    text = await gateway_cli(tmp_path, servers_env(servers, redis=False), "merchants", "list")
    assert text.returncode == 0, text.stderr
    first = text.stdout.splitlines()[0].split()
    assert (first[0], first[1], first[2], first[-1]) == (newer.merchant_id, "disabled", "7/s", "2")
    assert text.stdout.splitlines()[1].split()[2] == "default"


async def test_keys_create_prints_the_key_once_and_it_works(
    gateway: Gateway, servers: EmbeddedServers, merchant: Merchant, tmp_path: Path
) -> None:
    r = await gateway_cli(
        tmp_path,
        servers_env(servers, redis=False),
        "keys", "create", merchant.id, "--type", "restricted",
        "--scope", "events:read", "--scope", "payments:read", "--json",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    made = json.loads(r.stdout)
    assert sorted(made) == ["expires_at", "id", "livemode", "merchant", "scopes", "secret", "type"]
    assert made["secret"].startswith("rk_test_")
    assert (made["merchant"], made["type"], made["scopes"], made["livemode"]) == (
        merchant.id,
        "restricted",
        ["payments:read", "events:read"],
        False,
    )
    row = "SELECT row(type, livemode, prefix, last4)::text FROM api_keys WHERE id = :k"
    assert (
        await gateway.scalar(row, k=made["id"])
        == f"(restricted,f,{made['secret'][:12]},{made['secret'][-4:]})"
    )

    text = await gateway_cli(tmp_path, servers_env(servers), "keys", "create", merchant.id, "--live")
    assert text.returncode == 0, text.stderr
    first, second = text.stdout.splitlines()
    secret = second.removeprefix("secret (shown once): ")
    assert first.startswith("key: key_")
    assert secret.startswith("sk_live_")
    async with httpx.AsyncClient(base_url=gateway.base_url, timeout=30) as c:
        got = await c.get("/v1/payments", headers={"Authorization": f"Bearer {secret}"})
    assert (got.status_code, got.json()["data"]) == (200, [])


async def test_keys_create_refuses_what_the_api_refuses(
    gateway: Gateway, servers: EmbeddedServers, merchant: Merchant, tmp_path: Path
) -> None:
    env = servers_env(servers, redis=False)
    for args, out in (
        (["--scope", "payments:read"], "invalid_scopes: A secret key takes no scopes"),
        (["--type", "restricted", "--scope", "all"], "invalid_scopes: Unknown scopes: all."),
        (["--type", "root"], "validation_error: type must be one of secret, publishable, restricted."),
    ):
        r = await gateway_cli(tmp_path, env, "keys", "create", merchant.id, *args)
        assert r.returncode == 1, r.stdout
        assert r.stderr.startswith(out), r.stderr
        assert r.stdout == ""
    r = await gateway_cli(tmp_path, env, "keys", "create", "mer_nobody")
    assert (r.returncode, r.stderr) == (1, "resource_missing: No such merchant: 'mer_nobody'\n")
    assert await gateway.scalar("SELECT count(*) FROM api_keys WHERE merchant_id = :m", m=merchant.id) == 1


async def test_keys_roll_and_revoke(
    gateway: Gateway, servers: EmbeddedServers, merchant: Merchant, tmp_path: Path
) -> None:
    env = servers_env(servers)
    old_id = await gateway.scalar("SELECT id FROM api_keys WHERE merchant_id = :m", m=merchant.id)
    async with listening(gateway) as heard:
        r = await gateway_cli(tmp_path, env, "keys", "roll", old_id, "--expires-in", "3600", "--json")
        assert r.returncode == 0, r.stderr
        await heard.until(f"key:{old_id}")
    rolled = json.loads(r.stdout)
    new_secret = rolled["secret"]
    assert new_secret.startswith("sk_test_")
    assert (rolled["rolled_from"]["id"], rolled["type"]) == (old_id, "secret")
    overlap = await gateway.scalar(
        "SELECT expires_at - now() FROM api_keys WHERE id = :k AND rolled_to = :n", k=old_id, n=rolled["id"]
    )
    assert 3590 < overlap.total_seconds() <= 3600
    async with httpx.AsyncClient(base_url=gateway.base_url, timeout=30) as c:
        assert (
            await c.get("/v1/payments", headers={"Authorization": f"Bearer {new_secret}"})
        ).status_code == 200

        async with listening(gateway) as heard:
            r = await gateway_cli(tmp_path, env, "keys", "revoke", rolled["id"])
            assert r.returncode == 0, r.stderr
            assert await heard.until(f"key:{rolled['id']}") == [f"key:{rolled['id']}"]
        assert r.stdout.startswith(f"revoked {rolled['id']} at ")
        assert await revoked_at(gateway, rolled["id"]) is not None
        refused = await c.get("/v1/payments", headers={"Authorization": f"Bearer {new_secret}"})
        assert_problem(refused, 401, "invalid_api_key")

    again = await gateway_cli(tmp_path, env, "keys", "roll", old_id)
    assert again.returncode == 1
    assert again.stderr == f"api_key_not_rollable: The API key {old_id} was rolled to {rolled['id']}.\n"


async def test_roll_and_revoke_need_redis_and_change_nothing_without_it(
    gateway: Gateway, servers: EmbeddedServers, merchant: Merchant, tmp_path: Path
) -> None:
    key_id = await gateway.scalar("SELECT id FROM api_keys WHERE merchant_id = :m", m=merchant.id)
    for args in (["keys", "revoke", key_id], ["keys", "roll", key_id]):
        r = await gateway_cli(tmp_path, servers_env(servers, redis=False), *args)
        assert (r.returncode, r.stderr.strip()) == (2, NO_REDIS)
    r = await gateway_cli(tmp_path, clean_env(), "keys", "revoke", key_id)
    assert (r.returncode, r.stderr.strip()) == (2, NO_DEV)
    row = "SELECT row(revoked_at, expires_at, rolled_to)::text FROM api_keys WHERE id = :k"
    assert await gateway.scalar(row, k=key_id) == "(,,)"
    unknown = await gateway_cli(tmp_path, servers_env(servers), "keys", "revoke", "key_nope")
    assert (unknown.returncode, unknown.stderr) == (1, "resource_missing: No such API key: 'key_nope'\n")
