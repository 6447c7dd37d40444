"""What every `gateway` sub-command needs: the settings (exit 2 when they are wrong), the servers of a
`gateway dev` running beside it, and the secrets keyring."""

from __future__ import annotations

import typer
from pydantic import SecretStr

from gateway import devstate
from gateway.kit.secretbox import Keyring, SecretBoxError
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
    """The server URLs left unset, from the `gateway dev` running on this data directory (saying so),
    its address and its secrets key when GATEWAY_PUBLIC_URL and GATEWAY_SECRETS_KEYS are unset."""
    if settings.database_url and settings.redis_url:
        return settings
    dev = devstate.running(settings.data_dir)
    if dev is None:
        return settings
    updates: dict[str, object] = {
        name: url
        for name, url in (("database_url", dev.database_url), ("redis_url", dev.redis_url))
        if url and not getattr(settings, name)
    }
    if updates:
        where = devstate.path_in(settings.data_dir)
        typer.echo(f"Using the embedded servers of `gateway dev` (pid {dev.pid}, {where})", err=True)
        dev_key = devstate.saved_secrets_key(settings.data_dir)
        if settings.secrets_keys is None and dev_key is not None:
            updates["secrets_keys"] = SecretStr(dev_key)
        if not settings.public_url:  # the webhook URLs printed are the running gateway's
            updates["public_url"] = dev.api_url
    return settings.model_copy(update=updates)


def keyring_or_exit(settings: Settings) -> Keyring:
    """The keyring, or exit 2 saying how to make one."""
    try:
        keyring = settings.keyring()
    except SecretBoxError as e:
        typer.secho(f"GATEWAY_SECRETS_KEYS is not valid: {e}", fg="red", err=True)
        raise typer.Exit(2) from e
    if keyring is None:
        typer.secho(
            "Set GATEWAY_SECRETS_KEYS (make a key with `gateway secrets generate-key`).", fg="red", err=True
        )
        raise typer.Exit(2)
    return keyring


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
