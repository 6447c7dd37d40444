"""PgBouncer in transaction pooling mode in front of the embedded PostgreSQL, as operators run it,
for the tests and the bench: Debian's `pgbouncer` package (`make pgbouncer`)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from gateway.embedded import EmbeddedPostgres, _stop_orphan, _wait_for_port, free_port, postgres_bin_dir
from gateway.embedded_root import RunAs, make_reachable
from gateway.logging import get_logger

log = get_logger("gateway.embedded")


def pgbouncer_bin() -> Path:
    found = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise RuntimeError("pgbouncer is not installed (run `make pgbouncer`: Debian's package)")
    return Path(found)


@dataclass
class EmbeddedPgBouncer:
    """PgBouncer in transaction pooling mode on 127.0.0.1, in front of an embedded PostgreSQL.

    Its config, pid file and log live in `data_dir`. Authentication is the embedded server's: trust
    on 127.0.0.1 for its `postgres` user, who is also the admin console's (`SHOW POOLS`, ...)."""

    data_dir: Path
    postgres_port: int
    database: str = "gateway"
    port: int = 0
    # Server connections per (database, user): what PostgreSQL sees, whatever the clients hold.
    pool_size: int = 20
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{self.database}"

    def start(self) -> str:
        run_as = RunAs.for_postgres()  # PgBouncer refuses root too
        self.data_dir = self.data_dir.resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        (self.data_dir / "userlist.txt").write_text('"postgres" ""\n')
        server = f"host=127.0.0.1 port={self.postgres_port}"
        (self.data_dir / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"{self.database} = {server} dbname={self.database}\n"
            f"* = {server}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\n"
            "unix_socket_dir =\n"
            "pool_mode = transaction\n"
            f"default_pool_size = {self.pool_size}\n"
            "max_client_conn = 1000\n"
            "auth_type = trust\n"
            f"auth_file = {self.data_dir / 'userlist.txt'}\n"
            "admin_users = postgres\n"
            "stats_users = postgres\n"
            # SHOW STATS totals every second, so a test can see its own traffic.
            "stats_period = 1\n"
            f"logfile = {self.data_dir / 'pgbouncer.log'}\n"
            f"pidfile = {self.data_dir / 'pgbouncer.pid'}\n"
        )
        if run_as.uid is not None:
            make_reachable(self.data_dir.parent, f"its data directory {self.data_dir}")
            for p in [self.data_dir, *self.data_dir.iterdir()]:
                os.chown(p, run_as.uid, run_as.gid or -1)
        _stop_orphan(self.data_dir / "pgbouncer.pid", signal.SIGTERM, "pgbouncer")
        self._proc = subprocess.Popen(
            [str(pgbouncer_bin()), str(self.data_dir / "pgbouncer.ini")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            **run_as.popen_kwargs(),
        )
        _wait_for_port(self.port, self._proc, "PgBouncer")
        log.info("pgbouncer_started", port=self.port, postgres_port=self.postgres_port)
        return self.url

    def show(self, what: str) -> list[dict[str, str]]:
        """`SHOW <what>` on the admin console (POOLS, STATS, CLIENTS, ...), one dict per row. psql,
        because the console speaks only the simple query protocol."""
        console = ["-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", "pgbouncer"]
        r = subprocess.run(
            [
                str(postgres_bin_dir() / "psql"),
                *console,
                "-AF",
                "\t",
                "-P",
                "footer=off",
                "-c",
                f"SHOW {what}",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        header, *rows = r.stdout.splitlines()
        return [dict(zip(header.split("\t"), row.split("\t"), strict=True)) for row in rows]

    def stop(self) -> None:
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.terminate()  # SIGTERM: PgBouncer's immediate shutdown
        try:
            self._proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        log.info("pgbouncer_stopped")


def start_pgbouncer(
    postgres: EmbeddedPostgres, data_dir: Path | None = None, port: int = 0
) -> EmbeddedPgBouncer:
    """A started PgBouncer in front of a started `postgres` (its data beside PostgreSQL's by default)."""
    bouncer = EmbeddedPgBouncer(
        data_dir or postgres.data_dir.parent / "pgbouncer", postgres.port, postgres.database, port
    )
    bouncer.start()
    return bouncer
