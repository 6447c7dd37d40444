"""The `gateway` command: dev, serve, worker, migrate, listen; merchants and keys (gateway/commands/)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import httpx
import typer
import uvicorn
from pydantic import SecretStr

from gateway import devstate
from gateway.commands.accounts import provider_accounts, secrets
from gateway.commands.common import keyring_or_exit, settings_or_exit
from gateway.commands.keys import keys, merchants, new_merchant
from gateway.listening import Listening, listen_once
from gateway.logging import get_logger
from gateway.metrics_server import exporting
from gateway.settings import DatabaseSettings, Settings, get_settings

if TYPE_CHECKING:
    from alembic.config import Config

log = get_logger("gateway.cli")

app = typer.Typer(help="Self-hosted payment gateway.", no_args_is_help=True, add_completion=False)
app.add_typer(merchants, name="merchants")
app.add_typer(keys, name="keys")
app.add_typer(provider_accounts, name="provider-accounts")
app.add_typer(secrets, name="secrets")


def alembic_dir() -> Path:
    """alembic/ beside the project (a checkout) or in the working directory (the container image)."""
    for candidate in (
        Path(os.environ.get("GATEWAY_ALEMBIC_DIR", "")),
        Path.cwd() / "alembic",
        Path(__file__).resolve().parents[2] / "alembic",
    ):
        if (candidate / "env.py").exists():
            return candidate
    raise typer.BadParameter("cannot find the alembic/ migrations directory; set GATEWAY_ALEMBIC_DIR")


def alembic_config(database_url: str, database: DatabaseSettings | None = None) -> Config:
    """alembic's configuration for the database; `database` (default: the environment's) says how to
    connect (PgBouncer)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(alembic_dir()))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    cfg.attributes["database"] = database or get_settings().database
    return cfg


def run_migrations(database_url: str, database: DatabaseSettings | None = None) -> None:
    """alembic upgrade head."""
    from alembic import command

    command.upgrade(alembic_config(database_url, database), "head")


async def _merchant_exists(settings: Settings, database_url: str, merchant_id: str) -> bool:
    from gateway.db.database import Database
    from gateway.merchants import repository

    db = await Database.connect(database_url, settings.database)
    try:
        return await repository.get(db, merchant_id) is not None
    finally:
        await db.close()


def _demo_merchant(settings: Settings, database_url: str) -> tuple[str, str]:
    """The dev merchant, created once; its key is kept in .data/ (dev only) so a second run reuses it."""
    path = Path(settings.data_dir) / "demo-merchant.json"
    if path.exists():
        saved = json.loads(path.read_text())
        if asyncio.run(_merchant_exists(settings, database_url, saved["merchant_id"])):
            return saved["merchant_id"], saved["secret_key"]
    settings = settings.model_copy(update={"database_url": database_url})
    made = asyncio.run(new_merchant(settings, "Demo merchant", False))
    merchant_id, key = made.merchant_id, made.secret_key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"merchant_id": merchant_id, "secret_key": key}))
    path.chmod(0o600)
    return merchant_id, key


def _banner(settings: Settings, merchant_id: str, key: str) -> str:
    base = settings.base_url
    return f"""
  Gateway (development) on {base}   docs: {base}/docs
  Demo merchant {merchant_id}, test key:

    {key}

  Try it:

    curl -s {base}/v1/payments \\
      -H "Authorization: Bearer {key}" \\
      -H "Idempotency-Key: $(uuidgen 2>/dev/null || date +%s%N)" \\
      -H "Content-Type: application/json" \\
      -d '{{"amount": 1500, "currency": "KES", "provider": "sandbox", "payment_method": "pm_action_success"}}'

  Ctrl-C stops the gateway and its embedded servers.
"""


# `gateway serve` on SIGTERM: requests in flight get this long to finish (as long as the default
# GATEWAY_PROVIDER_TIMEOUT_SECONDS, the longest a request waits on a provider) before uvicorn cuts
# them. Orchestrators' grace periods are sized from it (deploy/kubernetes/20-api.yaml).
SERVE_GRACEFUL_SHUTDOWN_SECONDS = 20


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@app.command()
def dev(
    host: Annotated[
        str | None, typer.Option(help="Address to bind (default: GATEWAY_HOST or 127.0.0.1)")
    ] = None,
    port: Annotated[
        int | None, typer.Option(min=1, max=65_535, help="Port to serve on (default: GATEWAY_PORT or 8000)")
    ] = None,
) -> None:
    """Run everything on this machine: embedded PostgreSQL and Redis, migrations, a demo merchant, the API."""
    from gateway.embedded import EmbeddedPostgres, EmbeddedRedis
    from gateway.logging import configure_logging

    settings = settings_or_exit()
    settings = settings.model_copy(
        update={k: v for k, v in (("host", host), ("port", port)) if v is not None}
    )
    if "GATEWAY_LOG_JSON" not in os.environ:
        settings = settings.model_copy(update={"log_json": False})  # a person reads these logs
    if "GATEWAY_DELIVERY__ALLOW_PRIVATE_TARGETS" not in os.environ:
        # Local receivers (a merchant's app on localhost) are the point of dev mode.
        settings = settings.model_copy(
            update={"delivery": settings.delivery.model_copy(update={"allow_private_targets": True})}
        )
    configure_logging(settings.log_level, settings.log_json)
    data = Path(settings.data_dir)
    with contextlib.ExitStack() as stack:
        updates: dict[str, str] = {}
        if not settings.database_url:
            pg = EmbeddedPostgres(data / "postgres", settings.embedded_postgres_port)
            stack.callback(pg.stop)
            updates["database_url"] = pg.start()
        if not settings.redis_url:
            rd = EmbeddedRedis(data / "redis", settings.embedded_redis_port)
            stack.callback(rd.stop)
            updates["redis_url"] = rd.start()
        settings = settings.model_copy(update=updates)
        if settings.secrets_keys is None:
            # Provider accounts' credentials are sealed with a dev key kept in .data/ (dev only).
            dev_key = SecretStr(devstate.dev_secrets_key(data))
            settings = settings.model_copy(update={"secrets_keys": dev_key})
        keyring_or_exit(settings)
        run_migrations(settings.database_url, settings.database)
        merchant_id, key = _demo_merchant(settings, settings.database_url)
        # Other terminals' `gateway merchants create` and `gateway listen` find the servers here.
        running = devstate.DevServers(
            pid=os.getpid(),
            database_url=updates.get("database_url"),
            redis_url=updates.get("redis_url"),
            api_url=settings.base_url,
        )
        stack.enter_context(devstate.published(data, running))
        if settings.delivery.allow_private_targets:
            log.warning(
                "ssrf_guard_off", detail="webhook endpoints on private and loopback addresses are allowed"
            )
        print(_banner(settings, merchant_id, key), file=sys.stderr, flush=True)

        from gateway.main import create_app

        server = uvicorn.Server(
            uvicorn.Config(
                create_app(settings),
                host=settings.host,
                port=settings.port,
                log_config=None,
                access_log=False,
                ws_ping_interval=settings.stream_heartbeat_seconds,  # the WebSockets' heartbeats
                timeout_graceful_shutdown=10,
            )
        )
        # uvicorn re-raises the signal it caught once it has shut down; make SIGTERM unwind like
        # Ctrl-C so the ExitStack still stops both embedded servers.
        signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        with contextlib.suppress(KeyboardInterrupt), exporting(settings):
            server.run()


def _require_secrets_keys(settings: Settings) -> None:
    """Production is the live deployment: it never runs without the keys that seal provider
    credentials (elsewhere, PUT /v1/provider-accounts answers 409 secrets_key_missing until set)."""
    if settings.secrets_keys is None and settings.environment == "production":
        typer.secho(
            "GATEWAY_ENVIRONMENT is production (the live deployment) and GATEWAY_SECRETS_KEYS is unset: "
            "provider credentials cannot be encrypted. Make a key with `gateway secrets generate-key` "
            "and set GATEWAY_SECRETS_KEYS=<id>:<key>.",
            fg="red",
            err=True,
        )
        raise typer.Exit(2)
    if settings.secrets_keys is not None:
        keyring_or_exit(settings)  # exit 2 if unreadable


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to bind (default: GATEWAY_HOST or 127.0.0.1)")
    ] = None,
    port: Annotated[
        int | None, typer.Option(min=1, max=65_535, help="Port to bind (default: GATEWAY_PORT or 8000)")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Worker processes (default: GATEWAY_WORKERS or 1)")
    ] = None,
) -> None:
    """Serve the API against the configured PostgreSQL and Redis (production)."""
    # A flag wins over the environment and .env. Host and port are written back to the environment, so
    # the settings each worker process reads agree with the socket (the default public URL, which
    # providers' callbacks use, is http://HOST:PORT).
    for name, value in (("GATEWAY_HOST", host), ("GATEWAY_PORT", port)):
        if value is not None:
            os.environ[name] = str(value)
    get_settings.cache_clear()
    settings = settings_or_exit()
    if not settings.database_url or not settings.redis_url:
        typer.secho(
            "Set GATEWAY_DATABASE_URL and GATEWAY_REDIS_URL (or use `gateway dev`).", fg="red", err=True
        )
        raise typer.Exit(2)
    _require_secrets_keys(settings)
    from gateway.logging import configure_logging

    configure_logging(settings.log_level, settings.log_json)  # this process's own lines (the exporter's)
    with exporting(settings):  # before the workers start: they inherit its directory
        uvicorn.run(
            "gateway.main:create_app",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=workers or settings.workers,
            log_config=None,
            access_log=False,
            ws_ping_interval=settings.stream_heartbeat_seconds,  # the WebSockets' heartbeats
            proxy_headers=True,
            timeout_graceful_shutdown=SERVE_GRACEFUL_SHUTDOWN_SECONDS,
        )


@app.command()
def worker() -> None:
    """Deliver merchant webhooks, reconcile unsettled payments, sweep stored provider webhooks (run any
    number: they share the work)."""
    settings = settings_or_exit()
    if not settings.database_url or not settings.redis_url:
        typer.secho("Set GATEWAY_DATABASE_URL and GATEWAY_REDIS_URL.", fg="red", err=True)
        raise typer.Exit(2)
    _require_secrets_keys(settings)

    from gateway.logging import configure_logging
    from gateway.runtime import Loops, runtime

    configure_logging(settings.log_level, settings.log_json)

    async def main() -> None:
        # The API's own assembly, with every background loop and no HTTP.
        async with runtime(settings, Loops()) as rt:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, rt.stop.set)
            await rt.stop.wait()

    with exporting(settings):
        asyncio.run(main())


@app.command()
def migrate() -> None:
    """Apply the database migrations (alembic upgrade head)."""
    settings = settings_or_exit()
    if not settings.database_url:
        typer.secho("Set GATEWAY_DATABASE_URL.", fg="red", err=True)
        raise typer.Exit(2)
    run_migrations(settings.database_url, settings.database)
    typer.echo("migrations applied")


def _default_key(settings: Settings) -> str | None:
    path = Path(settings.data_dir) / "demo-merchant.json"
    if path.exists():
        key: str = json.loads(path.read_text())["secret_key"]
        return key
    return None


@app.command()
def listen(
    events: Annotated[
        str, typer.Option(help="Event types, comma-separated; `payment.*` matches a family")
    ] = "*",
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar="GATEWAY_API_KEY", help="A secret key (default: the demo merchant's, from `gateway dev`)"
        ),
    ] = None,
    url: Annotated[
        str | None, typer.Option(help="The gateway (default: GATEWAY_PUBLIC_URL or http://HOST:PORT)")
    ] = None,
) -> None:
    """Print the merchant's events as they happen, one line each; reconnects and resumes (Ctrl-C stops)."""
    if url is None or api_key is None:
        settings = settings_or_exit()
        dev = devstate.running(settings.data_dir)
        url = url or settings.public_url or (dev.api_url if dev else settings.base_url)
        api_key = api_key or _default_key(settings)
    if not api_key:
        typer.secho("Give --api-key (or GATEWAY_API_KEY), or run `gateway dev` first.", fg="red", err=True)
        raise typer.Exit(2)
    state = Listening(base=url.rstrip("/"), events=events)
    # The read timeout outlasts several heartbeats (15 s): a silent connection is a dead one.
    with (
        contextlib.suppress(KeyboardInterrupt),
        httpx.Client(base_url=state.base, timeout=httpx.Timeout(10.0, read=60.0)) as client,
    ):
        while True:
            try:
                reason = listen_once(client, api_key, state)
            except httpx.TransportError as e:
                reason = str(e) or type(e).__name__
            typer.echo(f"Connection lost ({reason}); reconnecting in {state.delay:.0f} s", err=True)
            time.sleep(state.delay)
            state.delay = min(state.delay * 2, 10.0)


if __name__ == "__main__":
    app()
