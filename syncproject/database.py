"""Database configuration: `DATABASE_URL` when set, else an embedded PostgreSQL (pgserver)."""

from __future__ import annotations

import atexit
import os
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import dj_database_url

# Kept alive for the life of the process: pgserver stops the embedded server when the last
# process holding a handle exits, and keeps the data folder for the next start.
_embedded_server: Any = None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


def _forget_dead_handles(data_dir: Path) -> None:
    """Drop from pgserver's handle list the processes that died without its exit hook.

    pgserver stops the server when the last process holding a handle exits, counting the
    handles in `<data_dir>/.handle_pids.json`. A process killed before its atexit hook ran
    (SIGKILL, an unhandled SIGTERM, a timeout) stays in that list for ever, and then no later
    process ever stops the server: it would run until the machine reboots.
    """
    from pgserver.postgres_server import PostgresServer
    from pgserver.utils import DiskList

    handles = DiskList(data_dir / ".handle_pids.json")
    with PostgresServer._lock:  # the lock pgserver itself takes to read and write the list
        pids = handles.get()
        alive = [pid for pid in pids if _pid_alive(pid)]
        if alive != pids:
            handles.put(alive)


def embedded_database_config(data_dir: Path) -> dict[str, Any]:
    """Start (or attach to) the embedded PostgreSQL in `data_dir` and return its Django config."""
    global _embedded_server
    # pgserver asks platformdirs for a runtime dir; without XDG_RUNTIME_DIR (root, CI) it
    # falls back to /tmp and warns on every command. The fallback is fine.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    from pgserver.postgres_server import get_server  # lazily: only the zero-setup path needs it

    data_dir = data_dir.expanduser().resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    if _embedded_server is None:
        _forget_dead_handles(data_dir)
        _embedded_server = get_server(data_dir, cleanup_mode="stop")
        # atexit runs hooks last-in first-out: this one runs just before pgserver's own, so
        # pgserver sees only live handles when it decides whether this process is the last.
        atexit.register(_forget_dead_handles, data_dir)
    uri = urlparse(_embedded_server.get_uri())
    query = parse_qs(uri.query)
    host = query.get("host", [uri.hostname or ""])[0]
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": (uri.path or "/postgres").lstrip("/") or "postgres",
        "USER": uri.username or "postgres",
        "PASSWORD": uri.password or "",
        "HOST": host,
        "PORT": str(uri.port or ""),
        "CONN_MAX_AGE": 0,
    }


def database_config(base_dir: Path) -> dict[str, Any]:
    """Return the `default` database: `DATABASE_URL` if set, else the embedded server."""
    url = os.environ.get("DATABASE_URL", "").strip()
    if url:
        return dict(dj_database_url.parse(url, conn_max_age=0))
    data_dir = Path(os.environ.get("BATCHSYNC_PGDATA", base_dir / ".pgdata"))
    return embedded_database_config(data_dir)
