"""The runner: skips, failing days, resume, progress and ETA, and what ends up in daily_bar."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone, translation

from batchsync import dispatch, runner, services
from batchsync.models import (
    DailyBar,
    Reprocess,
    SkipReason,
    SyncDay,
    SyncDayStatus,
    SyncError,
    SyncJob,
    SyncJobStatus,
)
from batchsync.sources.demo import demo_day_csv

OCT_1, OCT_9 = dt.date(2025, 10, 1), dt.date(2025, 10, 9)
SEP_1, SEP_9 = dt.date(2025, 9, 1), dt.date(2025, 9, 9)  # 7 trading days, one weekend
SEP_TRADING = [dt.date(2025, 9, d) for d in (1, 2, 3, 4, 5, 8, 9)]


@dispatch.handoff(foreground=True)
def create(start: dt.date, end: dt.date, **kwargs: Any) -> SyncJob:
    options: dict[str, Any] = {"source": "demo", "source_options": {}}
    options.update(kwargs)
    return services.sync_job_create(services.JobRequest(start, end, **options))


def csv_job(csv_dir: Path, start: dt.date, end: dt.date, **kwargs: Any) -> SyncJob:
    return create(start, end, source="csv", source_options={"path": str(csv_dir)}, **kwargs)


def bars_digest(start: dt.date, end: dt.date) -> tuple[int, str]:
    """Row count and an md5 over every bar of the range in key order: equal digests, equal data."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), md5(string_agg(b::text, '|' ORDER BY trade_date, ts_code)) "
            "FROM daily_bar b WHERE trade_date BETWEEN %s AND %s",
            [start, end],
        )
        count, digest = cursor.fetchone()
    return int(count), str(digest)


def day_states(job: SyncJob) -> dict[dt.date, tuple[str, str]]:
    return {d.date: (d.status, d.skip_reason) for d in SyncDay.objects.filter(job=job)}


# --- skips -----------------------------------------------------------------------------------


@pytest.mark.usefixtures("foreground")
@pytest.mark.django_db(transaction=True)
def test_non_trading_days_are_skipped_without_asking_the_source(csv_dir: Path) -> None:
    # Only the one trading day has a file: asking the csv source for any holiday would fail it.
    (csv_dir / "2025-10-09.csv").write_bytes(demo_day_csv(OCT_9))
    job = runner.sync_job_run(csv_job(csv_dir, OCT_1, OCT_9).pk).job
    assert job.status == SyncJobStatus.SUCCEEDED
    assert (job.total_days, job.success_days, job.failed_days, job.skipped_days) == (9, 1, 0, 8)
    states = day_states(job)
    assert states.pop(OCT_9) == (SyncDayStatus.SUCCEEDED, "")
    assert set(states.values()) == {(SyncDayStatus.SKIPPED, SkipReason.NON_TRADING)}
    assert not SyncError.objects.exists()
    assert DailyBar.objects.filter(trade_date=OCT_9).count() == 5500
    assert job.rows_loaded == 5500


@pytest.mark.usefixtures("foreground")
@pytest.mark.django_db(transaction=True)
def test_loaded_days_are_skipped_unless_forced_and_never_doubled() -> None:
    first = runner.sync_job_run(create(OCT_1, OCT_9).pk).job
    before = bars_digest(OCT_1, OCT_9)
    assert before[0] == 5500

    again = runner.sync_job_run(create(OCT_1, OCT_9).pk).job
    assert again.status == SyncJobStatus.SUCCEEDED
    assert (again.success_days, again.skipped_days, again.rows_loaded) == (0, 9, 0)
    assert day_states(again)[OCT_9] == (SyncDayStatus.SKIPPED, SkipReason.ALREADY_LOADED)
    assert bars_digest(OCT_1, OCT_9) == before

    forced = runner.sync_job_run(create(OCT_1, OCT_9, reprocess=Reprocess.ALL).pk).job
    assert (forced.success_days, forced.skipped_days, forced.rows_loaded) == (1, 8, 5500)
    assert bars_digest(OCT_1, OCT_9) == before  # reloaded in place: same rows, no duplicates
    assert first.status == SyncJobStatus.SUCCEEDED


# --- failures --------------------------------------------------------------------------------


def _corrupt(csv: bytes, line: int, column: int, value: str) -> bytes:
    lines = csv.decode().split("\n")
    fields = lines[line - 1].split(",")
    fields[column] = value
    lines[line - 1] = ",".join(fields)
    return "\n".join(lines).encode()


@pytest.mark.usefixtures("foreground")
@pytest.mark.django_db(transaction=True)
def test_failing_days_are_recorded_with_file_line_and_reason_and_the_job_goes_on(csv_dir: Path) -> None:
    sep_1, sep_2, sep_3, sep_4, sep_5 = SEP_TRADING[:5]
    for day in (sep_1, sep_3, sep_4):
        (csv_dir / f"{day.isoformat()}.csv").write_bytes(demo_day_csv(day))
    # Sep 3 is loaded first, so its bad file later must leave these bars in place.
    assert runner.sync_job_run(csv_job(csv_dir, sep_3, sep_3).pk).job.success_days == 1
    sep_3_before = bars_digest(sep_3, sep_3)

    bad_3 = csv_dir / "2025-09-03.csv"
    bad_3.write_bytes(_corrupt(demo_day_csv(sep_3), line=10, column=2, value="abc"))  # open
    bad_5 = csv_dir / "20250905.csv"  # the other accepted name form
    bad_5.write_bytes(_corrupt(demo_day_csv(sep_5), line=4, column=4, value="-1x"))  # low
    # Sep 2 has no file at all.

    with translation.override("en"):  # errors are stored in the worker's language
        job = csv_job(csv_dir, sep_1, sep_5, reprocess=Reprocess.ALL)
        job = runner.sync_job_run(job.pk).job

    assert job.status == SyncJobStatus.FAILED
    assert (job.success_days, job.failed_days, job.skipped_days, job.processed_days) == (2, 3, 0, 5)
    assert job.rows_loaded == 2 * 5500
    assert {d: s for d, (s, _) in day_states(job).items()} == {
        sep_1: SyncDayStatus.SUCCEEDED,
        sep_2: SyncDayStatus.FAILED,
        sep_3: SyncDayStatus.FAILED,
        sep_4: SyncDayStatus.SUCCEEDED,  # loaded after two failures: the job went on
        sep_5: SyncDayStatus.FAILED,
    }
    errors = {e.date: e for e in SyncError.objects.filter(job=job) if e.date}
    assert set(errors) == {sep_2, sep_3, sep_5}

    missing = errors[sep_2]
    assert missing.file == str(csv_dir / "2025-09-02.csv")
    assert missing.line is None
    assert "missing file" in missing.error
    assert missing.traceback == ""  # a data error: what and where, no Python traceback

    assert (errors[sep_3].file, errors[sep_3].line) == (str(bad_3), 10)
    assert f"{bad_3}: line 10, column open: invalid input syntax for type numeric" in errors[sep_3].error
    assert (errors[sep_5].file, errors[sep_5].line) == (str(bad_5), 4)
    assert f"{bad_5}: line 4, column low" in errors[sep_5].error

    for failed_day, error in errors.items():
        assert SyncDay.objects.get(job=job, date=failed_day).last_error == error.error
    assert bars_digest(sep_3, sep_3) == sep_3_before  # the failed reload lost nothing
    assert DailyBar.objects.filter(trade_date__in=[sep_2, sep_5]).count() == 0
    with translation.override("en"):
        assert job.message.startswith("Batch sync finished: 2 succeeded, 3 failed, 0 skipped, took 0m ")


# --- resume and slices -------------------------------------------------------------------------


class WorkerDied(Exception):
    """Stands in for a worker process dying between two statements."""


@pytest.mark.usefixtures("foreground")
@pytest.mark.django_db(transaction=True)
def test_a_stopped_job_resumes_from_its_first_undone_day_without_reloading_done_ones(
    settings: Any,
) -> None:
    settings.BATCHSYNC = {**settings.BATCHSYNC, "LEASE_SECONDS": 0.6}
    sep_4 = dt.date(2025, 9, 4)
    trading = SEP_TRADING[3:]  # Thu, Fri, (weekend), Mon, Tue
    job = create(sep_4, SEP_9)

    def die_on_third_trading_day(snapshot: SyncJob) -> None:
        if snapshot.success_days == 2 and snapshot.current_date == trading[2]:
            raise WorkerDied  # right after claiming Sep 8: the day is left running

    with pytest.raises(WorkerDied):
        runner.sync_job_run(job.pk, on_progress=die_on_third_trading_day)
    left = {d.date: d for d in SyncDay.objects.filter(job=job)}
    assert [d for d in trading if left[d].status == SyncDayStatus.SUCCEEDED] == trading[:2]
    assert left[trading[2]].status == SyncDayStatus.RUNNING
    assert {left[d].status for d in trading[3:]} == {SyncDayStatus.PENDING}
    assert SyncJob.objects.get(pk=job.pk).status == SyncJobStatus.RUNNING  # it still holds the slot

    time.sleep(0.7)  # the dead worker's leases run out
    claimed: list[dt.date] = []

    def record(snapshot: SyncJob) -> None:
        if snapshot.current_date and (not claimed or claimed[-1] != snapshot.current_date):
            claimed.append(snapshot.current_date)

    outcome = runner.sync_job_run(job.pk, on_progress=record)

    assert outcome.job.status == SyncJobStatus.SUCCEEDED
    assert outcome.days_loaded == 2
    assert claimed == trading[2:]  # from the first undone day, in order
    after = {d.date: d for d in SyncDay.objects.filter(job=job)}
    for day in trading[:2]:  # done days were not touched again
        assert (after[day].attempts, after[day].finished_at) == (1, left[day].finished_at)
    assert after[trading[2]].attempts == 2
    assert (outcome.job.success_days, outcome.job.skipped_days, outcome.job.rows_loaded) == (4, 2, 4 * 5500)

    resumed = bars_digest(sep_4, SEP_9)
    clean = runner.sync_job_run(create(sep_4, SEP_9, reprocess=Reprocess.ALL).pk).job
    assert clean.success_days == 4
    assert resumed == bars_digest(sep_4, SEP_9)  # same data as a clean run
    assert resumed[0] == 4 * 5500


@pytest.mark.usefixtures("foreground")
@pytest.mark.django_db(transaction=True)
def test_a_run_past_its_deadline_still_loads_a_day_and_the_next_slice_continues() -> None:
    job = create(SEP_1, dt.date(2025, 9, 3))
    first = runner.sync_job_run(job.pk, deadline=time.monotonic())
    assert (first.more_work, first.days_loaded) == (True, 1)
    assert first.job.status == SyncJobStatus.RUNNING
    second = runner.sync_job_run(job.pk)
    assert (second.more_work, second.days_loaded) == (False, 2)
    assert second.job.status == SyncJobStatus.SUCCEEDED


# --- progress ----------------------------------------------------------------------------------


@pytest.mark.usefixtures("foreground")
@pytest.mark.django_db(transaction=True)
def test_progress_is_committed_after_every_day_with_percent_eta_and_duration() -> None:
    job = create(SEP_1, SEP_9)
    snapshots: list[tuple[float, SyncJob, SyncJob]] = []

    def watch(snapshot: SyncJob) -> None:
        # What another connection sees now: the progress must already be committed.
        committed = SyncJob.objects.get(pk=snapshot.pk)
        snapshots.append((time.time(), snapshot, committed))

    job = runner.sync_job_run(job.pk, on_progress=watch).job

    # Every day's progress was committed and seen: 2 weekend days skipped at creation, then one
    # more per loaded day (published by the next day's claim; the last by the finish).
    assert sorted({c.processed_days for _, _, c in snapshots}) == list(range(2, 10))
    after_days = [(t, s, c) for t, s, c in snapshots if c.processed_days > 2 and c.status == "running"]
    assert len(after_days) == 6
    for seen_at, _snapshot, committed in after_days:
        attempted = committed.success_days + committed.failed_days
        remaining = committed.total_days - committed.processed_days
        assert committed.processed_days == attempted + committed.skipped_days
        assert committed.progress_percent == round(100 * committed.processed_days / 9, 1)
        assert committed.current_date in SEP_TRADING
        with translation.override("zh-hans"):
            assert committed.message == (
                f"正在同步 {committed.current_date.isoformat()}... ({committed.progress_percent:.1f}%)"
            )
        if not remaining or not attempted:
            continue
        # ETA = now + remaining days x average time per processed (loaded or failed) day,
        # computed when the progress was committed: after the day finished, before now.
        assert committed.estimated_completion is not None
        assert committed.started_at is not None
        started = committed.started_at.timestamp()
        earliest = _eta(started, _last_finish_before(job, seen_at), attempted, remaining)
        latest = _eta(started, seen_at, attempted, remaining)
        assert earliest - 0.05 <= committed.estimated_completion.timestamp() <= latest + 0.05

    assert [c.success_days for _, _, c in snapshots] == sorted(c.success_days for _, _, c in snapshots)
    assert job.status == SyncJobStatus.SUCCEEDED
    assert (job.total_days, job.processed_days, job.success_days, job.skipped_days) == (9, 9, 7, 2)
    assert job.progress_percent == 100.0
    assert job.estimated_completion is None
    assert job.started_at is not None and job.finished_at is not None
    assert job.running_since is None
    wall = (job.finished_at - job.started_at).total_seconds()
    assert job.duration_seconds is not None
    assert 0 < job.duration_seconds <= wall + 0.01
    assert job.duration_seconds == pytest.approx(job.active_seconds, abs=0.001)
    seconds = round(job.duration_seconds)
    with translation.override("zh-hans"):
        assert job.message == f"批量同步完成: 成功7, 失败0, 跳过2, 耗时{seconds // 60}分{seconds % 60}秒"


def _eta(started: float, now: float, attempted: int, remaining: int) -> float:
    return now + remaining * (now - started) / attempted


def _last_finish_before(job: SyncJob, moment: float) -> float:
    stamps = SyncDay.objects.filter(job=job, finished_at__isnull=False).values_list("finished_at", flat=True)
    finishes = [stamp.timestamp() for stamp in stamps if stamp and stamp.timestamp() <= moment]
    return max(finishes, default=timezone.now().timestamp())


# --- a claim lost with a server crash ---------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_worker_whose_claim_was_lost_claims_again_and_finishes_the_job(
    tmp_path: Path, settings: Any
) -> None:
    """Claims commit without a WAL flush: a crash can undo one while its worker fetches the day.

    The worker's fence then fails (`LeaseLost`); it must claim again, not leave the job running.
    """
    import threading

    from tests.faults import Events, assert_clean, fault_options, register_test_sources

    register_test_sources(settings)
    slow = dt.date(2025, 9, 3)
    options = fault_options(tmp_path / "m", fetch_delay=1.0, delay_dates=[slow.isoformat()], delay_attempts=1)
    job = create(SEP_1, dt.date(2025, 9, 5), source="fault", source_options=options, reprocess="all")
    outcomes: list[runner.RunOutcome] = []

    @dispatch.handoff(foreground=True)
    def work() -> None:
        try:
            outcomes.append(runner.sync_job_run(job.pk))
        finally:
            connection.close()

    worker = threading.Thread(target=work)
    worker.start()
    Events(tmp_path / "m").wait("fetch", slow)
    # The state a crash leaves behind when the claim's commit was not flushed: the day as before.
    SyncDay.objects.filter(job=job, date=slow).update(
        status=SyncDayStatus.PENDING, worker_id="", lease_expires_at=None, fence=0, attempts=0
    )
    worker.join(30)
    assert not worker.is_alive() and len(outcomes) == 1
    assert outcomes[0].job.status == SyncJobStatus.SUCCEEDED  # not `running` with nobody on it
    day = SyncDay.objects.get(job=job, date=slow)
    assert (day.status, day.attempts) == (SyncDayStatus.SUCCEEDED, 1)
    assert_clean([dt.date(2025, 9, d) for d in (1, 2, 3, 4, 5)])
