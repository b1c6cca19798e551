"""Fault injection on real processes and real PostgreSQL: kill -9, SIGSTOP, terminated
connections, crashing sources, racing starts, transient errors. After every fault the loaded
days must be exactly those of a clean run: nothing lost, nothing duplicated, no partial day.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.db import connection
from django.utils import timezone, translation

from batchsync import dispatch, loader, runner, services
from batchsync.conf import get_settings
from batchsync.exceptions import SyncAlreadyRunning
from batchsync.models import SyncDay, SyncDayStatus, SyncError, SyncJob, SyncJobStatus
from tests.conftest import database_url
from tests.faults import (
    Events,
    Ledger,
    LoadLog,
    Process,
    assert_clean,
    bar_count,
    fault_env,
    fault_options,
    job_now,
    qcluster,
    register_test_sources,
    wait_for_status,
    wait_until,
    worker_env,
    worker_pid,
)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SEP_1, SEP_2, SEP_3, SEP_4, SEP_5 = (dt.date(2025, 9, d) for d in range(1, 6))
WEEK = [SEP_1, SEP_2, SEP_3, SEP_4, SEP_5]  # five trading days on XSHG


@pytest.fixture(autouse=True)
def _test_sources(settings: Any) -> None:
    register_test_sources(settings)


@pytest.fixture
def env(subprocess_env: dict[str, str]) -> dict[str, str]:
    return worker_env(subprocess_env)


@dispatch.handoff(foreground=True)
def fault_job(
    marker_dir: Path, start: dt.date = SEP_1, end: dt.date = SEP_5, *, parallelism: int = 1, **faults: Any
) -> SyncJob:
    """A job on the fault source, created here and run by whatever worker the test starts."""
    request = services.JobRequest(
        start_date=start,
        end_date=end,
        source="fault",
        source_options=fault_options(marker_dir, **faults),
        parallelism=parallelism,
        reprocess="all",
    )
    return services.sync_job_create(request)


def preload_partial(day: dt.date, rows: int) -> None:
    """Give `day` an older, smaller version of its bars (the first `rows` of the demo day)."""
    data = b"\n".join(loader_lines(day)[: rows + 1]) + b"\n"
    with connection.cursor() as cursor:
        from batchsync.sources.base import CsvPayload

        loader.replace_day(cursor, day, CsvPayload(chunks=[data], origin="preload"))


def loader_lines(day: dt.date) -> list[bytes]:
    from batchsync.sources.demo import demo_day_csv

    return demo_day_csv(day).rstrip(b"\n").split(b"\n")


# --- 1. kill -9 a worker in the middle of a day ------------------------------------------------


@pytest.mark.parametrize(
    ("point", "reloaded"),
    [
        ("fetch", False),  # before the day's transaction
        ("copy", False),  # DELETE done, a third of the rows sent to COPY
        ("copy", True),  # the same, on a day that already had (older) rows
    ],
)
def test_kill_9_foreground_worker_mid_day_then_another_worker_completes_the_job(
    tmp_path: Path, env: dict[str, str], loads: LoadLog, ledger: Ledger, point: str, reloaded: bool
) -> None:
    if reloaded:
        preload_partial(SEP_3, 1000)
        loads.clear()
    pause: dict[str, Any] = {"fetch_delay": 60} if point == "fetch" else {"copy_pause": 60}
    job = fault_job(tmp_path / "m", delay_dates=[SEP_3.isoformat()], delay_attempts=1, **pause)
    events = Events(tmp_path / "m")

    first = Process(["batch_sync", "work", job.task_id], env, tmp_path / "w1.log").start()
    assert events.wait(point, SEP_3) == first.pid
    os.kill(first.pid, signal.SIGKILL)
    assert first.wait() == -signal.SIGKILL
    ledger.fault(f"kill -9 at {point}")

    # Right after the kill: days before are whole, the day in flight is untouched.
    assert_clean([SEP_1, SEP_2])
    assert bar_count(SEP_3) == (1000 if reloaded else 0)
    assert bar_count(SEP_4) == bar_count(SEP_5) == 0
    day = SyncDay.objects.get(job=job, date=SEP_3)
    assert (day.status, day.attempts) == (SyncDayStatus.RUNNING, 1)

    # A second worker joins the stalled job and takes the day over once its lease runs out.
    second = Process(["batch_sync", "work", job.task_id], env, tmp_path / "w2.log").start()
    assert second.wait() == 0, second.log()
    job = job_now(job)
    assert job.status == SyncJobStatus.SUCCEEDED, second.log()
    assert (job.success_days, job.failed_days, job.rows_loaded) == (5, 0, 5 * 5500)
    day.refresh_from_db()
    assert (day.status, day.attempts, worker_pid(day.worker_id)) == (SyncDayStatus.SUCCEEDED, 2, second.pid)
    ledger.checked(assert_clean(WEEK))
    assert loads.per_day() == dict.fromkeys(WEEK, 1)  # every day committed exactly once
    ledger.jobs_completed += 1


def test_kill_9_cluster_worker_mid_copy_the_other_worker_takes_the_day_over(
    tmp_path: Path, env: dict[str, str], loads: LoadLog, ledger: Ledger
) -> None:
    preload_partial(SEP_2, 2000)
    loads.clear()
    job = fault_job(
        tmp_path / "m", parallelism=2, copy_pause=60, delay_dates=[SEP_2.isoformat()], delay_attempts=1
    )
    events = Events(tmp_path / "m")
    with qcluster(env, tmp_path / "cluster.log", workers=2) as cluster:
        dispatch.sync_job_enqueue_workers(job.pk, job.parallelism)
        victim = events.wait("copy", SEP_2)
        assert worker_pid(SyncDay.objects.get(job=job, date=SEP_2).worker_id) == victim
        os.kill(victim, signal.SIGKILL)
        ledger.fault("kill -9 qcluster worker mid-COPY")
        # The old rows of the day are intact the moment its loader dies.
        assert bar_count(SEP_2) == 2000
        job = wait_for_status(job, SyncJobStatus.SUCCEEDED, SyncJobStatus.FAILED, timeout=60)
        assert job.status == SyncJobStatus.SUCCEEDED, cluster.log()[-4000:]
    day = SyncDay.objects.get(job=job, date=SEP_2)
    assert day.attempts == 2 and worker_pid(day.worker_id) != victim
    assert (job.success_days, job.rows_loaded) == (5, 5 * 5500)
    ledger.checked(assert_clean(WEEK))
    assert loads.per_day() == dict.fromkeys(WEEK, 1)
    ledger.jobs_completed += 1


# --- 2. SIGSTOP a worker past its lease, let another finish, SIGCONT ----------------------------


@pytest.mark.parametrize("point", ["fetch", "copy"])
def test_worker_frozen_past_its_lease_commits_nothing_when_it_wakes(
    tmp_path: Path, env: dict[str, str], loads: LoadLog, ledger: Ledger, point: str
) -> None:
    pause: dict[str, Any] = {"fetch_delay": 1.5} if point == "fetch" else {"copy_pause": 1.5}
    job = fault_job(tmp_path / "m", parallelism=2, delay_dates=[SEP_2.isoformat()], delay_attempts=1, **pause)
    events = Events(tmp_path / "m")
    with qcluster(env, tmp_path / "cluster.log", workers=2) as cluster:
        dispatch.sync_job_enqueue_workers(job.pk, job.parallelism)
        frozen = events.wait(point, SEP_2)
        os.kill(frozen, signal.SIGSTOP)
        ledger.fault(f"SIGSTOP past the lease at {point}")
        frozen_worker = SyncDay.objects.get(job=job, date=SEP_2).worker_id
        assert worker_pid(frozen_worker) == frozen
        try:
            # The other worker loads the rest, waits out the frozen one's lease, fences it
            # (ends its sessions, which frees the day's row lock) and loads the day itself.
            job = wait_for_status(job, SyncJobStatus.SUCCEEDED, SyncJobStatus.FAILED, timeout=60)
            assert job.status == SyncJobStatus.SUCCEEDED, cluster.log()[-4000:]
        finally:
            os.kill(frozen, signal.SIGCONT)
        # The woken worker finishes its fetch or finds its connection gone, then stands down.
        wait_until(
            lambda: f"worker={frozen_worker} event=lease_lost" in cluster.log(),
            timeout=30,
            what="the woken worker to find its lease lost",
        )
    day = SyncDay.objects.get(job=job, date=SEP_2)
    assert day.attempts == 2 and day.worker_id != frozen_worker
    # The day it held was committed once, by the worker that took it over. (Before it froze,
    # the frozen worker may well have loaded another day: that load is its own, and counted once.)
    assert [load.application_name for load in loads.loads() if load.trade_date == SEP_2] == [day.worker_id]
    assert loads.per_day() == dict.fromkeys(WEEK, 1)
    job.refresh_from_db()
    assert (job.status, job.success_days, job.rows_loaded) == (SyncJobStatus.SUCCEEDED, 5, 5 * 5500)
    ledger.checked(assert_clean(WEEK))
    ledger.jobs_completed += 1


# --- 3. the loader's connection is terminated mid-COPY -------------------------------------------


def test_connection_terminated_mid_copy_the_day_is_retried_and_the_job_succeeds(
    tmp_path: Path, env: dict[str, str], loads: LoadLog, ledger: Ledger
) -> None:
    options = fault_options(tmp_path / "m", copy_pause=1.0, delay_dates=[SEP_3.isoformat()], delay_attempts=1)
    events = Events(tmp_path / "m")
    command = Process(
        ["batch_sync", "--start", "2025-09-01", "--end", "2025-09-05", "--source", "fault"],
        fault_env(env, options),
        tmp_path / "command.log",
    ).start()
    assert events.wait("copy", SEP_3) == command.pid
    # As if the server restarted under this worker: end every session it has (loader, heartbeat).
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name LIKE %s",
            [f"%:{command.pid}:%"],
        )
        (terminated,) = cursor.fetchone()
    assert terminated >= 1
    ledger.fault("pg_terminate_backend mid-COPY", terminated)
    assert command.wait() == 0, command.log()
    job = SyncJob.objects.get()
    assert (job.status, job.success_days, job.failed_days) == (SyncJobStatus.SUCCEEDED, 5, 0)
    day = SyncDay.objects.get(job=job, date=SEP_3)
    assert (day.status, day.attempts) == (SyncDayStatus.SUCCEEDED, 1)  # retried inside the claim
    retried = SyncError.objects.get(job=job, date=SEP_3)
    assert "(will retry)" in retried.error
    assert loads.per_day() == dict.fromkeys(WEEK, 1)
    ledger.checked(assert_clean(WEEK))
    ledger.jobs_completed += 1


# --- 4. fifty concurrent starts from several processes -------------------------------------------

START_SCRIPT = r"""
import datetime as dt, json, os, sys, threading, time
import django
django.setup()
from django.db import connection
from batchsync import calendars, services
from batchsync.exceptions import SyncAlreadyRunning

queue, go, threads = sys.argv[1] == "queue", sys.argv[2], int(sys.argv[3])
start, end = dt.date(2025, 10, 1), dt.date(2025, 10, 8)  # National Day: nothing to load
calendars.trading_days("XSHG", start, end)  # warm up before the race
open(go + f".ready.{os.getpid()}", "w").close()
results = []

def request(index):
    try:
        while not os.path.exists(go):
            time.sleep(0.001)
        job = services.sync_job_create(
            services.JobRequest(start_date=start, end_date=end, source="demo", source_options={},
                                queue=queue, priority=index % 3, requested_by=f"{os.getpid()}/{index}")
        )
        results.append(job.status)
    except SyncAlreadyRunning:
        results.append("refused")
    finally:
        connection.close()

workers = [threading.Thread(target=request, args=(i,)) for i in range(threads)]
for worker in workers:
    worker.start()
for worker in workers:
    worker.join()
print(json.dumps(results))
"""


def race_starts(tmp_path: Path, env: dict[str, str], *, queue: bool) -> list[str]:
    """50 start requests: 5 processes x 10 threads, released together by a file."""
    go = tmp_path / "go"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", START_SCRIPT, "queue" if queue else "refuse", str(go), "10"],
            env={**env, "DJANGO_SETTINGS_MODULE": "syncproject.settings"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(5)
    ]
    # Release them together once every process has imported Django and warmed its calendar.
    wait_until(lambda: len(list(tmp_path.glob("go.ready.*"))) == 5, timeout=60, what="5 ready processes")
    go.touch()
    results: list[str] = []
    for process in processes:
        out, err = process.communicate(timeout=90)
        assert process.returncode == 0, err[-3000:]
        results += json.loads(out.strip().splitlines()[-1])
    assert len(results) == 50
    return results


def test_fifty_concurrent_starts_exactly_one_runs_the_rest_are_refused(
    tmp_path: Path, env: dict[str, str], ledger: Ledger
) -> None:
    results = race_starts(tmp_path, env, queue=False)
    ledger.fault("concurrent start requests", 50)
    assert sorted(results).count("refused") == 49
    assert results.count(SyncJobStatus.PENDING) == 1
    assert SyncJob.objects.count() == 1


@pytest.mark.usefixtures("foreground")
def test_fifty_concurrent_starts_with_queue_one_runs_the_rest_queue_by_priority_then_age(
    tmp_path: Path, env: dict[str, str], ledger: Ledger
) -> None:
    results = race_starts(tmp_path, env, queue=True)
    ledger.fault("concurrent start requests (queue)", 50)
    assert results.count(SyncJobStatus.PENDING) == 1 and results.count(SyncJobStatus.QUEUED) == 49
    assert SyncJob.objects.active().count() == 1
    expected = list(SyncJob.objects.queued_in_order().values_list("pk", flat=True))
    # Drain the queue: each finished job hands the slot to the next queued one, never two at once.
    ran = []
    while (job := SyncJob.objects.active().first()) is not None:
        assert SyncJob.objects.active().count() == 1
        outcome = runner.sync_job_run(job.pk)
        assert outcome.job.status == SyncJobStatus.SUCCEEDED
        ran.append(job.pk)
    assert ran[1:] == expected
    assert SyncJob.objects.filter(status=SyncJobStatus.SUCCEEDED).count() == 50
    ledger.jobs_completed += 50


# --- 5. a source that kills its worker on one day, every time -------------------------------------


def test_a_day_that_kills_its_worker_every_time_fails_after_max_attempts_the_rest_loads(
    tmp_path: Path, env: dict[str, str], settings: Any, loads: LoadLog, ledger: Ledger
) -> None:
    job = fault_job(tmp_path / "m", crash_on=[SEP_3.isoformat()])
    events = Events(tmp_path / "m")
    attempts = get_settings().max_day_attempts
    with qcluster(env, tmp_path / "cluster.log", workers=1) as cluster:
        dispatch.sync_job_enqueue_workers(job.pk, job.parallelism)

        def finished() -> SyncJob | None:
            # What the reaper schedule does every minute, at test speed.
            services.sync_jobs_recover_stalled()
            current = job_now(job)
            return current if current.is_finished else None

        job = wait_until(finished, timeout=90, interval=0.3, what="the job to finish")
        assert job.status == SyncJobStatus.FAILED, cluster.log()[-4000:]
    ledger.fault("worker killed by its source", events.count("crash"))
    assert events.count("crash", SEP_3) == attempts
    assert job.recoveries >= attempts
    assert (job.success_days, job.failed_days, job.rows_loaded) == (4, 1, 4 * 5500)
    day = SyncDay.objects.get(job=job, date=SEP_3)
    assert (day.status, day.attempts) == (SyncDayStatus.FAILED, attempts)
    error = SyncError.objects.get(job=job, date=SEP_3)
    with translation.override(settings.LANGUAGE_CODE):  # the workers' language
        gave_up = translation.gettext(
            "The worker stopped during this day %(n)s times (killed or lost); giving up"
        ) % {"n": attempts}
    assert error.error == day.last_error == gave_up
    assert bar_count(SEP_3) == 0
    others = [SEP_1, SEP_2, SEP_4, SEP_5]
    ledger.checked(assert_clean(others))
    assert loads.per_day() == dict.fromkeys(others, 1)
    ledger.jobs_completed += 1


# --- transient and permanent source errors ---------------------------------------------------------


@pytest.mark.usefixtures("foreground")
def test_transient_source_errors_are_retried_with_backoff_then_the_day_loads(
    tmp_path: Path, settings: Any, ledger: Ledger
) -> None:
    settings.BATCHSYNC = {**settings.BATCHSYNC, "SOURCE_RETRIES": 3, "SOURCE_RETRY_BACKOFF_SECONDS": 0.2}
    job = fault_job(tmp_path / "m", SEP_1, SEP_2, transient=2)
    started = time.monotonic()
    outcome = runner.sync_job_run(job.pk)
    elapsed = time.monotonic() - started
    ledger.fault("transient source error", 4)
    assert outcome.job.status == SyncJobStatus.SUCCEEDED
    for day in SyncDay.objects.filter(job=job):
        assert (day.status, day.attempts) == (SyncDayStatus.SUCCEEDED, 1)
        errors = SyncError.objects.filter(job=job, date=day.date).order_by("created_at")
        assert [e.error.endswith("(will retry)") for e in errors] == [True, True]
        gap = (errors[1].created_at - errors[0].created_at).total_seconds()
        assert gap >= 0.2  # the first backoff (0.2s) separates the two attempts
    assert elapsed >= 2 * (0.2 + 0.4)  # each day waited 0.2s then 0.4s (exponential)
    ledger.checked(assert_clean([SEP_1, SEP_2]))
    ledger.jobs_completed += 1


@pytest.mark.usefixtures("foreground")
def test_transient_errors_beyond_the_retry_count_and_permanent_errors_fail_the_day(
    tmp_path: Path, settings: Any
) -> None:
    settings.BATCHSYNC = {**settings.BATCHSYNC, "SOURCE_RETRIES": 1}
    job = fault_job(tmp_path / "m", SEP_1, SEP_3, transient=5, fail_on=[SEP_2.isoformat()])
    outcome = runner.sync_job_run(job.pk)
    assert outcome.job.status == SyncJobStatus.FAILED
    days = {day.date: day for day in SyncDay.objects.filter(job=job)}
    assert all(day.status == SyncDayStatus.FAILED for day in days.values())
    # Transient: one retry, then the day fails with the last error.
    assert SyncError.objects.filter(job=job, date=SEP_1).count() == 2
    assert "timed out (fetch 2)" in days[SEP_1].last_error
    # Permanent: fails at once, no retry.
    assert [e.error for e in SyncError.objects.filter(job=job, date=SEP_2)] == [
        "fault: 2025-09-02 is refused by the source"
    ]
    assert bar_count(SEP_1) == bar_count(SEP_2) == 0


# --- the reaper --------------------------------------------------------------------------------


def queued_tasks() -> list[tuple[str, tuple[Any, ...]]]:
    """The django-q2 tasks waiting in the ORM broker (this test database): (function, args)."""
    from django_q.models import OrmQ

    return [(task.func(), tuple(task.task["args"])) for task in OrmQ.objects.order_by("id")]


def expire(job: SyncJob) -> None:
    """Put the job's and its running days' leases in the past, as if their workers died."""
    past = timezone.now() - dt.timedelta(seconds=1)
    SyncJob.objects.filter(pk=job.pk).update(lease_expires_at=past)
    SyncDay.objects.filter(job=job, status=SyncDayStatus.RUNNING).update(lease_expires_at=past)


def test_reaper_returns_a_dead_workers_days_and_enqueues_new_workers(tmp_path: Path) -> None:
    job = fault_job(tmp_path / "m", parallelism=2)
    fence = services.sync_job_join(job.pk, "dead:1:a")
    assert fence is not None
    claim = services.sync_day_claim(job.pk, "dead:1:a", fence)
    assert claim is not None
    assert services.sync_jobs_recover_stalled() == []  # leases still good: nothing to do
    expire(job)
    recovered = services.sync_jobs_recover_stalled()
    assert [j.pk for j in recovered] == [job.pk]
    job = job_now(job)
    assert (job.status, job.recoveries) == (SyncJobStatus.RUNNING, 1)
    day = SyncDay.objects.get(pk=claim.id)
    assert (day.status, day.attempts) == (SyncDayStatus.PENDING, 1)  # the attempt is counted
    assert queued_tasks() == [("batchsync.tasks.sync_job_work", (job.pk,))] * 2
    assert services.sync_jobs_recover_stalled() == []  # its lease was renewed for the new workers


@pytest.mark.usefixtures("foreground")
def test_a_foreground_start_leaves_a_stalled_job_for_takeover_and_queues_nothing(tmp_path: Path) -> None:
    """With no cluster to hand it to, the start's reaper pass must not make a dead job look alive."""
    job = fault_job(tmp_path / "m", parallelism=2)
    fence = services.sync_job_join(job.pk, "dead:1:a")
    assert fence is not None
    claim = services.sync_day_claim(job.pk, "dead:1:a", fence)
    assert claim is not None
    expire(job)
    request = services.JobRequest(SEP_1, SEP_2, "demo", {}, reprocess="all")
    with pytest.raises(SyncAlreadyRunning) as refused:
        services.sync_job_create(request)
    assert refused.value.job_id == job.pk
    facts = refused.value.facts
    assert facts is not None
    assert (facts["task_id"], facts["status"], facts["worker_id"]) == (job.task_id, "running", "dead:1:a")
    assert facts["takeover_in_seconds"] == 0  # its lease ran out and was not renewed
    job = job_now(job)
    assert job.lease_expires_at is not None and job.lease_expires_at < timezone.now()
    assert job.recoveries == 0 and queued_tasks() == []
    assert SyncDay.objects.get(pk=claim.id).status == SyncDayStatus.PENDING  # its day is free
    # The takeover: once, under the slot lock; a second taker is refused while the new lease runs.
    taken = services.sync_job_take_over(job.pk, "new:2:b")
    assert (taken.worker_id, taken.status) == ("new:2:b", SyncJobStatus.RUNNING)
    with pytest.raises(SyncAlreadyRunning) as again:
        services.sync_job_take_over(job.pk, "other:3:c")
    assert again.value.facts is not None and again.value.facts["takeover_in_seconds"] > 0
    outcome = runner.sync_job_run(job.pk, worker_id="new:2:b")
    assert outcome.job.status == SyncJobStatus.SUCCEEDED


@pytest.mark.usefixtures("foreground")
def test_reaper_finishes_a_stalled_pausing_or_cancelling_job_and_frees_the_slot(tmp_path: Path) -> None:
    for operation, final in (("pause", SyncJobStatus.PAUSED), ("cancel", SyncJobStatus.CANCELLED)):
        job = fault_job(tmp_path / operation)
        fence = services.sync_job_join(job.pk, "dead:1:a")
        assert fence is not None and services.sync_day_claim(job.pk, "dead:1:a", fence) is not None
        # Its worker is alive when asked to stop (it has a session), then dies before its day ends.
        with psycopg.connect(database_url(), application_name="dead:1:a"):
            job = getattr(services, f"sync_job_{operation}")(job)
        assert job.status in (SyncJobStatus.PAUSING, SyncJobStatus.CANCELLING)  # a day is in flight
        expire(job)
        services.sync_jobs_recover_stalled()
        job = job_now(job)
        assert job.status == final and not SyncJob.objects.active().exists()
        assert not SyncDay.objects.filter(job=job, status=SyncDayStatus.RUNNING).exists()
        if final == SyncJobStatus.PAUSED:
            services.sync_job_cancel(job)


def test_reaper_enqueues_a_pending_job_nobody_picked_up_once_per_deadline(tmp_path: Path) -> None:
    job = fault_job(tmp_path / "m")  # created in the foreground: as if the enqueue was lost
    assert services.sync_jobs_recover_stalled() == []  # still within its pickup deadline
    SyncJob.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert [j.pk for j in services.sync_jobs_recover_stalled()] == [job.pk]
    assert queued_tasks() == [("batchsync.tasks.sync_job_work", (job.pk,))]
    assert services.sync_jobs_recover_stalled() == []  # a new deadline: not enqueued again at once
    assert len(queued_tasks()) == 1


def test_reaper_schedule_is_installed_and_runs_the_reaper() -> None:
    """The migration's schedule, fired by django-q2's own scheduler, queues our reaper task."""
    import importlib

    from django.apps import apps as django_apps
    from django_q.models import Schedule
    from django_q.scheduler import scheduler

    migration = importlib.import_module("batchsync.migrations.0003_reaper_schedule")
    migration.add_reaper_schedule(django_apps, None)  # a flushed test database lost the row
    schedule = Schedule.objects.get(name="batchsync reaper")
    assert (schedule.func, schedule.schedule_type, schedule.minutes) == (migration.REAPER, "I", 1)
    Schedule.objects.filter(pk=schedule.pk).update(next_run=timezone.now() - dt.timedelta(seconds=1))
    scheduler()
    assert queued_tasks() == [(migration.REAPER, ())]
    from django.utils.module_loading import import_string

    assert import_string(migration.REAPER)() == 0  # the task runs (nothing stalled here)
