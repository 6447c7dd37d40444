"""Where a running `gateway dev` says its embedded servers are, for the other commands on this machine.

`gateway dev` picks free ports for PostgreSQL and Redis at every start, so a second terminal cannot
guess them. It writes their URLs (and its own address) to {data_dir}/dev-servers.json once they are
up, atomically, and removes the file when it exits; `gateway merchants create`, `gateway migrate` and
`gateway listen` read it when GATEWAY_DATABASE_URL / GATEWAY_REDIS_URL are unset. A file left by a
killed run names a process that is gone and is ignored. It holds no secret (the embedded PostgreSQL
trusts 127.0.0.1), but is private to its owner all the same.

`gateway dev` also keeps the key that encrypts provider credentials in dev, {data_dir}/secrets.key
(0600), made on the first run, used when GATEWAY_SECRETS_KEYS is unset (by the commands beside it too).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from gateway.kit.secretbox import new_key_text

FILE_NAME = "dev-servers.json"


@dataclass(frozen=True)
class DevServers:
    pid: int
    # None when `gateway dev` used a configured server instead of starting one.
    database_url: str | None
    redis_url: str | None
    api_url: str


def path_in(data_dir: str | Path) -> Path:
    return Path(data_dir) / FILE_NAME


@contextlib.contextmanager
def published(data_dir: str | Path, servers: DevServers) -> Iterator[Path]:
    """Writes the file for as long as the block runs (readers never see half of it)."""
    path = path_in(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{FILE_NAME}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(asdict(servers), f)
    os.replace(tmp, path)
    try:
        yield path
    finally:
        # Only our own: another `gateway dev` may have replaced it since.
        current = _read(path)
        if current is not None and current.pid == servers.pid:
            path.unlink(missing_ok=True)


def running(data_dir: str | Path) -> DevServers | None:
    """The servers of the `gateway dev` running on this data directory, if one is."""
    servers = _read(path_in(data_dir))
    return servers if servers is not None and _alive(servers.pid) else None


def _read(path: Path) -> DevServers | None:
    try:
        return DevServers(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


# --- the dev secrets key ------------------------------------------------------------------------------

SECRETS_KEY_FILE = "secrets.key"


def secrets_key_path(data_dir: str | Path) -> Path:
    return Path(data_dir) / SECRETS_KEY_FILE


def saved_secrets_key(data_dir: str | Path) -> str | None:
    """The keyring `gateway dev` made on this data directory, if it made one."""
    try:
        text = secrets_key_path(data_dir).read_text().strip()
    except OSError:
        return None
    return text or None


def dev_secrets_key(data_dir: str | Path) -> str:
    """The dev keyring (`dev:<base64url key>`), made on the first run (readable by its owner only) and
    the same on every later one, so the provider accounts sealed with it still open. Dev only: in
    production GATEWAY_SECRETS_KEYS holds the keys, and `gateway serve` refuses to start without."""
    saved = saved_secrets_key(data_dir)
    if saved is not None:
        return saved
    path = secrets_key_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = new_key_text("dev")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another `gateway dev` made it first: use that one
        return saved_secrets_key(data_dir) or text
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
    return text
