"""The `gateway` command, run as `python -m gateway.cli ...` subprocesses against the test servers:
`migrate`, `merchants create`, and the exit-2 paths of a missing or invalid configuration.

`gateway listen` (printing events, resuming after a lost connection) is covered in
tests/streams/test_streams.py; `gateway worker` and `gateway serve` running in
tests/webhooks/test_outbound.py and tests/test_access_log.py.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import pytest

from commands import NO_DEV, clean_env, gateway_cli
from gateway.db.database import Database
from gateway.embedded import EmbeddedServers
from support import Gateway

# --- migrate -----------------------------------------------------------------------------------


async def test_migrate_applies_the_migrations_and_is_idempotent(
    gateway: Gateway, servers: EmbeddedServers, tmp_path: Path
) -> None:
    name = f"cli_{uuid.uuid4().hex[:12]}"
    await gateway.execute(f"CREATE DATABASE {name}")
    try:
        url = servers.postgres.url.rsplit("/", 1)[0] + f"/{name}"
        env = clean_env(GATEWAY_DATABASE_URL=url)
        first = await gateway_cli(tmp_path, env, "migrate")
        assert (first.returncode, first.stdout) == (0, "migrations applied\n"), first.stderr
        head = await gateway.scalar("SELECT version_num FROM alembic_version")  # the session database's
        tables = await tables_and_version(url, gateway)
        assert tables[0] == head
        assert {"payments", "refunds", "events", "webhook_endpoints", "inbound_webhooks"} <= set(tables[1])
        # Up to date: nothing to do, the same answer, the same schema.
        again = await gateway_cli(tmp_path, env, "migrate")
        assert (again.returncode, again.stdout) == (0, "migrations applied\n"), again.stderr
        assert await tables_and_version(url, gateway) == tables
    finally:
        await gateway.execute(f"DROP DATABASE {name} WITH (FORCE)")


async def tables_and_version(url: str, gateway: Gateway) -> tuple[str, list[str]]:
    db = await Database.connect(url, gateway.ctx.settings.database)
    try:
        assert await db.fetchval("SELECT count(*) FROM alembic_version") == 1
        version = await db.fetchval("SELECT version_num FROM alembic_version")
        rows = await db.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1"
        )
        return str(version), [str(r[0]) for r in rows]
    finally:
        await db.close()


async def test_migrate_on_the_up_to_date_session_database(servers: EmbeddedServers, tmp_path: Path) -> None:
    r = await gateway_cli(tmp_path, clean_env(GATEWAY_DATABASE_URL=servers.postgres.url), "migrate")
    assert (r.returncode, r.stdout) == (0, "migrations applied\n"), r.stderr


# --- merchants create --------------------------------------------------------------------------


async def test_merchants_create_live_json_issues_a_live_key_the_api_accepts(
    gateway: Gateway, servers: EmbeddedServers, tmp_path: Path
) -> None:
    env = clean_env(GATEWAY_DATABASE_URL=servers.postgres.url)
    r = await gateway_cli(tmp_path, env, "merchants", "create", "Live Shop", "--live", "--json")
    assert r.returncode == 0, r.stderr
    created = json.loads(r.stdout)
    assert sorted(created) == ["livemode", "merchant_id", "name", "secret_key"]
    assert (created["name"], created["livemode"]) == ("Live Shop", True)
    assert created["secret_key"].startswith("sk_live_")
    assert created["merchant_id"].startswith("mer_")
    assert await gateway.scalar("SELECT name FROM merchants WHERE id = :m", m=created["merchant_id"]) == (
        "Live Shop"
    )
    auth = {"Authorization": f"Bearer {created['secret_key']}", "Idempotency-Key": str(uuid.uuid4())}
    async with httpx.AsyncClient(base_url=gateway.base_url, timeout=30) as c:
        paid = await c.post(
            "/v1/payments", json={"amount": 700, "currency": "KES", "provider": "cash"}, headers=auth
        )
        assert paid.status_code == 201, paid.text
        assert (paid.json()["livemode"], paid.json()["status"]) == (True, "succeeded")
        listed = await c.get("/v1/payments", headers={"Authorization": auth["Authorization"]})
    assert listed.status_code == 200
    assert [p["id"] for p in listed.json()["data"]] == [paid.json()["id"]]


async def test_merchants_create_prints_a_test_key_once(
    gateway: Gateway, servers: EmbeddedServers, tmp_path: Path
) -> None:
    env = clean_env(GATEWAY_DATABASE_URL=servers.postgres.url)
    r = await gateway_cli(tmp_path, env, "merchants", "create", "Test Shop")
    assert r.returncode == 0, r.stderr
    first, second = r.stdout.splitlines()
    merchant_id = first.removeprefix("merchant: ")
    key = second.removeprefix("secret key (shown once): ")
    assert merchant_id.startswith("mer_")
    assert key.startswith("sk_test_")
    async with httpx.AsyncClient(base_url=gateway.base_url, timeout=30) as c:
        got = await c.get("/v1/payments", headers={"Authorization": f"Bearer {key}"})
    assert (got.status_code, got.json()["data"]) == (200, [])


# --- exit 2: a configuration the command cannot run with ------------------------------------------

NO_DATABASE = "Set GATEWAY_DATABASE_URL."
NO_SERVERS = "Set GATEWAY_DATABASE_URL and GATEWAY_REDIS_URL."
NO_SERVERS_SERVE = "Set GATEWAY_DATABASE_URL and GATEWAY_REDIS_URL (or use `gateway dev`)."


@pytest.mark.parametrize(
    ("args", "given", "message"),
    [
        (["migrate"], {}, NO_DATABASE),
        (["merchants", "create", "Nobody"], {}, NO_DEV),
        (["merchants", "create", "Nobody", "--live", "--json"], {"redis": True}, NO_DEV),
        (["worker"], {"redis": True}, NO_SERVERS),
        (["worker"], {"database": True}, NO_SERVERS),
        (["serve"], {"database": True}, NO_SERVERS_SERVE),
        (["serve"], {"redis": True}, NO_SERVERS_SERVE),
    ],
    ids=[
        "migrate-no-db",
        "merchants-no-db",
        "merchants-live-no-db",
        "worker-no-db",
        "worker-no-redis",
        "serve-no-redis",
        "serve-no-db",
    ],
)
async def test_a_missing_server_url_exits_2(
    gateway: Gateway,
    servers: EmbeddedServers,
    tmp_path: Path,
    args: list[str],
    given: dict[str, bool],
    message: str,
) -> None:
    merchants = await gateway.scalar("SELECT count(*) FROM merchants")
    env = clean_env()
    if given.get("database"):
        env["GATEWAY_DATABASE_URL"] = servers.postgres.url
    if given.get("redis"):
        env["GATEWAY_REDIS_URL"] = servers.redis.url
    r = await gateway_cli(tmp_path, env, *args)
    assert (r.returncode, r.stdout) == (2, ""), r.stderr
    assert r.stderr.strip() == message
    if args[0] == "merchants":
        assert await gateway.scalar("SELECT count(*) FROM merchants") == merchants


@pytest.mark.parametrize("args", [["migrate"], ["merchants", "create", "Nobody"], ["worker"], ["serve"]])
async def test_an_invalid_setting_exits_2_naming_it(
    servers: EmbeddedServers, tmp_path: Path, args: list[str]
) -> None:
    env = clean_env(
        GATEWAY_DATABASE_URL=servers.postgres.url, GATEWAY_REDIS_URL=servers.redis.url, GATEWAY_PORT="abc"
    )
    r = await gateway_cli(tmp_path, env, *args)
    assert (r.returncode, r.stdout) == (2, ""), r.stderr
    lines = r.stderr.splitlines()
    assert lines[0] == "Invalid configuration:"
    assert "port" in r.stderr
    assert "Input should be a valid integer" in r.stderr
    assert "Traceback" not in r.stderr


async def test_listen_without_a_key_exits_2_and_with_a_bad_key_exits_1(
    gateway: Gateway, tmp_path: Path
) -> None:
    # No --api-key, no GATEWAY_API_KEY, and no demo merchant saved by `gateway dev` in this directory.
    r = await gateway_cli(tmp_path, clean_env(), "listen", "--url", gateway.base_url)
    assert (r.returncode, r.stdout) == (2, ""), r.stderr
    assert r.stderr.strip() == "Give --api-key (or GATEWAY_API_KEY), or run `gateway dev` first."
    # A key the gateway refuses: trying again would not help, so it stops rather than reconnecting.
    bad = "sk_test_" + "0" * 40
    r = await gateway_cli(tmp_path, clean_env(), "listen", "--url", gateway.base_url, "--api-key", bad)
    assert (r.returncode, r.stdout) == (1, ""), r.stderr
    assert r.stderr.startswith("401: ")
    assert "reconnecting" not in r.stderr
    assert bad not in r.stderr
