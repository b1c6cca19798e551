"""The zero-setup path: no DATABASE_URL, an embedded PostgreSQL (pgserver) in BATCHSYNC_PGDATA.

Every step is its own `manage.py` process, as a user's commands are: the server starts with
the first process that needs it, stops when the last one exits, and the data stays.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import PROJECT_DIR

TIMEOUT = 120
MANAGE = [sys.executable, str(PROJECT_DIR / "manage.py")]


def _servers(pgdata: Path) -> list[int]:
    """Pids of the postgres processes serving `pgdata` (read from /proc: no helper package)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"/postgres") and str(pgdata).encode() in argv:
            pids.append(int(entry.name))
    return pids


def _wait_until_stopped(pgdata: Path, seconds: float = 15) -> list[int]:
    deadline = time.monotonic() + seconds
    while (running := _servers(pgdata)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return running


@pytest.fixture
def pgdata(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "pgdata"
    try:
        yield directory
    finally:
        # Never leave a server behind, whatever the test did.
        for pid in _servers(directory):
            os.kill(pid, signal.SIGINT)  # fast shutdown
        for pid in _wait_until_stopped(directory, 10):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def embedded_env(pgdata: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env["BATCHSYNC_PGDATA"] = str(pgdata)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [*MANAGE, *args]
    return subprocess.run(
        command, env=env, cwd=PROJECT_DIR, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )


HOLD_CONNECTION = (
    "from django.db import connection; connection.ensure_connection(); "
    "print('up', flush=True); import time; time.sleep(120)"
)
COUNT_BARS = (
    "from batchsync.models import DailyBar, SyncJob; "
    "print(DailyBar.objects.filter(trade_date='2025-10-09').count(), "
    "list(SyncJob.objects.order_by('id').values_list('status', flat=True)))"
)


@pytest.mark.embedded
@pytest.mark.slow
def test_migrate_and_sync_on_the_embedded_server_and_the_data_outlives_each_process(
    pgdata: Path, embedded_env: dict[str, str]
) -> None:
    migrate = manage(embedded_env, "migrate", "-v", "0")
    assert migrate.returncode == 0, migrate.stderr
    assert (pgdata / "PG_VERSION").exists()  # initdb ran in the folder we chose
    assert _wait_until_stopped(pgdata) == []  # the last process left: the server stopped

    # The README's quick start: the national day holiday and the first trading day after it.
    sync = manage(embedded_env, "batch_sync", "--start", "2025-10-01", "--end", "2025-10-09")
    assert sync.returncode == 0, sync.stderr
    assert "Batch sync finished: 1 succeeded, 0 failed, 8 skipped" in sync.stdout
    assert _wait_until_stopped(pgdata) == []

    # A new process (a new server start) sees the same data.
    shell = manage(embedded_env, "shell", "--no-imports", "-c", COUNT_BARS)
    assert shell.returncode == 0, shell.stderr
    assert shell.stdout.strip().splitlines()[-1] == "5500 ['succeeded']"

    again = manage(embedded_env, "batch_sync", "--start", "2025-10-01", "--end", "2025-10-09")
    assert again.returncode == 0, again.stderr
    assert "Batch sync finished: 0 succeeded, 0 failed, 9 skipped" in again.stdout
    assert _wait_until_stopped(pgdata) == []


@pytest.mark.embedded
@pytest.mark.slow
def test_a_killed_process_does_not_keep_the_embedded_server_running_for_ever(
    pgdata: Path, embedded_env: dict[str, str]
) -> None:
    # A process that holds the server, then dies without its exit hooks (kill -9).
    errors = pgdata.parent / "holder.err"
    with errors.open("w") as stderr:
        holder = subprocess.Popen(
            [*MANAGE, "shell", "--no-imports", "-c", HOLD_CONNECTION],
            env=embedded_env,
            cwd=PROJECT_DIR,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "up", errors.read_text()[-3000:]
        assert _servers(pgdata)
    finally:
        holder.kill()
        holder.wait(timeout=TIMEOUT)
    assert _servers(pgdata)  # nobody stopped it: the dead process is still in pgserver's list

    # The next process forgets the dead one, so when it exits, it is the last, and stops the server.
    check = manage(embedded_env, "check")
    assert check.returncode == 0, check.stderr
    assert _wait_until_stopped(pgdata) == []
