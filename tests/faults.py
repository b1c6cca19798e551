"""Helpers for the fault, control, parallel and broker tests: real worker processes (the
foreground runner and `qcluster`), the fault source's events, a committed-load log kept by a
trigger, and the comparison of loaded days with a clean run. No mocks: real PostgreSQL, real
processes, real signals.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from django.db import connection, transaction

from batchsync.conf import get_settings
from batchsync.models import SyncJob
from batchsync.sources.base import BAR_COLUMNS
from batchsync.sources.demo import demo_day_csv

PROJECT_DIR = Path(__file__).resolve().parent.parent
MANAGE_PY = str(PROJECT_DIR / "manage.py")
EXTRA_SOURCES = "fault=tests.faultsource.FaultSource,latency=batchsync.sources.latency.LatencySource"
LEASE_SECONDS = 2.0
BACKOFF_SECONDS = 0.05
ARTIFACTS = PROJECT_DIR / "artifacts" / "reliability"

T = TypeVar("T")


def register_test_sources(settings: Any, **overrides: Any) -> None:
    """In this process: the fault and latency sources, short leases and backoffs."""
    sources = {
        **get_settings().sources,
        "fault": "tests.faultsource.FaultSource",
        "latency": "batchsync.sources.latency.LatencySource",
    }
    settings.BATCHSYNC = {
        **settings.BATCHSYNC,
        "SOURCES": sources,
        "LEASE_SECONDS": LEASE_SECONDS,
        "SOURCE_RETRY_BACKOFF_SECONDS": BACKOFF_SECONDS,
        **overrides,
    }


def worker_env(base: dict[str, str], **extra: str) -> dict[str, str]:
    """Environment of a worker subprocess: this test database, test sources, short leases.

    The ORM broker's queue lives in the test database, so the cluster's name stays the one this
    process enqueues under; a Redis test passes its own BATCHSYNC_Q_NAME to isolate itself.
    """
    env = dict(base)
    env.update(
        {
            "BATCHSYNC_EXTRA_SOURCES": EXTRA_SOURCES,
            "BATCHSYNC_LEASE_SECONDS": str(LEASE_SECONDS),
            "BATCHSYNC_SOURCE_RETRY_BACKOFF": str(BACKOFF_SECONDS),
            "BATCHSYNC_LOG_LEVEL": "INFO",
            "DJANGO_DEBUG": "0",
        }
    )
    env.pop("REDIS_URL", None)
    env.update(extra)
    return env


def wait_until(
    predicate: Callable[[], T | None],
    *,
    timeout: float = 30.0,
    interval: float = 0.05,
    what: str = "condition",
) -> T:
    """Poll `predicate` until it returns something truthy; fail the test after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def job_now(job: SyncJob | int) -> SyncJob:
    return SyncJob.objects.get(pk=job if isinstance(job, int) else job.pk)


def wait_for_status(job: SyncJob | int, *statuses: str, timeout: float = 60.0) -> SyncJob:
    def reached() -> SyncJob | None:
        current = job_now(job)
        return current if current.status in statuses else None

    return wait_until(reached, timeout=timeout, what=f"job status in {statuses}")


# --- processes -------------------------------------------------------------------------------


@dataclass
class Process:
    """A `manage.py` subprocess in its own process group, its output in a log file."""

    args: list[str]
    env: dict[str, str]
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        handle = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            [sys.executable, MANAGE_PY, *self.args],
            env=self.env,
            cwd=PROJECT_DIR,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        handle.close()
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait(self, timeout: float = 60.0) -> int:
        assert self.popen is not None
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.args} did not exit in {timeout}s:\n{self.log()[-3000:]}") from None

    def stop(self) -> None:
        """SIGKILL the whole group (a cluster's workers too): the test is over, no need to be nice."""
        if self.popen is None:
            return
        _kill_group(self.popen.pid, signal.SIGKILL)
        with suppress(subprocess.TimeoutExpired):
            self.popen.wait(10)


def _kill_group(pid: int | None, sig: signal.Signals) -> None:
    if pid is None:
        return
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def run_manage(
    args: list[str], env: dict[str, str], *, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """Run a `manage.py` command to completion and return its result."""
    return subprocess.run(
        [sys.executable, MANAGE_PY, *args],
        env=env,
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@contextmanager
def qcluster(env: dict[str, str], log_path: Path, *, workers: int = 2) -> Iterator[Process]:
    """A real `manage.py qcluster` with `workers` worker processes, stopped on exit."""
    cluster = Process(["qcluster"], {**env, "BATCHSYNC_Q_WORKERS": str(workers)}, log_path).start()
    try:
        # "Q Cluster <name> [<queue>] running." (translated with the active language).
        wait_until(
            lambda: any(word in cluster.log() for word in ("running.", "正在运行")),
            timeout=60,
            what="qcluster to start",
        )
        yield cluster
    finally:
        cluster.stop()


def worker_pid(worker_id: str) -> int:
    """The process id inside a worker id (host:pid:random)."""
    return int(worker_id.split(":")[-2])


# --- the fault source's events ---------------------------------------------------------------


@dataclass
class Events:
    """The fault source's event lines: `<event> <date> <pid> <time>`."""

    marker_dir: Path

    def lines(self) -> list[tuple[str, str, int]]:
        path = self.marker_dir / "events"
        if not path.exists():
            return []
        rows = []
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 4:
                rows.append((parts[0], parts[1], int(parts[2])))
        return rows

    def count(self, event: str, date: dt.date | None = None) -> int:
        return sum(1 for e, d, _ in self.lines() if e == event and (date is None or d == date.isoformat()))

    def wait(self, event: str, date: dt.date | None = None, *, nth: int = 1, timeout: float = 30.0) -> int:
        """Wait for the nth `event` (on `date`); return the pid of the process that had it."""

        def seen() -> int | None:
            pids = [p for e, d, p in self.lines() if e == event and (date is None or d == date.isoformat())]
            return pids[nth - 1] if len(pids) >= nth else None

        return wait_until(seen, timeout=timeout, interval=0.02, what=f"event {event} {date}")


def fault_options(marker_dir: Path, **options: Any) -> dict[str, Any]:
    marker_dir.mkdir(parents=True, exist_ok=True)
    return {"marker_dir": str(marker_dir), **options}


def fault_env(env: dict[str, str], options: dict[str, Any]) -> dict[str, str]:
    """Fault options for a `batch_sync --source fault` subprocess (the command has no --option)."""
    return {**env, "BATCHSYNC_FAULTS": json.dumps(options)}


# --- what was committed, and is it a clean run? ----------------------------------------------


@dataclass(frozen=True)
class Load:
    trade_date: dt.date
    rows: int
    application_name: str


@dataclass
class LoadLog:
    """Every COMMITTED load of a day, written by a statement trigger in the loading transaction.

    A rolled-back load (killed worker, terminated connection, fenced worker) leaves no line;
    `application_name` is the loading worker's id (runners tag their sessions with it).
    """

    def loads(self) -> list[Load]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT trade_date, n, app FROM bs_load_log ORDER BY id")
            return [Load(*row) for row in cursor.fetchall()]

    def per_day(self) -> dict[dt.date, int]:
        counts: dict[dt.date, int] = {}
        for load in self.loads():
            counts[load.trade_date] = counts.get(load.trade_date, 0) + 1
        return counts

    def clear(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE bs_load_log")


LOAD_LOG_SQL = """
CREATE TABLE IF NOT EXISTS bs_load_log (
    id bigserial PRIMARY KEY, trade_date date NOT NULL, n bigint NOT NULL, app text NOT NULL
);
TRUNCATE bs_load_log;
CREATE OR REPLACE FUNCTION bs_log_load() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO bs_load_log (trade_date, n, app)
    SELECT trade_date, count(*), current_setting('application_name') FROM new_rows GROUP BY trade_date;
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS bs_load_log ON daily_bar;
CREATE TRIGGER bs_load_log AFTER INSERT ON daily_bar REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION bs_log_load();
"""


@contextmanager
def load_log() -> Iterator[LoadLog]:
    with connection.cursor() as cursor:
        cursor.execute(LOAD_LOG_SQL)
    try:
        yield LoadLog()
    finally:
        with connection.cursor() as cursor:
            cursor.execute(
                "DROP TRIGGER IF EXISTS bs_load_log ON daily_bar; DROP TABLE IF EXISTS bs_load_log"
            )


@dataclass(frozen=True)
class Comparison:
    """Loaded rows against a clean run of the demo bars for the same days."""

    expected: int
    actual: int
    lost: int  # rows of the clean run missing or different
    extra: int  # rows that a clean run would not have (duplicates, partial or stale data)


def compare_with_clean_run(days: Iterable[dt.date]) -> Comparison:
    """Compare `daily_bar` on `days` with the demo source's bars, row by row, in PostgreSQL."""
    days = sorted(days)
    columns = ", ".join(BAR_COLUMNS)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE clean_bar (LIKE daily_bar) ON COMMIT DROP")
        with cursor.copy(f"COPY clean_bar ({columns}) FROM STDIN (FORMAT csv, HEADER true)") as copy:
            for day in days:
                # One header for the whole stream: drop each day's header but the first.
                data = demo_day_csv(day)
                copy.write(data if day == days[0] else data.split(b"\n", 1)[1])
        cursor.execute("SELECT count(*) FROM clean_bar")
        (expected,) = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM daily_bar WHERE trade_date = ANY(%s)", [days])
        (actual,) = cursor.fetchone()
        cursor.execute(
            f"SELECT count(*) FROM (SELECT {columns} FROM clean_bar EXCEPT ALL "
            f"SELECT {columns} FROM daily_bar WHERE trade_date = ANY(%s)) lost",
            [days],
        )
        (lost,) = cursor.fetchone()
        cursor.execute(
            f"SELECT count(*) FROM (SELECT {columns} FROM daily_bar WHERE trade_date = ANY(%s) "
            f"EXCEPT ALL SELECT {columns} FROM clean_bar) extra",
            [days],
        )
        (extra,) = cursor.fetchone()
    return Comparison(expected=expected, actual=actual, lost=lost, extra=extra)


def assert_clean(days: Iterable[dt.date]) -> Comparison:
    """The days hold exactly the rows of a clean run: nothing lost, nothing extra."""
    result = compare_with_clean_run(days)
    assert result.expected > 0
    assert (result.lost, result.extra, result.actual) == (0, 0, result.expected), result
    return result


def bar_count(day: dt.date) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM daily_bar WHERE trade_date = %s", [day])
        (count,) = cursor.fetchone()
    return int(count)


# --- figures for docs/reliability.md ---------------------------------------------------------


@dataclass
class Ledger:
    """What one fault test injected and what came out; written to artifacts/reliability/."""

    scenario: str
    faults: dict[str, int] = field(default_factory=dict)
    jobs_completed: int = 0
    rows_checked: int = 0
    rows_lost: int = 0
    rows_extra: int = 0
    recovery_seconds: list[float] = field(default_factory=list)

    def fault(self, kind: str, count: int = 1) -> None:
        self.faults[kind] = self.faults.get(kind, 0) + count

    def recovered_in(self, seconds: float) -> None:
        """From the fault to the job's end (or the takeover that ended it)."""
        self.recovery_seconds.append(round(seconds, 1))

    def checked(self, comparison: Comparison) -> None:
        self.rows_checked += comparison.expected
        self.rows_lost += comparison.lost
        self.rows_extra += comparison.extra

    def write(self) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        name = "".join(c if c.isalnum() or c in "-_" else "_" for c in self.scenario)
        (ARTIFACTS / f"{name}.json").write_text(json.dumps(self.__dict__, indent=1, sort_keys=True))
