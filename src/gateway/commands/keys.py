"""`gateway merchants ...` and `gateway keys ...`: the operator's merchant and key management, run
against the database (and Redis, for what other processes must hear of) as the admin API does.

A key is printed once, when it is made; it is stored only as its hash.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, TypeVar

import typer
from redis.exceptions import RedisError

from gateway.commands.common import servers_or_exit
from gateway.db.database import Database
from gateway.errors import GatewayError
from gateway.kit.pagination import Page
from gateway.logging import configure_logging
from gateway.merchants.keys import KeyManager
from gateway.merchants.models import KEY_TYPES, ApiKey
from gateway.merchants.scopes import SCOPES
from gateway.merchants.service import NewMerchant, create_merchant
from gateway.redis_client import connect_redis
from gateway.settings import Settings

merchants = typer.Typer(help="Merchants and their API keys.", no_args_is_help=True)
keys = typer.Typer(help="API keys: create, roll and revoke them.", no_args_is_help=True)

T = TypeVar("T")
Json = Annotated[bool, typer.Option("--json", help="Print JSON for scripts")]


async def new_merchant(settings: Settings, name: str, livemode: bool) -> NewMerchant:
    """A merchant and its first secret key (also the `gateway dev` demo merchant's)."""
    db = await Database.connect(settings.database_url, settings.database)
    try:
        return await create_merchant(db, name, livemode=livemode)
    finally:
        await db.close()


@asynccontextmanager
async def _manager(settings: Settings) -> AsyncIterator[KeyManager]:
    db = await Database.connect(settings.database_url, settings.database)
    redis = connect_redis(settings.redis_url, socket_connect_timeout=2) if settings.redis_url else None
    try:
        yield KeyManager(db, redis)
    finally:
        if redis is not None:
            await redis.aclose()
        await db.close()


def _run(settings: Settings, work: Callable[[KeyManager], Awaitable[T]]) -> T:
    """Runs `work` with a manager; what the gateway would answer as an error is printed, exit 1."""

    async def main() -> T:
        async with _manager(settings) as manager:
            return await work(manager)

    # Warnings only, on stderr: what the command did is its output, on stdout.
    configure_logging("WARNING", settings.log_json)

    try:
        return asyncio.run(main())
    except GatewayError as e:
        typer.secho(f"{e.code}: {e.detail}", fg="red", err=True)
        raise typer.Exit(1) from e


def _key_fields(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "merchant": key.merchant_id,
        "type": key.type,
        "livemode": key.livemode,
        "scopes": key.scopes,
        "expires_at": key.expires_at.isoformat() if key.expires_at else None,
    }


@merchants.command("create")
def merchants_create(
    name: str,
    as_json: Json = False,
    live: Annotated[bool, typer.Option("--live", help="Issue a live-mode key (sk_live_…)")] = False,
) -> None:
    """Create a merchant and print its id and a new secret key (shown only this once)."""
    settings = servers_or_exit()
    m = asyncio.run(new_merchant(settings, name, live))
    if as_json:
        typer.echo(
            json.dumps(
                {"merchant_id": m.merchant_id, "name": name, "secret_key": m.secret_key, "livemode": live}
            )
        )
    else:
        typer.echo(f"merchant: {m.merchant_id}\nsecret key (shown once): {m.secret_key}")


@merchants.command("list")
def merchants_list(as_json: Json = False) -> None:
    """Every merchant, newest first: id, status, rate limit, created, name."""
    settings = servers_or_exit()

    async def everyone(manager: KeyManager) -> list[Any]:
        found: list[Any] = []
        page = Page(limit=100)
        while True:
            rows, more = await manager.list_merchants(page)
            found += rows
            if not more:
                return found
            page = Page(limit=100, starting_after=rows[-1].id)

    rows = _run(settings, everyone)
    if as_json:
        listed = [
            {
                "id": m.id,
                "name": m.name,
                "status": m.status,
                "rate_limit": m.rate_limit,
                "created": m.created_at.isoformat(),
            }
            for m in rows
        ]
        typer.echo(json.dumps(listed))
        return
    for m in rows:
        limit = "default" if m.rate_limit is None else f"{m.rate_limit}/s"
        typer.echo(f"{m.id}  {m.status:<8}  {limit:<8}  {m.created_at:%Y-%m-%dT%H:%M:%SZ}  {m.name}")


@keys.command("create")
def keys_create(
    merchant: Annotated[str, typer.Argument(help="The merchant's id, mer_…")],
    type: Annotated[str, typer.Option("--type", help=f"One of {', '.join(KEY_TYPES)}")] = "secret",
    scope: Annotated[
        list[str] | None,
        typer.Option("--scope", help=f"A restricted key's scope (repeat): {', '.join(SCOPES)}"),
    ] = None,
    live: Annotated[bool, typer.Option("--live", help="A live-mode key")] = False,
    as_json: Json = False,
) -> None:
    """Give a merchant a new key and print it (shown only this once)."""
    settings = servers_or_exit()
    made = _run(settings, lambda m: m.create_key(merchant, live, type, scope))
    if as_json:
        typer.echo(json.dumps(_key_fields(made.key) | {"secret": made.secret}))
    else:
        typer.echo(f"key: {made.key.id}\nsecret (shown once): {made.secret}")


@keys.command("roll")
def keys_roll(
    key_id: Annotated[str, typer.Argument(help="The key to replace, key_…")],
    expires_in: Annotated[
        int,
        typer.Option(
            min=0, max=604_800, help="Seconds the old key keeps working (0: it stops now; at most 7 days)"
        ),
    ] = 0,
    as_json: Json = False,
) -> None:
    """Replace a key with a new one of its type and scopes (printed once); the old one stops later."""
    settings = servers_or_exit(redis=True)
    rolled = _run(settings, lambda m: m.roll_key(key_id, expires_in, None))
    new, old = rolled.new, rolled.old
    assert old.expires_at is not None
    if as_json:
        typer.echo(json.dumps(_key_fields(new.key) | {"secret": new.secret, "rolled_from": _key_fields(old)}))
    else:
        typer.echo(
            f"key: {new.key.id}\nsecret (shown once): {new.secret}\n"
            f"{old.id} stops working at {old.expires_at:%Y-%m-%dT%H:%M:%SZ}"
        )


@keys.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key to revoke, key_…")]) -> None:
    """Revoke a key: every gateway process refuses it within a second."""
    settings = servers_or_exit(redis=True)
    try:
        key = _run(settings, lambda m: m.revoke_key(key_id, None))
    except (RedisError, OSError) as e:
        typer.secho(
            f"Revoked in the database, but Redis could not be told ({type(e).__name__}): gateway processes "
            "may accept the key until their cache expires. Run the command again to announce it.",
            fg="red",
            err=True,
        )
        raise typer.Exit(1) from e
    assert key.revoked_at is not None
    typer.echo(f"revoked {key.id} at {key.revoked_at:%Y-%m-%dT%H:%M:%SZ}")
