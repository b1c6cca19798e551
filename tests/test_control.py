"""Operator control: the transition table (one error type for every invalid move), the queue,
and cancel / pause / resume / retry on running jobs from the command line, with one worker in
the foreground and with four django-q2 workers, checking counts and data afterwards.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone, translation

from batchsync import dispatch, runner, services, sessions
from batchsync.exceptions import BatchSyncError, InvalidTransition
from batchsync.models import (
    Reprocess,
    SkipReason,
    SyncDay,
    SyncDayStatus,
    SyncJob,
    SyncJobStatus,
)
from batchsync.sources.demo import demo_day_csv
from tests.conftest import database_url
from tests.factories import SyncDayFactory, SyncJobFactory
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
    run_manage,
    wait_for_status,
    wait_until,
    worker_env,
)

S = SyncJobStatus
ALL_STATUSES = list(SyncJobStatus)


@pytest.fixture(autouse=True)
def _test_sources(settings: Any) -> None:
    register_test_sources(settings)


@dispatch.handoff(foreground=True)
def control(operation: str, job: SyncJob) -> SyncJob:
    result: SyncJob = getattr(services, f"sync_job_{operation}")(job)
    return result


def make_job(**fields: Any) -> SyncJob:
    return cast(SyncJob, SyncJobFactory(**fields))


def make_day(**fields: Any) -> SyncDay:
    return cast(SyncDay, SyncDayFactory(**fields))


# --- the transition table -------------------------------------------------------------------


EXPECTED: dict[str, dict[str, str]] = {
    # operation: {from: to} for a job with nothing in flight and a free slot
    "cancel": {S.PENDING: S.CANCELLED, S.QUEUED: S.CANCELLED, S.PAUSED: S.CANCELLED},
    "pause": {S.PENDING: S.PAUSED, S.QUEUED: S.PAUSED},
    "resume": {S.PAUSED: S.PENDING},
}


@pytest.mark.django_db
@pytest.mark.parametrize("operation", ["cancel", "pause", "resume", "retry"])
@pytest.mark.parametrize("status", ALL_STATUSES)
def test_every_operation_from_every_status_is_allowed_or_raises_invalid_transition(
    operation: str, status: str
) -> None:
    job = make_job(status=status)
    allowed = status in services.TRANSITIONS[operation]
    assert (operation in services.sync_job_allowed_operations(job)) == allowed
    if not allowed:
        with translation.override("en"), pytest.raises(InvalidTransition) as raised:
            control(operation, job)
        assert isinstance(raised.value, BatchSyncError)
        with translation.override("en"):
            reason = services.status_sentence(job)  # a sentence per status: "it is paused", ...
        assert raised.value.message == f"Cannot {operation} job {job.task_id}: {reason}"
        assert job_now(job).status == status  # nothing changed
        return
    result = control(operation, job)
    if operation == "retry":
        assert result.pk != job.pk and result.retry_of_id == job.pk and result.status == S.PENDING
        assert job_now(job).status == status
    elif status in EXPECTED.get(operation, {}):
        assert result.status == EXPECTED[operation][status] == job_now(job).status
    else:
        # running/pausing: with no day in flight the stop is immediate, else after the day.
        assert result.status in (S.CANCELLED, S.PAUSED, S.RUNNING)


@pytest.mark.usefixtures("foreground")
@pytest.mark.django_db
def test_invalid_transitions_named_in_the_issue() -> None:
    succeeded = make_job(status=S.SUCCEEDED)
    cancelled = make_job(status=S.CANCELLED)
    with pytest.raises(InvalidTransition):
        services.sync_job_resume(succeeded)
    with pytest.raises(InvalidTransition):
        services.sync_job_cancel(cancelled)
    with pytest.raises(InvalidTransition):
        services.sync_job_retry(make_job(status=S.RUNNING))


@contextmanager
def worker_session(worker_id: str) -> Iterator[None]:
    """A live database session named after `worker_id`, as a running worker has."""
    with psycopg.connect(database_url(), application_name=worker_id, autocommit=True):
        yield


@pytest.mark.django_db(transaction=True)
def test_running_job_stops_after_the_day_in_flight_or_at_once_when_none_is() -> None:
    job = make_job(status=S.RUNNING, total_days=1, lease_expires_at=timezone.now() + dt.timedelta(seconds=60))
    day = make_day(
        job=job,
        status=SyncDayStatus.RUNNING,
        worker_id="w:1:a",
        lease_expires_at=timezone.now() + dt.timedelta(seconds=60),
    )
    with worker_session("w:1:a"):
        _stop_after_the_day_in_flight(job, day)


@dispatch.handoff(foreground=True)
def _stop_after_the_day_in_flight(job: SyncJob, day: SyncDay) -> None:
    assert services.sync_job_pause(job).status == S.PAUSING  # a day is in flight
    assert services.sync_job_resume(job).status == S.RUNNING  # pausing -> running
    assert services.sync_job_cancel(job).status == S.CANCELLING
    with pytest.raises(InvalidTransition):
        services.sync_job_pause(job)  # cancelling wins
    # The worker finishes its day and leaves: the job becomes cancelled, its day stays loaded.
    SyncDay.objects.filter(pk=day.pk).update(status=SyncDayStatus.SUCCEEDED, lease_expires_at=None)
    job = services.sync_job_finish_if_done(job.pk)
    assert (job.status, job.success_days) == (S.CANCELLED, 1)
    # With nothing in flight a pause is immediate.
    idle = make_job(
        status=S.RUNNING, total_days=1, lease_expires_at=timezone.now() + dt.timedelta(seconds=60)
    )
    make_day(job=idle, status=SyncDayStatus.PENDING)
    assert services.sync_job_pause(idle).status == S.PAUSED


@pytest.mark.usefixtures("foreground")
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("operation", ["cancel", "pause"])
def test_a_stop_finishes_at_once_when_the_worker_of_the_day_in_flight_has_no_session(operation: str) -> None:
    lease = timezone.now() + dt.timedelta(seconds=60)
    job = make_job(status=S.RUNNING, total_days=3, lease_expires_at=lease)
    loaded = make_day(job=job, status=SyncDayStatus.SUCCEEDED, rows=5500)
    alive = make_day(job=job, status=SyncDayStatus.RUNNING, worker_id="w:2:alive", lease_expires_at=lease)
    dead = make_day(job=job, status=SyncDayStatus.RUNNING, worker_id="w:3:dead", lease_expires_at=lease)
    with worker_session("w:2:alive"):
        stopping = control(operation, job)
        # The dead worker's day is given back at once; the live one finishes its day.
        assert stopping.status == (S.CANCELLING if operation == "cancel" else S.PAUSING)
        assert SyncDay.objects.get(pk=dead.pk).status == SyncDayStatus.PENDING
        assert SyncDay.objects.get(pk=alive.pk).status == SyncDayStatus.RUNNING
    # The live worker is gone too (killed): stopping again finishes the job now.
    again = control(operation, job) if operation == "cancel" else services.sync_job_cancel(job)
    assert again.status == S.CANCELLED and again.finished_at is not None
    days = {day.pk: day.status for day in SyncDay.objects.filter(job=job)}
    assert days == {loaded.pk: "succeeded", alive.pk: "pending", dead.pk: "pending"}
    assert (again.success_days, again.rows_loaded) == (1, 5500)
    assert not SyncJob.objects.active().exists()  # the slot is free


@pytest.mark.django_db
def test_cancelling_a_cancelling_job_again_is_not_an_error() -> None:
    job = make_job(status=S.CANCELLING, lease_expires_at=timezone.now() + dt.timedelta(seconds=60))
    make_day(
        job=job, status=SyncDayStatus.RUNNING, worker_id="w:4:gone", lease_expires_at=job.lease_expires_at
    )
    assert "cancel" in services.sync_job_allowed_operations(job)
    assert control("cancel", job).status == S.CANCELLED  # its worker is gone: done at once


@pytest.mark.usefixtures("foreground")
@pytest.mark.django_db(transaction=True)
def test_queue_runs_by_priority_then_age_and_never_two_at_once(settings: Any) -> None:
    start, end = dt.date(2025, 10, 1), dt.date(2025, 10, 8)  # holiday: nothing to load

    def request(priority: int = 0, queue: bool = True) -> services.JobRequest:
        return services.JobRequest(start, end, "demo", {}, priority=priority, queue=queue)

    first = services.sync_job_create(request(queue=False))
    low = services.sync_job_create(request(priority=0))
    high = services.sync_job_create(request(priority=5))
    later_high = services.sync_job_create(request(priority=5))
    assert [job_now(j).status for j in (first, low, high, later_high)] == [
        S.PENDING,
        S.QUEUED,
        S.QUEUED,
        S.QUEUED,
    ]
    # Pausing a queued job takes it out of the queue; resuming while the slot is busy queues it.
    assert services.sync_job_pause(high).status == S.PAUSED
    assert services.sync_job_resume(high).status == S.QUEUED
    order = []
    while (job := SyncJob.objects.active().first()) is not None:
        order.append(job.pk)
        assert runner.sync_job_run(job.pk).job.status == S.SUCCEEDED
    # `high` was paused and re-queued after `later_high` was created: same priority, and age is
    # the creation time, so it still goes first.
    assert order == [first.pk, high.pk, later_high.pk, low.pk]


@pytest.mark.django_db
def test_retry_plans_failed_and_never_run_days_by_default_all_or_none_on_request() -> None:
    job = make_job(status=S.FAILED, start_date=dt.date(2025, 9, 1), end_date=dt.date(2025, 9, 4))
    for day, status in [(1, "succeeded"), (2, "failed"), (3, "pending")]:
        make_day(job=job, date=dt.date(2025, 9, day), status=status)
    make_day(job=job, date=dt.date(2025, 9, 4), status="skipped", skip_reason="non_trading")

    def planned(reprocess: str) -> dict[int, str]:
        request = services.sync_job_retry_request(job, reprocess=reprocess)
        plan = services.sync_days_plan(request.start_date, request.end_date, request.reprocess)
        return {p.date.day: p.skip_reason or "load" for p in plan}

    assert planned(Reprocess.FAILED) == {1: SkipReason.ALREADY_LOADED, 2: "load", 3: "load", 4: "load"}
    assert planned(Reprocess.ALL) == {1: "load", 2: "load", 3: "load", 4: "load"}
    assert planned(Reprocess.NONE) == {
        1: SkipReason.ALREADY_LOADED,
        2: SkipReason.PREVIOUSLY_FAILED,
        3: "load",
        4: "load",
    }


# --- the command ----------------------------------------------------------------------------


def command(*args: str) -> str:
    """Run `batch_sync` in this process (its real code, no start-up cost); return its output."""
    code, out = command_with_code(*args)
    assert code == 0, out
    return out


def command_with_code(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    try:
        with translation.override("en"):
            call_command("batch_sync", *args, stdout=out)
    except SystemExit as exit_:
        return int(exit_.code or 0), out.getvalue()
    return 0, out.getvalue()


@pytest.mark.usefixtures("foreground")
@pytest.mark.django_db(transaction=True)
def test_command_control_actions_show_the_job_id_and_persist_the_state() -> None:
    job = services.sync_job_create(services.JobRequest(dt.date(2025, 9, 1), dt.date(2025, 9, 5), "demo", {}))
    listing = command("list")
    assert job.task_id in listing and "pending" in listing
    out = command("pause", job.task_id)
    assert f"Job {job.task_id} paused" in out
    status = command("status", job.task_id)
    assert re.search(rf"^task_id\s+{job.task_id}$", status, re.M)
    assert re.search(r"^status\s+paused$", status, re.M)
    assert re.search(r"^days\s+pending 5$", status, re.M)
    assert re.search(r"^operations\s+cancel, resume$", status, re.M)
    out = command("cancel", str(job.pk))  # the numeric id works too
    assert f"Job {job.task_id} cancelled" in out
    assert job_now(job).status == S.CANCELLED
    with pytest.raises(CommandError) as raised:
        command("resume", job.task_id)
    assert str(raised.value) == f"Cannot resume job {job.task_id}: it has already finished (cancelled)"
    out = command("retry", job.task_id, "--dry-run", "--reprocess", "none")
    assert f"Retry of job {job.task_id} (reprocess=none):" in out
    assert "5 days: 5 to load, 0 skipped (dry run: nothing changed)" in out
    assert SyncJob.objects.count() == 1  # a dry run creates nothing


@pytest.mark.slow  # a command process per case
def test_command_exit_codes_for_bad_transitions_and_unknown_jobs(
    transactional_db: Any, subprocess_env: dict[str, str]
) -> None:
    job = make_job(status=S.SUCCEEDED)
    env = subprocess_env
    result = run_manage(["batch_sync", "resume", job.task_id], env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and job.task_id in lines[0], result.stderr
    result = run_manage(["batch_sync", "cancel", "no-such-job"], env)
    assert result.returncode == 2 and "no-such-job" in result.stderr
    result = run_manage(["batch_sync", "status", job.task_id], env)
    assert result.returncode == 0 and job.task_id in result.stdout and "succeeded" in result.stdout


# --- cancel with a killed worker, and cancel twice: real foreground workers ---------------------

WEEK = [dt.date(2025, 9, d) for d in range(1, 6)]


def start_foreground(
    tmp_path: Path, subprocess_env: dict[str, str], copy_pause: float
) -> tuple[Process, Any]:
    """`batch_sync` in the foreground, its second day paused mid-COPY; a 60 s lease (not the tests' 2 s)."""
    options = fault_options(tmp_path / "m", copy_pause=copy_pause, delay_dates=["2025-09-02"])
    env = fault_env(worker_env(subprocess_env, BATCHSYNC_LEASE_SECONDS="60"), options)
    args = ["batch_sync", "--start", "2025-09-01", "--end", "2025-09-05", "--source", "fault"]
    worker = Process([*args, "--parallelism", "1"], env, tmp_path / "run.log").start()
    Events(tmp_path / "m").wait("copy", dt.date(2025, 9, 2))
    return worker, env


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_cancel_right_after_the_foreground_worker_was_killed_finishes_at_once(
    tmp_path: Path, subprocess_env: dict[str, str], ledger: Ledger
) -> None:
    worker, env = start_foreground(tmp_path, subprocess_env, copy_pause=60)
    try:
        job = SyncJob.objects.get()
        day = SyncDay.objects.get(job=job, date=dt.date(2025, 9, 2))
        os.kill(worker.pid, signal.SIGKILL)
        ledger.fault("kill -9 foreground worker mid-COPY, then cancel")
        assert worker.wait() == -signal.SIGKILL
        wait_until(lambda: not sessions.sync_workers_alive([day.worker_id]), what="the sessions to end")
        assert day.lease_expires_at is not None and day.lease_expires_at > timezone.now()  # lease still on

        result = run_manage(["batch_sync", "cancel", job.task_id], env)
        assert result.returncode == 0, result.stderr
        assert f"Job {job.task_id} cancelled" in result.stdout
        job = job_now(job)
        assert job.status == S.CANCELLED and job.finished_at is not None
        assert days_by_status(job) == {"succeeded": WEEK[:1], "pending": WEEK[1:]}
        assert bar_count(WEEK[1]) == 0
        ledger.checked(assert_clean(WEEK[:1]))
        assert not SyncJob.objects.active().exists()  # the slot is free for the next start
        # A finished job cannot be cancelled again: one line, exit 2.
        result = run_manage(["batch_sync", "cancel", job.task_id], env)
        assert result.returncode == 2
        assert result.stderr.strip() == (
            f"CommandError: Cannot cancel job {job.task_id}: it has already finished (cancelled)"
        )
    finally:
        worker.stop()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_cancelling_a_job_twice_while_its_worker_finishes_the_day_is_not_an_error(
    tmp_path: Path, subprocess_env: dict[str, str], ledger: Ledger
) -> None:
    worker, env = start_foreground(tmp_path, subprocess_env, copy_pause=8)
    try:
        job = SyncJob.objects.get()
        first = run_manage(["batch_sync", "cancel", job.task_id], env)
        assert first.returncode == 0 and f"Job {job.task_id} cancelling" in first.stdout, first
        ledger.fault("cancel twice while running")
        second = run_manage(["batch_sync", "cancel", job.task_id], env)
        assert second.returncode == 0, second.stderr
        assert second.stdout.startswith(f"Job {job.task_id} is already being cancelled"), second.stdout
        assert job_now(job).status == S.CANCELLING
        assert worker.wait() == 130, worker.log()  # the day in flight finished, then the stop
        job = job_now(job)
        assert job.status == S.CANCELLED
        assert days_by_status(job) == {"succeeded": WEEK[:2], "pending": WEEK[2:]}
        ledger.checked(assert_clean(WEEK[:2]))
    finally:
        worker.stop()


# --- 6. cancel, pause, resume, retry while running: N=1 in the foreground, N=4 on the cluster -----

FIRST = [dt.date(2025, 9, d) for d in (1, 2, 3, 4, 5, 8, 9, 10, 11, 12)]
SECOND = [dt.date(2025, 9, d) for d in (15, 16, 17, 18, 19, 22, 23, 24, 25, 26)]


def days_by_status(job: SyncJob) -> dict[str, list[dt.date]]:
    result: dict[str, list[dt.date]] = {}
    for day in SyncDay.objects.filter(job=job).order_by("date"):
        result.setdefault(day.status, []).append(day.date)
    return result


def assert_stopped_cleanly(job: SyncJob, ledger: Ledger) -> list[dt.date]:
    """After a pause or cancel: no day running, counts match the days, loaded days whole."""
    days = days_by_status(job)
    assert SyncDayStatus.RUNNING not in days
    done = days.get(SyncDayStatus.SUCCEEDED, [])
    assert (job.success_days, job.failed_days, job.rows_loaded) == (len(done), 0, 5500 * len(done))
    weekend = days.get(SyncDayStatus.SKIPPED, [])
    assert len(weekend) == 2 and job.processed_days == len(done) + 2
    assert job.estimated_completion is None
    ledger.checked(assert_clean(done))
    assert all(bar_count(day) == 0 for day in days.get(SyncDayStatus.PENDING, []))  # no partial day
    return done


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("parallelism", [1, 4])
def test_cancel_pause_resume_and_retry_while_running(
    tmp_path: Path, subprocess_env: dict[str, str], loads: LoadLog, ledger: Ledger, parallelism: int
) -> None:
    on_cluster = parallelism > 1
    options = fault_options(tmp_path / "m", fetch_delay=0.5 if on_cluster else 0.25)
    env = fault_env(worker_env(subprocess_env), options)
    detach = ["--detach"] if on_cluster else []
    cluster = qcluster(env, tmp_path / "cluster.log", workers=4) if on_cluster else None
    if cluster is not None:
        cluster.__enter__()
    try:

        def start(days: list[dt.date]) -> tuple[SyncJob, Process | None]:
            args = ["batch_sync", "--start", str(days[0]), "--end", str(days[-1]), "--source", "fault"]
            args += ["--parallelism", str(parallelism), *detach]
            process = Process(args, env, tmp_path / f"run-{days[0]}.log").start()
            if on_cluster:
                assert process.wait() == 0, process.log()
            job = wait_until(lambda: SyncJob.objects.filter(start_date=days[0]).first(), what="the job")
            return job, (None if on_cluster else process)

        def enough_done(job: SyncJob) -> None:
            wait_until(lambda: job_now(job).success_days >= max(2, parallelism), timeout=60, what="days")

        # Pause while running, then resume: nothing lost, nothing twice, paused time not counted.
        job, foreground = start(FIRST)
        enough_done(job)
        paused_at = time.monotonic()
        # The command's own code, called here: a subprocess would start too late to catch it running.
        assert f"Job {job.task_id} paus" in command("pause", job.task_id)
        ledger.fault(f"pause while running (N={parallelism})")
        job = wait_for_status(job, S.PAUSED)
        if foreground is not None:
            # The foreground worker was released; 130 says "stopped before the end".
            assert foreground.wait() == 130, foreground.log()
        assert_stopped_cleanly(job, ledger)
        frozen = job.duration_seconds
        time.sleep(0.6)
        assert job_now(job).duration_seconds == frozen
        status = command("status", job.task_id)
        assert re.search(r"^status\s+paused$", status, re.M) and job.task_id in status
        result = run_manage(["batch_sync", "resume", job.task_id, *detach], env, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
        job = wait_for_status(job, S.SUCCEEDED, S.FAILED)
        assert (job.status, job.success_days, job.rows_loaded) == (S.SUCCEEDED, 10, 55000)
        assert job.duration_seconds is not None
        assert job.finished_at is not None and job.started_at is not None
        wall = (job.finished_at - job.started_at).total_seconds()
        assert job.duration_seconds <= wall - 0.5, (job.duration_seconds, wall, time.monotonic() - paused_at)
        ledger.checked(assert_clean(FIRST))
        ledger.jobs_completed += 1

        # Cancel while running, then retry: the retry loads only what the cancelled job did not.
        job, foreground = start(SECOND)
        enough_done(job)
        assert f"Job {job.task_id} cancel" in command("cancel", job.task_id)
        ledger.fault(f"cancel while running (N={parallelism})")
        job = wait_for_status(job, S.CANCELLED)
        if foreground is not None:
            assert foreground.wait() == 130, foreground.log()
        done = assert_stopped_cleanly(job, ledger)
        assert max(2, parallelism) <= len(done) < 10
        result = run_manage(["batch_sync", "retry", job.task_id, *detach], env, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
        retry = wait_until(lambda: job.retries.first(), what="the retry job")
        retry = wait_for_status(retry, S.SUCCEEDED, S.FAILED)
        counts = (retry.status, retry.success_days, retry.skipped_days)
        assert counts == (S.SUCCEEDED, 10 - len(done), len(done) + 2)  # + the weekend
        assert job_now(job).status == S.CANCELLED  # never retried automatically; the retry is a new job
        ledger.checked(assert_clean(SECOND))
        ledger.jobs_completed += 1
        assert loads.per_day() == dict.fromkeys(FIRST + SECOND, 1)  # no day loaded twice

        # Retry failed: a missing file fails its day; once it is there, the retry loads only it.
        csv_dir = tmp_path / "csv"
        csv_dir.mkdir()
        sep_29, sep_30 = dt.date(2025, 9, 29), dt.date(2025, 9, 30)
        (csv_dir / f"{sep_29}.csv").write_bytes(demo_day_csv(sep_29))
        args = ["--start", str(sep_29), "--end", str(sep_30), "--source", "csv", "--path", str(csv_dir)]
        code, out = command_with_code(*args, "--parallelism", str(parallelism), *detach)
        assert code == (0 if on_cluster else 1), out
        failed = wait_for_status(SyncJob.objects.get(start_date=sep_29), S.FAILED, S.SUCCEEDED)
        assert (failed.status, failed.success_days, failed.failed_days) == (S.FAILED, 1, 1)
        (csv_dir / f"{sep_30}.csv").write_bytes(demo_day_csv(sep_30))
        command("retry", failed.task_id, *detach)
        retry = wait_for_status(wait_until(lambda: failed.retries.first()), S.SUCCEEDED, S.FAILED)
        assert (retry.status, retry.success_days, retry.skipped_days) == (S.SUCCEEDED, 1, 1)
        assert SyncDay.objects.get(job=retry, date=sep_29).skip_reason == SkipReason.ALREADY_LOADED
        ledger.checked(assert_clean([sep_29, sep_30]))
        ledger.jobs_completed += 1
    finally:
        if cluster is not None:
            cluster.__exit__(None, None, None)
