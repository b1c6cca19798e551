"""Job creation, validation, the day plan and the single running slot (services)."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone, translation

from batchsync import dispatch, runner, services
from batchsync.exceptions import InvalidJobRequest, SyncAlreadyRunning
from batchsync.models import (
    Reprocess,
    SkipReason,
    SyncDay,
    SyncDayStatus,
    SyncJob,
    SyncJobStatus,
    SyncLock,
)
from batchsync.services.workers import error_traceback
from tests.factories import SyncDayFactory, SyncJobFactory

OCT_1, OCT_9 = dt.date(2025, 10, 1), dt.date(2025, 10, 9)
SEP_1, SEP_30 = dt.date(2025, 9, 1), dt.date(2025, 9, 30)


def job_request(start: dt.date = OCT_9, end: dt.date = OCT_9, **kwargs: Any) -> services.JobRequest:
    options: dict[str, Any] = {"source": "demo", "source_options": {}}
    options.update(kwargs)
    return services.JobRequest(start_date=start, end_date=end, **options)


# --- validation ----------------------------------------------------------------------------


@pytest.mark.usefixtures("foreground")
@pytest.mark.django_db
@pytest.mark.parametrize(
    ("request_kwargs", "field", "fragment"),
    [
        ({"start": OCT_9, "end": OCT_1}, "end_date", "must not be before start_date"),
        ({"end": dt.date(2999, 1, 1)}, "end_date", "must not be in the future"),
        (
            {"source": "tushare-pro"},
            "source",
            "Unknown source tushare-pro; choose one of: csv, demo, parquet, postgres, tushare",
        ),
        ({"source": "csv"}, "path", "needs a directory path"),
        ({"source": "csv", "source_options": {"path": "/nonexistent/bars"}}, "path", "Directory not found"),
        ({"reprocess": "sometimes"}, "reprocess", "reprocess must be one of"),
        ({"parallelism": 0}, "parallelism", "between 1 and 64"),
    ],
)
def test_create_refuses_an_invalid_request_naming_the_field(
    request_kwargs: dict[str, Any], field: str, fragment: str
) -> None:
    with translation.override("en"), pytest.raises(InvalidJobRequest) as raised:
        services.sync_job_create(job_request(**request_kwargs))
    assert raised.value.field == field
    assert fragment in raised.value.message
    assert not SyncJob.objects.exists()


@pytest.mark.usefixtures("foreground")
@pytest.mark.django_db
def test_create_refuses_a_range_longer_than_the_cap(settings: Any) -> None:
    settings.BATCHSYNC = {**settings.BATCHSYNC, "MAX_RANGE_DAYS": 10}
    with translation.override("en"), pytest.raises(InvalidJobRequest) as raised:
        services.sync_job_create(job_request(SEP_1, dt.date(2025, 9, 11)))
    assert raised.value.field == "end_date"
    assert "The range is 11 days; at most 10 days are allowed" in raised.value.message
    # Exactly at the cap is allowed.
    job = services.sync_job_create(job_request(SEP_1, dt.date(2025, 9, 10)))
    assert job.total_days == 10


@pytest.mark.django_db
def test_future_end_is_judged_against_today() -> None:
    today = timezone.localdate()
    request = job_request(today - dt.timedelta(days=3), today)
    services.sync_request_validate(request)  # today itself is fine
    with pytest.raises(InvalidJobRequest):
        services.sync_request_validate(job_request(today, today + dt.timedelta(days=1)))


# --- the day plan ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_plan_skips_the_national_day_holiday_as_non_trading() -> None:
    plan = services.sync_days_plan(OCT_1, OCT_9, Reprocess.FAILED)
    assert [p.date for p in plan] == [OCT_1 + dt.timedelta(days=n) for n in range(9)]
    assert [(p.status, p.skip_reason) for p in plan[:8]] == [
        (SyncDayStatus.SKIPPED, SkipReason.NON_TRADING)
    ] * 8
    assert (plan[8].status, plan[8].skip_reason) == (SyncDayStatus.PENDING, SkipReason.NONE)


@pytest.mark.django_db
def test_plan_of_september_has_22_trading_days_and_8_weekend_days() -> None:
    plan = services.sync_days_plan(SEP_1, SEP_30, Reprocess.FAILED)
    to_load = [p.date for p in plan if p.status == SyncDayStatus.PENDING]
    skipped = [p.date for p in plan if p.status == SyncDayStatus.SKIPPED]
    assert len(to_load) == 22
    assert len(skipped) == 8
    assert all(day.weekday() >= 5 for day in skipped)
    assert all(p.skip_reason == SkipReason.NON_TRADING for p in plan if p.status == SyncDayStatus.SKIPPED)


@pytest.mark.django_db
def test_plan_skips_loaded_days_unless_reprocess_all() -> None:
    loaded, failed = dt.date(2025, 9, 1), dt.date(2025, 9, 2)
    SyncDayFactory(date=loaded, status=SyncDayStatus.SUCCEEDED, rows=5500)
    SyncDayFactory(date=failed, status=SyncDayStatus.FAILED, last_error="missing file")

    def plan_of(reprocess: str) -> dict[dt.date, tuple[str, str]]:
        return {
            p.date: (p.status, p.skip_reason)
            for p in services.sync_days_plan(loaded, dt.date(2025, 9, 3), reprocess)
        }

    pending = (SyncDayStatus.PENDING, SkipReason.NONE)
    assert plan_of(Reprocess.FAILED) == {
        loaded: (SyncDayStatus.SKIPPED, SkipReason.ALREADY_LOADED),
        failed: pending,
        dt.date(2025, 9, 3): pending,
    }
    assert plan_of(Reprocess.ALL) == {loaded: pending, failed: pending, dt.date(2025, 9, 3): pending}
    assert plan_of(Reprocess.NONE) == {
        loaded: (SyncDayStatus.SKIPPED, SkipReason.ALREADY_LOADED),
        failed: (SyncDayStatus.SKIPPED, SkipReason.PREVIOUSLY_FAILED),
        dt.date(2025, 9, 3): pending,
    }


@pytest.mark.usefixtures("foreground")
@pytest.mark.django_db
def test_create_stores_the_plan_as_days_and_counts_skips_as_processed() -> None:
    job = services.sync_job_create(job_request(OCT_1, OCT_9))
    assert job.status == SyncJobStatus.PENDING
    assert job.task_id.startswith("2025-10-01_2025-10-09_")
    assert (job.total_days, job.processed_days, job.skipped_days) == (9, 8, 8)
    days = list(SyncDay.objects.filter(job=job).order_by("date").values_list("date", "status", "skip_reason"))
    assert days[-1] == (OCT_9, SyncDayStatus.PENDING, "")
    assert {status for _, status, _ in days[:-1]} == {SyncDayStatus.SKIPPED}


# --- one running job ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_starts_racing_from_two_connections_exactly_one_wins() -> None:
    barrier = threading.Barrier(2)
    results: list[SyncJob | BaseException] = []
    lock = threading.Lock()

    @dispatch.handoff(foreground=True)
    def start(start: dt.date, end: dt.date) -> None:
        try:
            barrier.wait(timeout=10)
            with translation.override("zh-hans"):
                outcome: SyncJob | BaseException = services.sync_job_create(job_request(start, end))
        except BaseException as error:
            outcome = error
        finally:
            connection.close()  # each thread has its own connection; leave none open
        with lock:
            results.append(outcome)

    threads = [
        threading.Thread(target=start, args=(OCT_1, OCT_9)),
        threading.Thread(target=start, args=(SEP_1, SEP_30)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    jobs = [r for r in results if isinstance(r, SyncJob)]
    errors = [r for r in results if not isinstance(r, SyncJob)]
    assert len(jobs) == 1, results
    assert len(errors) == 1 and isinstance(errors[0], SyncAlreadyRunning), results
    assert errors[0].message == "已有同步任务正在运行"
    assert list(SyncJob.objects.values_list("pk", "status")) == [(jobs[0].pk, SyncJobStatus.PENDING)]
    assert SyncDay.objects.filter(job_id=jobs[0].pk).count() == jobs[0].total_days
    assert SyncDay.objects.count() == jobs[0].total_days  # the loser left nothing behind


@pytest.mark.usefixtures("foreground")
@pytest.mark.django_db
def test_already_running_message_in_both_languages() -> None:
    services.sync_job_create(job_request())
    with translation.override("en"), pytest.raises(SyncAlreadyRunning) as english:
        services.sync_job_create(job_request(SEP_1, SEP_30))
    with translation.override("zh-hans"), pytest.raises(SyncAlreadyRunning) as chinese:
        services.sync_job_create(job_request(SEP_1, SEP_30))
    assert english.value.message == "A sync job is already running"
    assert chinese.value.message == "已有同步任务正在运行"


@pytest.mark.usefixtures("foreground")
@pytest.mark.django_db
def test_a_queued_request_waits_instead_of_being_refused() -> None:
    first = services.sync_job_create(job_request())
    second = services.sync_job_create(job_request(SEP_1, SEP_30, queue=True))
    assert (first.status, second.status) == (SyncJobStatus.PENDING, SyncJobStatus.QUEUED)


@pytest.mark.usefixtures("foreground")
@pytest.mark.django_db(transaction=True)
def test_the_slot_is_released_when_a_job_finishes() -> None:
    first = services.sync_job_create(job_request())
    with pytest.raises(SyncAlreadyRunning):
        services.sync_job_create(job_request(SEP_1, dt.date(2025, 9, 2)))
    finished = runner.sync_job_run(first.pk).job
    assert finished.status == SyncJobStatus.SUCCEEDED
    second = services.sync_job_create(job_request(SEP_1, dt.date(2025, 9, 2)))
    assert second.status == SyncJobStatus.PENDING


@pytest.mark.usefixtures("foreground")
@pytest.mark.django_db
def test_a_start_recreates_the_lock_row_when_a_flush_removed_it() -> None:
    SyncLock.objects.all().delete()
    job = services.sync_job_create(job_request())
    assert job.status == SyncJobStatus.PENDING
    assert list(SyncLock.objects.values_list("pk", flat=True)) == [1]


# --- messages -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_messages_keep_the_seed_form() -> None:
    started = timezone.now() - dt.timedelta(hours=1)
    finished: SyncJob = SyncJobFactory.create(
        status=SyncJobStatus.SUCCEEDED,
        total_days=10,
        processed_days=10,
        success_days=7,
        skipped_days=3,
        started_at=started,
        active_seconds=930.0,
    )
    running: SyncJob = SyncJobFactory.create(
        status=SyncJobStatus.RUNNING,
        total_days=9,
        processed_days=3,
        success_days=2,
        skipped_days=1,
        current_date=dt.date(2025, 10, 3),
        started_at=started,
        running_since=timezone.now(),
    )
    pending: SyncJob = SyncJobFactory.build(
        status=SyncJobStatus.PENDING, total_days=9
    )  # one active job at most
    with translation.override("zh-hans"):
        assert finished.message == "批量同步完成: 成功7, 失败0, 跳过3, 耗时15分30秒"
        assert running.message == "正在同步 2025-10-03... (33.3%)"
        assert pending.message == "批量同步任务已启动，将同步 9 天的数据"  # noqa: RUF001 - the seed's comma
    with translation.override("en"):
        assert finished.message == "Batch sync finished: 7 succeeded, 0 failed, 3 skipped, took 15m 30s"
        assert running.message == "Syncing 2025-10-03... (33.3%)"


# --- claims and progress ------------------------------------------------------------------


def _job_row_version(job: SyncJob) -> str:
    """The job row's xmin: it changes with every UPDATE of the row (not with a lock)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT xmin::text FROM batchsync_syncjob WHERE id = %s", [job.pk])
        return str(cursor.fetchone()[0])


@pytest.mark.usefixtures("foreground")
@pytest.mark.django_db(transaction=True)
def test_a_claim_publishes_progress_only_when_asked() -> None:
    job = services.sync_job_create(job_request())  # one trading day
    fence = services.sync_job_join(job.pk, "a:1:x")
    assert fence is not None
    claim = services.sync_day_claim(job.pk, "a:1:x", fence)
    assert claim is not None and claim.progress is not None
    assert claim.progress.processed_days == 0
    # The only day is taken: an idle worker's poll changes nothing, not even the job row.
    before = _job_row_version(job)
    assert services.sync_day_claim(job.pk, "b:1:x", fence, publish_progress=False) is None
    assert _job_row_version(job) == before
    # A worker that finished a day publishes it with its next claim, even with no day left.
    SyncDay.objects.filter(pk=claim.id).update(status=SyncDayStatus.SUCCEEDED, rows=5500)
    assert services.sync_day_claim(job.pk, "a:1:x", fence) is None
    assert _job_row_version(job) != before
    job.refresh_from_db()
    assert (job.processed_days, job.success_days, job.rows_loaded) == (1, 1, 5500)


@pytest.mark.django_db
def test_plan_summary_counts_the_plan_once_for_command_api_and_admin() -> None:
    plan = services.sync_days_plan(SEP_1, SEP_30, Reprocess.FAILED)
    with translation.override("en"):
        summary = services.sync_days_plan_summary(plan)
    assert (summary.days, summary.to_load, summary.skipped) == (30, 22, 8)
    assert [day.loads for day in plan].count(True) == summary.to_load
    assert summary.message == "Dry run: 30 days, 22 to load, 8 skipped; nothing was created"
    with translation.override("zh-hans"):
        assert services.sync_days_plan_summary(plan).message != summary.message


# --- jobs of chosen days (re-run, like Airflow's "clear") ----------------------------------


def test_days_parse_reads_days_and_ranges_and_format_writes_them_back() -> None:
    days = services.sync_days_parse("2025-10-13..2025-10-15, 2025-10-09,2025-10-14")
    assert days == (OCT_9, dt.date(2025, 10, 13), dt.date(2025, 10, 14), dt.date(2025, 10, 15))
    assert services.sync_days_format(days) == "2025-10-09,2025-10-13..2025-10-15"
    for bad in ("", "2025-10-32", "2025-10-09..2025-10-01", "yesterday"):
        with translation.override("en"), pytest.raises(InvalidJobRequest) as raised:
            services.sync_days_parse(bad)
        assert raised.value.field == "days"


@pytest.mark.usefixtures("foreground")
@pytest.mark.django_db
def test_rerun_of_chosen_days_creates_a_job_of_exactly_those_days_and_its_retry_keeps_them() -> None:
    sep_22 = dt.date(2025, 9, 22)
    original = services.sync_job_create(job_request(sep_22, SEP_30, reprocess=Reprocess.ALL))
    original = runner.sync_job_run(original.pk).job
    fri, sat, mon = dt.date(2025, 9, 26), dt.date(2025, 9, 27), dt.date(2025, 9, 29)
    rerun = services.sync_job_rerun_days(original, [mon, sat, fri], requested_by="ops")
    assert rerun.retry_of == original and rerun.requested_by == "ops"
    assert (rerun.start_date, rerun.end_date, rerun.total_days) == (fri, mon, 3)
    # Force reload: the loaded days load again; the Saturday is skipped as non-trading.
    states = dict(rerun.days.values_list("date", "status"))
    assert states == {fri: SyncDayStatus.PENDING, sat: SyncDayStatus.SKIPPED, mon: SyncDayStatus.PENDING}
    rerun = runner.sync_job_run(rerun.pk).job
    assert rerun.status == SyncJobStatus.SUCCEEDED and rerun.success_days == 2
    assert services.sync_job_day_list(rerun) == (fri, sat, mon)
    assert services.sync_job_day_list(original) == ()
    # A verify job's re-run verifies the chosen days again (the same kind and mode).
    verify = services.verify_job_create(services.verify_request_build(start_date=sep_22, end_date=SEP_30))
    verify = runner.sync_job_run(verify.pk).job
    again = runner.sync_job_run(services.sync_job_rerun_days(verify, [mon]).pk).job
    assert (again.kind, again.verify_mode, again.total_days) == (verify.kind, verify.verify_mode, 1)
    assert again.kind == "verify" and again.status == SyncJobStatus.SUCCEEDED and again.success_days == 1
    retry = services.sync_job_retry(rerun, reprocess=Reprocess.ALL)
    assert set(retry.days.values_list("date", flat=True)) == {fri, sat, mon}


@pytest.mark.usefixtures("foreground")
@pytest.mark.django_db
def test_rerun_refuses_days_outside_the_job_and_queues_behind_a_running_job() -> None:
    original = services.sync_job_create(job_request(OCT_1, OCT_9))
    with translation.override("en"), pytest.raises(InvalidJobRequest) as raised:
        services.sync_job_rerun_days(original, [dt.date(2025, 10, 10)])
    assert raised.value.field == "days" and "outside the range 2025-10-01..2025-10-09" in raised.value.message
    with pytest.raises(InvalidJobRequest):
        services.sync_job_rerun_days(original, [])
    with pytest.raises(SyncAlreadyRunning):  # the original still holds the slot
        services.sync_job_rerun_days(original, [OCT_9])
    queued = services.sync_job_rerun_days(original, [OCT_9], queue=True)
    assert queued.status == SyncJobStatus.QUEUED and queued.total_days == 1


@pytest.mark.usefixtures("foreground")
@pytest.mark.django_db
def test_a_data_error_is_kept_without_a_traceback_an_unexpected_one_with_it(csv_dir: Any) -> None:
    job = services.sync_job_create(
        job_request(OCT_9, OCT_9, source="csv", source_options={"path": str(csv_dir)})
    )
    job = runner.sync_job_run(job.pk).job
    error = job.errors.get()
    assert "2025-10-09" in error.error and error.traceback == ""  # a missing file: what and where
    try:
        raise ValueError("a bug")
    except ValueError as bug:
        assert "Traceback (most recent call last)" in error_traceback(bug)
