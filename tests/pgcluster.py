"""A private PostgreSQL for the tests that restart, stop and crash the server under a job.

An `initdb` cluster in a temporary folder, on a free TCP port chosen at run time, started with
the machine's own PostgreSQL binaries (Debian's /usr/lib/postgresql/<version>/bin, else
pgserver's bundled ones). Never the shared server: `pg_ctl -m immediate restart` on that
would hit every other session. Run as root, the server runs as the `postgres` system user (or
pgserver's own): PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest


def postgres_bin_dir() -> Path:
    """The newest Debian PostgreSQL's bin folder, else pgserver's."""
    debian = sorted(
        (p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "initdb").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if debian:
        return debian[-1]
    from pgserver._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def server_user() -> str | None:
    """None (this user) unless root: then Debian's `postgres` user, else pgserver's own."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres").pw_name
    except KeyError:
        from pgserver.utils import ensure_user_exists

        ensure_user_exists("pgserver")
        return "pgserver"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class PgCluster:
    """One private PostgreSQL server: start, stop, crash-restart it; its URL for Django."""

    root: Path
    bin_dir: Path = field(default_factory=postgres_bin_dir)
    port: int = field(default_factory=free_port)
    database: str = "batchsync_faults"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_path(self) -> Path:
        return self.root / "server.log"

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{self.database}"

    def django_settings(self) -> dict[str, Any]:
        return {"HOST": "127.0.0.1", "PORT": str(self.port), "NAME": self.database, "USER": "postgres"}

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bin_dir / args[0]), *args[1:]],
            user=server_user(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
            cwd=self.root,
        )

    def init(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        user = server_user()
        if user is not None:
            entry = pwd.getpwnam(user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.data_dir), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": "''",
            "max_connections": "60",
            "shared_buffers": "32MB",
            "fsync": "on",  # a crash must lose exactly what a real one would
            "logging_collector": "off",
        }
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())
        self.start()
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", self.database)

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_path), "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "-t", "60", "stop")

    def crash_restart(self) -> None:
        """`pg_ctl -m immediate restart`: every session dies, unflushed commits are lost."""
        self._run(
            "pg_ctl",
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_path),
            "-m",
            "immediate",
            "-w",
            "-t",
            "60",
            "restart",
        )

    def is_running(self) -> bool:
        try:
            self._run("pg_ctl", "-D", str(self.data_dir), "status")
        except subprocess.CalledProcessError:
            return False
        return True

    def ensure_running(self) -> None:
        if not self.is_running():
            self.start()

    def destroy(self) -> None:
        if self.data_dir.exists() and self.is_running():
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def wait_for_server(cluster: PgCluster, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not cluster.is_running():
        if time.monotonic() > deadline:
            log = cluster.log_path.read_text()[-2000:]
            raise AssertionError(f"private PostgreSQL did not come back:\n{log}")
        time.sleep(0.1)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """A private PostgreSQL server for the session; tests may restart, stop and crash it."""
    cluster = PgCluster(Path(tempfile.mkdtemp(prefix="batchsync-pg-")))
    cluster.init()
    try:
        yield cluster
    finally:
        cluster.destroy()
