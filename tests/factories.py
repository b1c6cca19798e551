"""factory_boy factories for batchsync's models (real rows in the test PostgreSQL)."""

from __future__ import annotations

import datetime as dt

import factory
from django.utils import timezone

from batchsync.models import SyncDay, SyncDayStatus, SyncError, SyncJob, SyncJobStatus


class SyncJobFactory(factory.django.DjangoModelFactory[SyncJob]):
    class Meta:
        model = SyncJob

    task_id = factory.Sequence(lambda n: f"2025-10-01_2025-10-09_{1697587200 + n}")
    source = "demo"
    start_date = dt.date(2025, 10, 1)
    end_date = dt.date(2025, 10, 9)
    status = SyncJobStatus.SUCCEEDED
    total_days = 0


class SyncDayFactory(factory.django.DjangoModelFactory[SyncDay]):
    class Meta:
        model = SyncDay

    job = factory.SubFactory(SyncJobFactory)
    date = factory.Sequence(lambda n: dt.date(2025, 9, 1) + dt.timedelta(days=n))
    status = SyncDayStatus.PENDING


class SyncErrorFactory(factory.django.DjangoModelFactory[SyncError]):
    class Meta:
        model = SyncError

    job = factory.SubFactory(SyncJobFactory)
    date = dt.date(2025, 10, 3)
    error = "connection timeout"
    created_at = factory.LazyFunction(timezone.now)


LONG_ERROR_CHARS = 3000


def long_job_create(
    years: int = 20, *, end: dt.date = dt.date(2025, 12, 31), status: str = SyncJobStatus.RUNNING
) -> SyncJob:
    """A job of `years` years with realistic mixed day states, built with bulk inserts (not run).

    Weekends skipped (non-trading), two of three older weekdays loaded and one already loaded,
    a failed day every 97 days (one with a LONG_ERROR_CHARS message), the last tenth pending
    and its first day running. Counts are computed from the days as a worker would.
    """
    from batchsync.services.progress import progress_refresh

    start = dt.date(end.year - years + 1, 1, 1)
    total = (end - start).days + 1
    job = SyncJobFactory.create(
        task_id=f"{start}_{end}_1700000000",
        start_date=start,
        end_date=end,
        status=status,
        started_at=timezone.now() - dt.timedelta(hours=3),
        total_days=total,
    )
    pending_from = total - total // 10
    now = timezone.now()
    days = []
    for n in range(total):
        date = start + dt.timedelta(days=n)
        status_, reason, rows, error = SyncDayStatus.SUCCEEDED, "", 5500, ""
        if date.weekday() >= 5:
            status_, reason, rows = SyncDayStatus.SKIPPED, "non_trading", 0
        elif n >= pending_from:
            status_, rows = (SyncDayStatus.RUNNING if n == pending_from else SyncDayStatus.PENDING), 0
        elif n % 97 == 0:
            status_, rows = SyncDayStatus.FAILED, 0
            error = f"{date}.csv: line 12: column close: bad value 'x'"
            if n == 97 * 3:
                error = f"{date}.csv: " + "a very long upstream error " * (LONG_ERROR_CHARS // 27)
        elif n % 3 == 0:
            status_, reason, rows = SyncDayStatus.SKIPPED, "already_loaded", 0
        done = status_ in (SyncDayStatus.SUCCEEDED, SyncDayStatus.FAILED)
        days.append(
            SyncDay(
                job=job,
                date=date,
                status=status_,
                skip_reason=reason,
                rows=rows,
                attempts=1 if done or status_ == SyncDayStatus.RUNNING else 0,
                duration_seconds=0.8 if done else None,
                last_error=error,
                started_at=now - dt.timedelta(hours=2) if done else None,
                finished_at=now - dt.timedelta(hours=2) if done else None,
            )
        )
    SyncDay.objects.bulk_create(days, batch_size=2000)
    SyncError.objects.bulk_create(
        SyncError(job=job, day=day, date=day.date, error=day.last_error, file=f"{day.date}.csv", line=12)
        for day in SyncDay.objects.filter(job=job, status=SyncDayStatus.FAILED)
    )
    progress_refresh(job)
    return job
