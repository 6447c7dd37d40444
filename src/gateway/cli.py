"""The `gateway` command: dev, serve, migrate, merchants."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from gateway.settings import Settings, get_settings

app = typer.Typer(help="Self-hosted payment gateway.", no_args_is_help=True, add_completion=False)
merchants = typer.Typer(help="Merchants and their API keys.", no_args_is_help=True)
app.add_typer(merchants, name="merchants")


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


def run_migrations(database_url: str) -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(alembic_dir()))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    command.upgrade(cfg, "head")


def _settings_or_exit() -> Settings:
    try:
        return get_settings()
    except Exception as e:  # pydantic's ValidationError names every bad setting
        typer.secho(f"Invalid configuration:\n{e}", fg="red", err=True)
        raise typer.Exit(2) from e


async def _create_merchant(database_url: str, name: str, livemode: bool) -> tuple[str, str]:
    from gateway.db.engine import make_engine, make_sessionmaker
    from gateway.merchants.service import create_merchant

    settings = get_settings()
    engine = make_engine(database_url, settings.database)
    try:
        async with make_sessionmaker(engine)() as session:
            m = await create_merchant(session, name, livemode=livemode)
        return m.merchant_id, m.secret_key
    finally:
        await engine.dispose()


async def _merchant_exists(database_url: str, merchant_id: str) -> bool:
    from gateway.db.engine import make_engine, make_sessionmaker
    from gateway.merchants.repository import MerchantRepository

    engine = make_engine(database_url, get_settings().database)
    try:
        async with make_sessionmaker(engine)() as session:
            return await MerchantRepository(session).get(merchant_id) is not None
    finally:
        await engine.dispose()


def _demo_merchant(settings: Settings, database_url: str) -> tuple[str, str]:
    """The dev merchant, created once; its key is kept in .data/ (dev only) so a second run reuses it."""
    path = Path(settings.data_dir) / "demo-merchant.json"
    if path.exists():
        saved = json.loads(path.read_text())
        if asyncio.run(_merchant_exists(database_url, saved["merchant_id"])):
            return saved["merchant_id"], saved["secret_key"]
    merchant_id, key = asyncio.run(_create_merchant(database_url, "Demo merchant", False))
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


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@app.command()
def dev(
    port: Annotated[int | None, typer.Option(help="Port to serve on (default: GATEWAY_PORT or 8000)")] = None,
) -> None:
    """Run everything on this machine: embedded PostgreSQL and Redis, migrations, a demo merchant, the API."""
    from gateway.embedded import EmbeddedPostgres, EmbeddedRedis
    from gateway.logging import configure_logging

    settings = _settings_or_exit()
    if port is not None:
        settings = settings.model_copy(update={"port": port})
    if "GATEWAY_LOG_JSON" not in os.environ:
        settings = settings.model_copy(update={"log_json": False})  # a person reads these logs
    configure_logging(settings.log_level, settings.log_json)
    data = Path(settings.data_dir)
    with contextlib.ExitStack() as stack:
        updates: dict[str, object] = {}
        if not settings.database_url:
            pg = EmbeddedPostgres(data / "postgres", settings.embedded_postgres_port)
            stack.callback(pg.stop)
            updates["database_url"] = pg.start()
        if not settings.redis_url:
            rd = EmbeddedRedis(data / "redis", settings.embedded_redis_port)
            stack.callback(rd.stop)
            updates["redis_url"] = rd.start()
        settings = settings.model_copy(update=updates)
        run_migrations(settings.database_url)
        merchant_id, key = _demo_merchant(settings, settings.database_url)
        print(_banner(settings, merchant_id, key), file=sys.stderr, flush=True)

        from gateway.main import create_app

        server = uvicorn.Server(
            uvicorn.Config(
                create_app(settings),
                host=settings.host,
                port=settings.port,
                log_config=None,
                access_log=False,
                timeout_graceful_shutdown=10,
            )
        )
        # uvicorn re-raises the signal it caught once it has shut down; make SIGTERM unwind like
        # Ctrl-C so the ExitStack still stops both embedded servers.
        signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        with contextlib.suppress(KeyboardInterrupt):
            server.run()


@app.command()
def serve(
    workers: Annotated[int, typer.Option(help="Worker processes")] = 1,
) -> None:
    """Serve the API against the configured PostgreSQL and Redis (production)."""
    settings = _settings_or_exit()
    if not settings.database_url or not settings.redis_url:
        typer.secho(
            "Set GATEWAY_DATABASE_URL and GATEWAY_REDIS_URL (or use `gateway dev`).", fg="red", err=True
        )
        raise typer.Exit(2)
    uvicorn.run(
        "gateway.main:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=workers,
        log_config=None,
        access_log=False,
        proxy_headers=True,
        timeout_graceful_shutdown=20,
    )


@app.command()
def migrate() -> None:
    """Apply the database migrations (alembic upgrade head)."""
    settings = _settings_or_exit()
    if not settings.database_url:
        typer.secho("Set GATEWAY_DATABASE_URL.", fg="red", err=True)
        raise typer.Exit(2)
    run_migrations(settings.database_url)
    typer.echo("migrations applied")


@merchants.command("create")
def merchants_create(
    name: str,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts")] = False,
    live: Annotated[bool, typer.Option("--live", help="Issue a live-mode key (sk_live_…)")] = False,
) -> None:
    """Create a merchant and print its id and a new secret key (shown only this once)."""
    settings = _settings_or_exit()
    if not settings.database_url:
        typer.secho("Set GATEWAY_DATABASE_URL.", fg="red", err=True)
        raise typer.Exit(2)
    merchant_id, key = asyncio.run(_create_merchant(settings.database_url, name, live))
    if as_json:
        typer.echo(
            json.dumps({"merchant_id": merchant_id, "name": name, "secret_key": key, "livemode": live})
        )
    else:
        typer.echo(f"merchant: {merchant_id}\nsecret key (shown once): {key}")


if __name__ == "__main__":
    app()
