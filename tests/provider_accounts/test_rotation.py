"""`gateway secrets rotate`: after a new key goes first, every row is re-sealed with it, in batches,
resumably, skipping rows another transaction holds; then the old key can go. On a database of its
own, so the session's rows (sealed with the session's key) are not touched."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from commands import clean_env, gateway_cli
from gateway.cli import run_migrations
from gateway.db.database import Database
from gateway.embedded import EmbeddedServers
from gateway.kit.secretbox import Keyring, new_key_text
from gateway.merchants.service import create_merchant
from gateway.provider_accounts import repository, service
from gateway.settings import DatabaseSettings
from provider_account_data import credentials
from support import Gateway

OLD, NEW = new_key_text("old"), new_key_text("new")


@pytest.fixture
async def own_db(gateway: Gateway, servers: EmbeddedServers) -> AsyncIterator[tuple[str, Database]]:
    name = f"rot_{uuid.uuid4().hex[:12]}"
    await gateway.execute(f"CREATE DATABASE {name}")
    url = servers.postgres.url.rsplit("/", 1)[0] + f"/{name}"
    await asyncio.to_thread(run_migrations, url)
    db = await Database.connect(url, DatabaseSettings(pool_size=3))
    try:
        yield url, db
    finally:
        await db.close()
        await gateway.execute(f"DROP DATABASE {name} WITH (FORCE)")


async def accounts(db: Database, keyring: Keyring) -> dict[str, dict[str, str]]:
    """Two merchants with three accounts each (mpesa with its callback token): id -> credentials."""
    made = {}
    for name in ("A", "B"):
        m = await create_merchant(db, name)
        for provider in ("paystack", "mpesa", "stripe"):
            creds = credentials(provider)
            shown = await service.put(
                db, keyring, None, merchant_id=m.merchant_id, livemode=False, provider=provider,
                credentials=creds, settings={},
            )  # fmt: skip
            made[shown.account.id] = creds
    return made


async def key_ids(db: Database) -> list[str]:
    return [r[0] for r in await db.fetch("SELECT secrets_key_id FROM provider_accounts ORDER BY id")]


async def opened(db: Database, keyring: Keyring) -> dict[str, dict[str, str]]:
    out = {}
    for row in await db.fetch("SELECT id FROM provider_accounts"):
        account = await repository.get(db, row[0])
        assert account is not None
        plain = service._open(keyring, account)
        plain.pop("callback_token", None)
        out[account.id] = plain
    return out


async def test_rotate_with_the_cli_then_drop_the_old_key(
    own_db: tuple[str, Database], tmp_path: Path
) -> None:
    url, db = own_db
    made = await accounts(db, Keyring.parse(OLD))
    assert await key_ids(db) == ["old"] * 6
    tokens = {i: service._open(Keyring.parse(OLD), a)["callback_token"] for i in made
              if (a := await repository.get(db, i)) is not None and a.provider == "mpesa"}  # fmt: skip

    env = clean_env(GATEWAY_DATABASE_URL=url, GATEWAY_SECRETS_KEYS=f"{NEW},{OLD}")
    r = await gateway_cli(tmp_path, env, "secrets", "rotate", "--batch", "4")
    assert (r.returncode, r.stdout) == (0, "re-sealed 6 provider accounts with key 'new'\n"), r.stderr
    assert await key_ids(db) == ["new"] * 6

    # The old key removed: everything opens with the new one alone, callback tokens unchanged.
    new_only = Keyring.parse(NEW)
    plain = await opened(db, new_only)
    assert plain == made
    for i, token in tokens.items():
        account = await repository.get(db, i)
        assert account is not None
        assert service._open(new_only, account)["callback_token"] == token

    # Twice is a no-op, with either keyring.
    again = await gateway_cli(tmp_path, env, "secrets", "rotate")
    assert (again.returncode, again.stdout) == (0, "re-sealed 0 provider accounts with key 'new'\n")
    env_new = clean_env(GATEWAY_DATABASE_URL=url, GATEWAY_SECRETS_KEYS=NEW)
    third = await gateway_cli(tmp_path, env_new, "secrets", "rotate")
    assert (third.returncode, third.stdout) == (0, "re-sealed 0 provider accounts with key 'new'\n")


async def test_rotation_skips_locked_rows_and_resumes(own_db: tuple[str, Database]) -> None:
    _, db = own_db
    made = await accounts(db, Keyring.parse(OLD))
    both = Keyring.parse(f"{NEW},{OLD}")
    held = sorted(made)[2]
    # A row another transaction holds (a PUT in flight) is skipped, not waited for.
    async with db.transaction() as tx:
        await tx.execute("SELECT 1 FROM provider_accounts WHERE id = $1 FOR UPDATE", held)
        first = await asyncio.wait_for(service.rotate(db, both, batch=2), 10)
        assert (first.resealed, first.failed) == (5, [])
    assert await db.fetchval("SELECT secrets_key_id FROM provider_accounts WHERE id = $1", held) == "old"
    second = await service.rotate(db, both, batch=2)
    assert (second.resealed, second.failed) == (1, [])
    assert await key_ids(db) == ["new"] * 6
    assert await opened(db, Keyring.parse(NEW)) == made


async def test_rows_no_key_opens_are_reported_and_left(own_db: tuple[str, Database], tmp_path: Path) -> None:
    url, db = own_db
    await accounts(db, Keyring.parse(OLD))
    # The old key dropped before rotating: nothing opens; the CLI says which rows and exits 1.
    env = clean_env(GATEWAY_DATABASE_URL=url, GATEWAY_SECRETS_KEYS=NEW)
    r = await gateway_cli(tmp_path, env, "secrets", "rotate")
    assert (r.returncode, r.stdout) == (1, "re-sealed 0 provider accounts with key 'new'\n")
    assert "6 accounts do not open with any key of GATEWAY_SECRETS_KEYS" in r.stderr
    assert await key_ids(db) == ["old"] * 6
