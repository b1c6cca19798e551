"""The foreground command under server faults, on a PostgreSQL these tests crash, stop and restart.

Issue 11's scenarios, each with the real `batch_sync` command in a subprocess and no cluster:
a crash-restart mid-run (`pg_ctl -m immediate restart`: claims committed without a WAL flush
are lost), a worker frozen past its lease, an outage shorter and one longer than the outage
window, a killed run taken over by a rerun of the same command, and a day longer than the
lease. Each ends with the job succeeded (or exit 75, resumable, and then finished by a rerun);
never a `running` job with exit 0. Rows are compared with a clean run; the load log shows every
day committed once.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest
from django.db import connections

from batchsync import dispatch, services
from batchsync.models import SyncDay, SyncDayStatus, SyncJob, SyncJobStatus
from tests.conftest import PROJECT_DIR
from tests.faults import (
    Events,
    Ledger,
    LoadLog,
    Process,
    assert_clean,
    fault_env,
    fault_options,
    load_log,
    register_test_sources,
    run_manage,
    wait_until,
    worker_env,
)
from tests.pgcluster import PgCluster

pytestmark = [pytest.mark.slow]

SEP_1, SEP_12 = dt.date(2025, 9, 1), dt.date(2025, 9, 12)
TWO_WEEKS = [SEP_1 + dt.timedelta(days=n) for n in range(12) if (SEP_1 + dt.timedelta(days=n)).weekday() < 5]
RANGE = ["--start", SEP_1.isoformat(), "--end", SEP_12.isoformat(), "--source", "fault", "--force"]
TABLES = "batchsync_syncerror, batchsync_syncday, batchsync_syncjob, daily_bar, django_q_ormq, django_q_task"


@pytest.fixture(scope="session")
def migrated_cluster(pg_cluster: PgCluster) -> PgCluster:
    """The private server with batchsync's tables and the trading calendar, once per session."""
    env = {**os.environ, "DATABASE_URL": pg_cluster.url, "PYTHONPATH": str(PROJECT_DIR)}
    for args in (
        ["migrate", "--noinput"],
        ["batch_sync", "plan", "--start", "2025-09-01", "--end", "2025-09-01"],
    ):
        done = subprocess.run(
            [sys.executable, str(PROJECT_DIR / "manage.py"), *args],
            env=env,
            cwd=PROJECT_DIR,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]
    return pg_cluster


@pytest.fixture
def server(migrated_cluster: PgCluster, django_db_blocker: Any, settings: Any) -> Iterator[PgCluster]:
    """This test's Django connection on the private server, emptied of jobs and bars."""
    register_test_sources(settings)
    database = connections["default"]
    saved = dict(database.settings_dict)
    with django_db_blocker.unblock():
        with suppress(Exception):
            database.close()
        migrated_cluster.ensure_running()
        database.settings_dict.update(migrated_cluster.django_settings())
        with database.cursor() as cursor:
            cursor.execute(f"TRUNCATE {TABLES} CASCADE")
        try:
            yield migrated_cluster
        finally:
            migrated_cluster.ensure_running()
            with suppress(Exception):
                database.close()
            database.settings_dict.clear()
            database.settings_dict.update(saved)


@pytest.fixture
def loads(server: PgCluster) -> Iterator[LoadLog]:
    with load_log() as log:
        yield log
        server.ensure_running()
        reconnect()  # a restart during the test broke this process's connection


@pytest.fixture
def env(server: PgCluster) -> dict[str, str]:
    base = {**os.environ, "DATABASE_URL": server.url, "PYTHONPATH": str(PROJECT_DIR), "PYTHONUNBUFFERED": "1"}
    return worker_env(base)


def reconnect() -> None:
    """After a restart this process's own connection is gone too."""
    with suppress(Exception):
        connections["default"].close()


def only_job() -> SyncJob:
    reconnect()
    return SyncJob.objects.get()


def assert_finished_exactly_once(job: SyncJob, loads: LoadLog, ledger: Ledger) -> None:
    assert job.status == SyncJobStatus.SUCCEEDED
    assert (job.success_days, job.failed_days, job.rows_loaded) == (len(TWO_WEEKS), 0, len(TWO_WEEKS) * 5500)
    ledger.checked(assert_clean(TWO_WEEKS))
    assert loads.per_day() == dict.fromkeys(TWO_WEEKS, 1)  # every day committed exactly once
    ledger.jobs_completed += 1


# --- 1 and 3. the server crashes and restarts mid-run ---------------------------------------------


@pytest.mark.parametrize("parallelism", [1, 2])
def test_server_crash_restart_mid_run_the_foreground_run_still_succeeds(
    tmp_path: Path, env: dict[str, str], server: PgCluster, loads: LoadLog, ledger: Ledger, parallelism: int
) -> None:
    options = fault_options(tmp_path / "m", copy_pause=0.3)
    events = Events(tmp_path / "m")
    command = Process(
        ["batch_sync", *RANGE, "--parallelism", str(parallelism)],
        fault_env(env, options),
        tmp_path / "run.log",
    ).start()
    events.wait("copy", nth=3)
    started = time.monotonic()
    server.crash_restart()
    ledger.fault("pg_ctl -m immediate restart mid-run")
    code = command.wait(90)
    ledger.recovered_in(time.monotonic() - started)
    log = command.log()
    assert code == 0, log[-4000:]
    assert "Traceback" not in log, log[-4000:]
    assert "event=db_reconnected" in log, log[-4000:]
    job = only_job()
    assert f"Job {job.task_id} succeeded" in log
    assert_finished_exactly_once(job, loads, ledger)


# --- 1. a foreground worker frozen past its lease, its day released, then woken -------------------


def test_worker_frozen_past_its_lease_wakes_reclaims_and_finishes_the_job(
    tmp_path: Path, env: dict[str, str], loads: LoadLog, ledger: Ledger
) -> None:
    slow = TWO_WEEKS[2]
    options = fault_options(tmp_path / "m", fetch_delay=1.0, delay_dates=[slow.isoformat()], delay_attempts=1)
    events = Events(tmp_path / "m")
    command = Process(
        ["batch_sync", *RANGE, "--parallelism", "1"], fault_env(env, options), tmp_path / "run.log"
    )
    command.start()
    pid = events.wait("fetch", slow)
    os.kill(pid, signal.SIGSTOP)
    ledger.fault("SIGSTOP of the foreground run past its lease")
    started = time.monotonic()
    try:
        job = only_job()

        @dispatch.handoff(foreground=True)
        def released() -> bool:
            # What any start does first (the reaper): once the frozen worker's lease has run
            # out, its day goes back to pending. The woken worker's fence then fails: LeaseLost.
            services.sync_jobs_recover_stalled()
            return SyncDay.objects.get(job=job, date=slow).status == SyncDayStatus.PENDING

        wait_until(released, timeout=15, interval=0.2, what="the frozen run's day to be released")
    finally:
        os.kill(pid, signal.SIGCONT)
    code = command.wait(60)
    ledger.recovered_in(time.monotonic() - started)
    log = command.log()
    assert "event=lease_lost" in log, log[-4000:]
    assert code == 0, log[-4000:]
    job = only_job()
    assert SyncDay.objects.get(job=job, date=slow).attempts == 2
    assert_finished_exactly_once(job, loads, ledger)


# --- 2. the database is stopped for a while -------------------------------------------------------


def test_outage_shorter_than_the_window_the_workers_reconnect_and_the_job_succeeds(
    tmp_path: Path, env: dict[str, str], server: PgCluster, loads: LoadLog, ledger: Ledger
) -> None:
    options = fault_options(tmp_path / "m", copy_pause=0.3)
    events = Events(tmp_path / "m")
    command = Process(
        ["batch_sync", *RANGE, "--parallelism", "2"],
        fault_env({**env, "BATCHSYNC_OUTAGE_SECONDS": "30", "BATCHSYNC_RECONNECT_BACKOFF_MAX": "1"}, options),
        tmp_path / "run.log",
    ).start()
    events.wait("copy", nth=3)
    server.stop("fast")
    started = time.monotonic()
    ledger.fault("PostgreSQL stopped for 6 s")
    time.sleep(6)
    server.start()
    code = command.wait(90)
    ledger.recovered_in(time.monotonic() - started)
    log = command.log()
    assert code == 0, log[-4000:]
    assert "Traceback" not in log, log[-4000:]
    assert log.count("event=db_reconnect ") >= 3  # a line per attempt while the server was down
    assert_finished_exactly_once(only_job(), loads, ledger)


def test_outage_longer_than_the_window_stops_cleanly_and_a_rerun_finishes_the_job(
    tmp_path: Path, env: dict[str, str], server: PgCluster, loads: LoadLog, ledger: Ledger
) -> None:
    options = fault_options(tmp_path / "m", copy_pause=0.3)
    events = Events(tmp_path / "m")
    short = {**env, "BATCHSYNC_OUTAGE_SECONDS": "3", "BATCHSYNC_RECONNECT_BACKOFF_MAX": "0.5"}
    command = Process(
        ["batch_sync", *RANGE, "--parallelism", "2"], fault_env(short, options), tmp_path / "run.log"
    ).start()
    events.wait("copy", nth=3)
    server.stop("fast")
    started = time.monotonic()
    ledger.fault("PostgreSQL stopped longer than the outage window")
    code = command.wait(60)
    log = command.log()
    assert code == 75, log[-4000:]
    assert "Traceback" not in log, log[-4000:]
    assert "is unfinished: the database was unreachable" in log, log[-4000:]
    assert "batch_sync resume" in log and "rerun the same command" in log
    server.start()
    job = only_job()
    assert job.status == SyncJobStatus.RUNNING  # resumable: the rerun below takes it over
    rerun = rerun_until_it_takes_over(fault_env(env, options), timeout=30)
    ledger.recovered_in(time.monotonic() - started)
    assert f"Taking over job {job.task_id}" in rerun.stdout, rerun.stdout + rerun.stderr
    job = only_job()
    assert_finished_exactly_once(job, loads, ledger)


def rerun_until_it_takes_over(
    env: dict[str, str], *, every: float = 1.0, timeout: float = 40.0
) -> subprocess.CompletedProcess[str]:
    """Rerun the same command every `every` seconds until it is not refused; return that run."""
    deadline = time.monotonic() + timeout
    while True:
        began = time.monotonic()
        result = run_manage(["batch_sync", *RANGE], env, timeout=120)
        if result.returncode != 2:
            assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
            return result
        assert "A sync job is already running" in result.stderr, result.stderr[-3000:]
        assert time.monotonic() < deadline, result.stderr[-3000:]
        time.sleep(max(0.0, every - (time.monotonic() - began)))


# --- 4. a killed foreground run is taken over by a rerun of the same command ----------------------


def test_killed_foreground_run_is_taken_over_by_a_rerun_within_the_lease(
    tmp_path: Path, env: dict[str, str], settings: Any, loads: LoadLog, ledger: Ledger
) -> None:
    lease = 5.0
    settings.BATCHSYNC = {**settings.BATCHSYNC, "LEASE_SECONDS": lease}
    options = fault_options(tmp_path / "m", copy_pause=0.3)
    events = Events(tmp_path / "m")
    slow_env = fault_env({**env, "BATCHSYNC_LEASE_SECONDS": str(lease)}, options)
    command = Process(["batch_sync", *RANGE, "--parallelism", "2"], slow_env, tmp_path / "run.log").start()
    events.wait("copy", nth=4)
    os.kill(command.pid, signal.SIGKILL)
    killed = time.monotonic()
    assert command.wait() == -signal.SIGKILL
    ledger.fault("kill -9 of the foreground run")
    job = only_job()

    # Another range is refused, naming the job, its progress, its worker and the ways on.
    other = run_manage(["batch_sync", "--start", "2025-09-15", "--end", "2025-09-16"], slow_env)
    assert other.returncode == 2, other.stderr
    line = other.stderr.strip().splitlines()[-1]
    for fact in (job.task_id, "running", f"/{job.total_days} days", "was last seen", "s ago"):
        assert fact in line, line
    for way in (f"batch_sync resume {job.task_id}", "--queue", "qcluster"):
        assert way in line, line

    # The same command, rerun every 5 s: refused with the time left until the lease ends,
    # then it takes the job over and finishes it.
    result = rerun_until_it_takes_over(slow_env, every=5.0, timeout=lease + 30)
    took = time.monotonic() - killed
    ledger.recovered_in(took)
    assert took <= lease + 30
    assert f"Taking over job {job.task_id}" in result.stdout, result.stdout
    reconnect()
    from django_q.models import OrmQ

    assert not OrmQ.objects.exists()  # nothing was queued for a cluster that does not exist
    job = only_job()
    assert job.recoveries == 0
    assert_finished_exactly_once(job, loads, ledger)


@pytest.mark.usefixtures("foreground")
def test_a_rerun_before_the_lease_ends_says_how_long_until_it_can_take_over(
    tmp_path: Path, env: dict[str, str], settings: Any
) -> None:
    settings.BATCHSYNC = {**settings.BATCHSYNC, "LEASE_SECONDS": 30.0}
    request = services.JobRequest(SEP_1, SEP_12, "fault", {}, reprocess="all", parallelism=1)
    job = services.sync_job_create(request)
    assert services.sync_job_join(job.pk, "gone:1:a") is not None  # its worker, then killed
    result = run_manage(["batch_sync", *RANGE], {**env, "BATCHSYNC_LEASE_SECONDS": "30"})
    assert result.returncode == 2, result.stdout + result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert "its lease runs out and a rerun of its command takes it over here" in line, line
    seconds = int(line.split("in ", 1)[1].split("s its lease", 1)[0])
    assert 20 <= seconds <= 30, line
    assert "gone:1:a was last seen" in line


# --- 5. a day longer than the lease is not taken from its live worker -----------------------------


def test_a_day_longer_than_the_lease_is_kept_by_its_live_worker(
    tmp_path: Path, env: dict[str, str], loads: LoadLog, ledger: Ledger
) -> None:
    slow = TWO_WEEKS[1]
    # Inside the day's transaction (mid-COPY) for 2.5 leases, while the sibling waits idle.
    options = fault_options(tmp_path / "m", copy_pause=5.0, delay_dates=[slow.isoformat()])
    command = Process(
        ["batch_sync", *RANGE, "--parallelism", "2"], fault_env(env, options), tmp_path / "run.log"
    ).start()
    code = command.wait(90)
    ledger.fault("a day 2.5 leases long, parallelism 2")
    log = command.log()
    assert code == 0, log[-4000:]
    assert "event=fenced" not in log, log[-4000:]
    job = only_job()
    day = SyncDay.objects.get(job=job, date=slow)
    assert day.attempts == 1  # loaded once, by the worker that claimed it
    assert_finished_exactly_once(job, loads, ledger)
