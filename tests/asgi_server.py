"""A real `uvicorn syncproject.asgi:application` (the documented ASGI server) for tests that need
server-sent events: on a socket bound here to a free port, against the test database.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from tests.browser import wait_until
from tests.conftest import PROJECT_DIR, database_url


@dataclass
class Uvicorn:
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def env_on_test_database(**extra: str) -> dict[str, str]:
    """This process's environment on the test database (as `subprocess_env`), plus `extra`."""
    return {
        **os.environ,
        "DATABASE_URL": database_url(),
        "PYTHONPATH": str(PROJECT_DIR),
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


@contextmanager
def uvicorn_server(env: dict[str, str], log_dir: Path) -> Iterator[Uvicorn]:
    """uvicorn on this test database (`env` from the `subprocess_env` fixture), stopped at the end."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    port = listener.getsockname()[1]
    log_path = log_dir / "uvicorn.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "syncproject.asgi:application", "--fd", str(listener.fileno())],
            env={"DJANGO_DEBUG": "0", **env},
            cwd=PROJECT_DIR,
            stdout=log,
            stderr=subprocess.STDOUT,
            pass_fds=(listener.fileno(),),
            start_new_session=True,
        )
    listener.close()
    server = Uvicorn(port, log_path)
    try:
        wait_until(lambda: "Uvicorn running" in server.log(), timeout=30, what="uvicorn")
        yield server
    finally:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
