"""What every `gateway` command starts from: valid settings, and the servers of a running
`gateway dev` on this data directory when no server URL is configured."""

from __future__ import annotations

import typer

from gateway import devstate
from gateway.settings import Settings, get_settings

NO_DATABASE = "Set GATEWAY_DATABASE_URL, or run this beside a running `make dev` (gateway dev)."
NO_REDIS = "Set GATEWAY_REDIS_URL, or run this beside a running `make dev` (gateway dev)."


def settings_or_exit() -> Settings:
    try:
        return get_settings()
    except Exception as e:  # pydantic's ValidationError names every bad setting
        typer.secho(f"Invalid configuration:\n{e}", fg="red", err=True)
        raise typer.Exit(2) from e


def with_dev_servers(settings: Settings) -> Settings:
    """The server URLs left unset, from the `gateway dev` running on this data directory (saying so)."""
    if settings.database_url and settings.redis_url:
        return settings
    dev = devstate.running(settings.data_dir)
    if dev is None:
        return settings
    updates = {
        name: url
        for name, url in (("database_url", dev.database_url), ("redis_url", dev.redis_url))
        if url and not getattr(settings, name)
    }
    if updates:
        where = devstate.path_in(settings.data_dir)
        typer.echo(f"Using the embedded servers of `gateway dev` (pid {dev.pid}, {where})", err=True)
    return settings.model_copy(update=updates)


def servers_or_exit(*, redis: bool = False) -> Settings:
    """The settings of a command that needs the database (and Redis, if `redis`), or exit 2."""
    settings = with_dev_servers(settings_or_exit())
    for missing, message in (
        (not settings.database_url, NO_DATABASE),
        (redis and not settings.redis_url, NO_REDIS),
    ):
        if missing:
            typer.secho(message, fg="red", err=True)
            raise typer.Exit(2)
    return settings
