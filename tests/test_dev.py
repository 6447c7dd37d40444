"""`gateway dev` as a real process, and the commands run beside it from another terminal.

`gateway merchants create` finds the embedded servers through {data_dir}/dev-servers.json; the file
goes when `gateway dev` does. Run as root (as CI is), `gateway dev` logs every folder whose
permissions it changes so PostgreSQL's own user can reach its data, and changes no other.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import orjson
import redis

from commands import NO_DEV, clean_env, gateway_cli
from gateway import devstate
from gateway.db.database import Database
from gateway.embedded import EmbeddedRedis, free_port
from gateway.settings import DatabaseSettings
from support import wait_for


def modes_above(path: Path) -> dict[str, int]:
    return {str(p): stat.S_IMODE(p.stat().st_mode) for p in [path, *path.parents]}


async def test_merchants_create_beside_a_running_gateway_dev(tmp_path: Path) -> None:
    # The project directory is private (0700), as a home directory often is.
    project = tmp_path / "project"
    project.mkdir(mode=0o700)
    modes_before = modes_above(project)
    api = f"http://127.0.0.1:{free_port()}"
    env = clean_env(GATEWAY_LOG_JSON="true", GATEWAY_SANDBOX__SEND_WEBHOOKS="false")
    log = tmp_path / "dev.log"
    dev = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "dev", "--port", api.rsplit(":", 1)[1]],
        env=env,
        cwd=project,
        stderr=log.open("wb"),
        stdout=subprocess.DEVNULL,
    )
    state_file = project / ".data" / "dev-servers.json"
    try:
        async with httpx.AsyncClient(base_url=api, timeout=10) as c:

            async def up() -> bool:
                assert dev.poll() is None, log.read_text()
                try:
                    return (await c.get("/healthz")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_for(up, timeout=120)
            published = json.loads(state_file.read_text())
            assert sorted(published) == ["api_url", "database_url", "pid", "redis_url"]
            assert (published["pid"], published["api_url"]) == (dev.pid, api)
            assert stat.S_IMODE(state_file.stat().st_mode) == 0o600
            # The dev key that seals provider accounts (GATEWAY_SECRETS_KEYS unset), private.
            assert stat.S_IMODE((project / ".data" / "secrets.key").stat().st_mode) == 0o600

            # Another terminal: the same directory, no server URL in its environment.
            r = await gateway_cli(project, clean_env(), "merchants", "create", "My shop", "--json")
            assert r.returncode == 0, r.stderr
            assert r.stderr == (
                f"Using the embedded servers of `gateway dev` (pid {dev.pid}, .data/dev-servers.json)\n"
            )
            created = json.loads(r.stdout)
            assert created["secret_key"].startswith("sk_test_")
            db = await Database.connect(published["database_url"], DatabaseSettings(pool_size=1))
            try:
                rows = await db.fetch("SELECT name FROM merchants WHERE id = $1", created["merchant_id"])
            finally:
                await db.close()
            assert [r["name"] for r in rows] == ["My shop"]

            auth = {"Authorization": f"Bearer {created['secret_key']}"}
            paid = await c.post(
                "/v1/payments",
                json={"amount": 1500, "currency": "KES", "provider": "cash"},
                headers=auth | {"Idempotency-Key": str(uuid.uuid4())},
            )
            assert paid.status_code == 201, paid.text
            listed = await c.get("/v1/payments", headers=auth)
            assert [p["id"] for p in listed.json()["data"]] == [paid.json()["id"]]

            # A provider account set from another terminal is sealed with the dev key, which the
            # running gateway opens (the M-Pesa callback token of its webhook URL).
            mpesa = {
                "consumer_key": "dev-consumer-key-0123456789",
                "consumer_secret": "dev-consumer-secret-0123456789",
                "shortcode": "174379",
                "passkey": "dev-passkey-0123456789abcdef",
            }
            set_ = await gateway_cli(
                project,
                clean_env(),
                "provider-accounts",
                "set",
                created["merchant_id"],
                "mpesa",
                stdin=json.dumps(mpesa),
            )
            assert set_.returncode == 0, set_.stderr
            shown = await c.get("/v1/provider-accounts/mpesa", headers=auth)
            assert shown.status_code == 200, shown.text
            assert shown.json()["webhook_url"] == json.loads(set_.stdout)["webhook_url"]

            # `gateway listen` with no flag: the running dev's address (not 8000) and its demo key.
            listen = subprocess.Popen(
                [sys.executable, "-m", "gateway.cli", "listen"],
                env=clean_env(),
                cwd=project,
                stderr=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                text=True,
            )
            try:
                assert listen.stderr is not None
                first = await asyncio.wait_for(asyncio.to_thread(listen.stderr.readline), timeout=60)
            finally:
                listen.terminate()
                listen.wait(timeout=30)
            assert first == f"Ready! Listening for * events on {api} (Ctrl-C to stop)\n"
    finally:
        dev.send_signal(signal.SIGTERM)
        dev.wait(timeout=60)
    assert dev.returncode == 0, log.read_text()
    assert not state_file.exists()

    # Nothing running: the file is gone, and the command says what to do.
    r = await gateway_cli(project, clean_env(), "merchants", "create", "Nobody")
    assert (r.returncode, r.stdout, r.stderr.strip()) == (2, "", NO_DEV)

    if os.geteuid() == 0:
        # Every folder above the data directory whose mode changed was logged, with both modes.
        events = [orjson.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
        logged = {
            e["path"]: (e["mode_before"], e["mode_after"])
            for e in events
            if e["event"] == "embedded_folder_made_traversable"
        }
        after = modes_above(project)
        changed = {p: (f"{modes_before[p]:o}", f"{after[p]:o}") for p in after if after[p] != modes_before[p]}
        assert {p: m for p, m in logged.items() if p in after} == changed
        assert changed[str(project)] == ("700", "701")


async def test_a_file_left_by_a_killed_gateway_dev_is_ignored(tmp_path: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    stale = devstate.DevServers(
        pid=gone.pid,
        database_url="postgresql+asyncpg://postgres@127.0.0.1:9/gateway",
        redis_url=None,
        api_url="",
    )
    with devstate.published(tmp_path / ".data", stale) as path:
        assert path.exists()
        assert devstate.running(tmp_path / ".data") is None
        r = await gateway_cli(tmp_path, clean_env(), "merchants", "create", "Nobody")
        assert (r.returncode, r.stdout, r.stderr.strip()) == (2, "", NO_DEV)
    assert not path.exists()


async def test_dev_redis_keeps_its_data_when_killed_and_restarted(tmp_path: Path) -> None:
    """An idempotency key stored before `make dev` was killed still replays after it restarts."""
    data = tmp_path / "redis"
    first = EmbeddedRedis(data)
    first.start()
    try:
        client = redis.Redis.from_url(first.url)
        client.set("idem:test", b"stored response", ex=3600)
        client.close()
        # SIGKILL: no snapshot on the way out, only what the append-only file already holds.
        os.kill(int((data / "redis.pid").read_text()), signal.SIGKILL)
    finally:
        first.stop()
    second = EmbeddedRedis(data)
    second.start()
    try:
        client = redis.Redis.from_url(second.url)
        assert client.get("idem:test") == b"stored response"
        assert 3590 < client.ttl("idem:test") <= 3600
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        client.close()
    finally:
        second.stop()


async def test_dev_redis_from_before_the_append_only_file_keeps_its_snapshot(tmp_path: Path) -> None:
    # A data directory written with appendonly off holds dump.rdb only; Redis would start empty.
    data = tmp_path / "redis"
    old = EmbeddedRedis(data, persist=False)
    old.start()
    try:
        client = redis.Redis.from_url(old.url)
        client.set("idem:old", b"kept")
        client.save()
        client.close()
    finally:
        old.stop()
    assert sorted(p.name for p in data.iterdir() if p.suffix in (".rdb", ".aof")) == ["dump.rdb"]
    new = EmbeddedRedis(data)
    new.start()
    try:
        client = redis.Redis.from_url(new.url)
        assert client.get("idem:old") == b"kept"
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        client.close()
    finally:
        new.stop()
    # Turned on for good: the next start reads the append-only file.
    assert (data / "appendonly.aof").exists()
    again = EmbeddedRedis(data)
    again.start()
    try:
        client = redis.Redis.from_url(again.url)
        assert client.get("idem:old") == b"kept"
        client.close()
    finally:
        again.stop()
