"""`gateway provider-accounts set|list` and `gateway secrets rotate|generate-key`.

Credentials are read from stdin, never from the command line, where `ps` and shell history keep them.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from gateway.broadcast import Broadcast
from gateway.commands.common import keyring_or_exit, settings_or_exit, with_dev_servers
from gateway.db.database import Database
from gateway.errors import GatewayError
from gateway.kit.secretbox import Keyring, SecretBoxError, new_key_text
from gateway.logging import configure_logging
from gateway.merchants import repository as merchants
from gateway.provider_accounts import service
from gateway.provider_accounts.schemas import account_out
from gateway.providers.account_schema import AccountInvalid
from gateway.redis_client import connect_redis
from gateway.settings import Settings

provider_accounts = typer.Typer(
    help="Merchants' own provider accounts (credentials encrypted at rest).", no_args_is_help=True
)
secrets = typer.Typer(help="The keys that encrypt provider credentials at rest.", no_args_is_help=True)


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.secho(message, fg="red", err=True)
    return typer.Exit(code)


def _ready(*, redis: bool) -> Settings:
    settings = with_dev_servers(settings_or_exit())
    configure_logging(settings.log_level, settings.log_json)  # to stderr: stdout is the answer
    if not settings.database_url or (redis and not settings.redis_url):
        needed = "GATEWAY_DATABASE_URL and GATEWAY_REDIS_URL" if redis else "GATEWAY_DATABASE_URL"
        raise _fail(f"Set {needed}, or run this beside a running `make dev` (gateway dev).")
    return settings


@asynccontextmanager
async def _connected(settings: Settings) -> AsyncIterator[tuple[Database, Broadcast | None]]:
    """The database, and the broadcast that tells running gateways to drop what they cached."""
    db = await Database.connect(settings.database_url, settings.database)
    redis = connect_redis(settings.redis_url) if settings.redis_url else None
    try:
        yield db, Broadcast(redis) if redis is not None else None
    finally:
        await db.close()
        if redis is not None:
            await redis.aclose()


def _json_object(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        # Never the text itself: it may be the credentials.
        raise _fail(f"{what} is not a JSON object.")
    return value


@provider_accounts.command("set")
def set_account(
    merchant: Annotated[str, typer.Argument(help="The merchant's id, mer_…")],
    provider: Annotated[
        str,
        typer.Argument(
            help="stripe, paystack, flutterwave, mpesa, momo, wave, paypal, razorpay, orange or airtel"
        ),
    ],
    live: Annotated[bool, typer.Option("--live", help="The live-mode account (default: test)")] = False,
    settings_json: Annotated[
        str | None, typer.Option("--settings", help="Non-secret settings as JSON, e.g. '{\"base_url\": …}'")
    ] = None,
) -> None:
    """Create or replace MERCHANT's account with PROVIDER. The credentials are a JSON object read from
    stdin (e.g. `gateway provider-accounts set mer_… paystack < paystack.json`); prints the account,
    its credentials shown by their last four characters, and the webhook URL to register."""
    settings = _ready(redis=True)
    keyring = keyring_or_exit(settings)
    extra = _json_object(settings_json, "--settings") if settings_json is not None else {}
    if sys.stdin.isatty():
        typer.echo("Credentials as JSON, then Ctrl-D:", err=True)
    credentials = _json_object(sys.stdin.read(), "The credentials on stdin")

    async def run() -> service.Shown:
        async with _connected(settings) as (db, broadcast):
            if await merchants.get(db, merchant) is None:
                raise _fail(f"No merchant {merchant!r}.")
            return await service.put(
                db,
                keyring,
                broadcast,
                merchant_id=merchant,
                livemode=live,
                provider=provider,
                credentials=credentials,
                settings=extra,
            )

    try:
        shown = asyncio.run(run())
    except AccountInvalid as e:
        raise _fail(
            "\n".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors)
        ) from None
    except GatewayError as e:
        raise _fail(e.detail) from None
    typer.echo(account_out(shown.account, shown.webhook_url(settings.base_url)).model_dump_json(indent=2))


@provider_accounts.command("list")
def list_accounts(
    merchant: Annotated[str, typer.Argument(help="The merchant's id, mer_…")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts")] = False,
) -> None:
    """MERCHANT's active provider accounts in both modes (credentials by their last four characters)."""
    settings = _ready(redis=False)
    keyring = settings.keyring()

    async def run() -> list[service.Shown]:
        async with _connected(settings) as (db, _):
            if await merchants.get(db, merchant) is None:
                raise _fail(f"No merchant {merchant!r}.")
            return await service.list_accounts(db, keyring, merchant_id=merchant, livemode=None)

    try:
        shown = asyncio.run(run())
    except GatewayError as e:
        raise _fail(e.detail) from None
    out = [account_out(s.account, s.webhook_url(settings.base_url)) for s in shown]
    if as_json:
        typer.echo(json.dumps([o.model_dump(mode="json") for o in out], indent=2))
        return
    for o in out:
        hints = " ".join(f"{k}={v}" for k, v in o.credentials.items())
        typer.echo(f"{o.id}  {o.provider:<12} {o.mode:<4}  {hints}\n    webhook URL: {o.webhook_url}")
    if not out:
        typer.echo("no provider accounts", err=True)


@secrets.command("rotate")
def rotate(
    batch: Annotated[int, typer.Option(min=1, max=10_000, help="Rows re-sealed per transaction")] = 100,
) -> None:
    """Re-seal every provider account not sealed by the first key of GATEWAY_SECRETS_KEYS. Safe while
    the gateway serves, and resumable: run it again after an interruption. Then the old keys may go."""
    settings = _ready(redis=False)
    keyring: Keyring = keyring_or_exit(settings)

    async def run() -> service.Rotation:
        async with _connected(settings) as (db, broadcast):
            return await service.rotate(db, keyring, batch=batch, broadcast=broadcast)

    result = asyncio.run(run())
    typer.echo(f"re-sealed {result.resealed} provider accounts with key {keyring.current!r}")
    if result.failed:
        raise _fail(
            f"{len(result.failed)} accounts do not open with any key of GATEWAY_SECRETS_KEYS "
            f"(add back the key that sealed them): {', '.join(result.failed)}",
            1,
        )


@secrets.command("generate-key")
def generate_key(
    key_id: Annotated[
        str | None, typer.Option("--id", help="The key's id (default: k<UTC date and time>)")
    ] = None,
) -> None:
    """Print a new key for GATEWAY_SECRETS_KEYS: `<id>:<base64url of 32 random bytes>`."""
    kid = key_id or datetime.now(UTC).strftime("k%Y%m%d%H%M%S")
    try:
        text = new_key_text(kid)
    except SecretBoxError as e:
        raise _fail(str(e)) from None
    typer.echo(text)
    typer.echo(
        "Put it first in GATEWAY_SECRETS_KEYS, the old keys after it, then run `gateway secrets rotate`.",
        err=True,
    )
