"""A job's progress: counts, rows and the ETA, recomputed from its days after every day."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone

from batchsync import sql
from batchsync.models import WORKING_STATUSES, SyncDayStatus, SyncJob
from batchsync.services.locks import job_lock
from batchsync.services.notify import job_event_publish


@dataclass(frozen=True)
class JobProgress:
    """A job's counts, rows and ETA, as just recomputed from its days and committed."""

    success_days: int
    failed_days: int
    skipped_days: int
    rows_loaded: int
    estimated_completion: dt.datetime | None

    @property
    def processed_days(self) -> int:
        return self.success_days + self.failed_days + self.skipped_days

    def apply_to(self, job: SyncJob) -> None:
        job.success_days = self.success_days
        job.failed_days = self.failed_days
        job.skipped_days = self.skipped_days
        job.processed_days = self.processed_days
        job.rows_loaded = self.rows_loaded
        job.estimated_completion = self.estimated_completion


def progress_refresh(job: SyncJob) -> JobProgress:
    """Recompute the job's counts, rows and ETA from its days (idempotent, so crash-safe).

    ETA: remaining days x seconds per attempted day while the job works; none once it stops
    or nothing remains; unchanged while no day was attempted yet. The caller holds the job row
    (locked, or just created), so the statement always finds it. Listeners get the job's event
    when the caller's transaction commits (`services.notify`).
    """
    params = {
        "job": job.pk,
        "working": job.status in WORKING_STATUSES,
        "elapsed": job.duration_seconds,
        "now": timezone.now(),
        "eta": job.estimated_completion,
        "succeeded": SyncDayStatus.SUCCEEDED,
        "failed": SyncDayStatus.FAILED,
        "skipped": SyncDayStatus.SKIPPED,
        "pending": SyncDayStatus.PENDING,
        "running": SyncDayStatus.RUNNING,
    }
    with connection.cursor() as cursor:
        cursor.execute(sql.PROGRESS_REFRESH, params)
        row = cursor.fetchone()
    if row is None:
        raise SyncJob.DoesNotExist(f"job {job.pk} is gone")
    progress = JobProgress(*row)
    progress.apply_to(job)
    job_event_publish(job.pk)  # delivered when the caller's transaction commits
    return progress


def commit_without_flush() -> None:
    """Let this transaction commit without waiting for its WAL flush (a per-day saving).

    Only for what is redone after a server crash anyway: a lost claim leaves the day pending
    (its worker's session died with the server), lost progress is recounted from the days.
    The worker that thought it held the day finds that out at its fence (`LeaseLost`) and
    simply claims again (`runner.sync_job_run`). The day's own load commits synchronously,
    which flushes these earlier commits too.
    """
    with connection.cursor() as cursor:
        cursor.execute(sql.COMMIT_WITHOUT_FLUSH)


def sync_job_progress_commit(job_id: int) -> SyncJob:
    """Commit the job's progress after a day, outside the day's COPY transaction.

    The job row is locked (briefly) so the ETA is decided on its committed status: read
    unlocked, another worker could finish the job (paused, ETA cleared) in between, and this
    update would then put a stale ETA back on the finished job.
    """
    with transaction.atomic():
        commit_without_flush()
        job = job_lock(job_id)
        progress_refresh(job)
    return job
