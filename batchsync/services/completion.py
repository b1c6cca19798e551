"""When a job's run ends (finished, paused or cancelled) and which queued job gets the slot next."""

from __future__ import annotations

import datetime as dt
import logging

from django.db import transaction
from django.utils import timezone

from batchsync.check_models import DayFinding
from batchsync.dispatch import job_dispatch
from batchsync.event_models import SyncJobEventKind
from batchsync.logs import Shown, log_event
from batchsync.models import (
    FINISHED_STATUSES,
    WORKING_STATUSES,
    SyncDay,
    SyncDayStatus,
    SyncJob,
    SyncJobStatus,
)
from batchsync.services.alerts import alert_job_finished
from batchsync.services.events import job_event_record
from batchsync.services.locks import job_lock, lease_until, slot_lock
from batchsync.services.notify import job_event_publish
from batchsync.services.progress import progress_refresh

logger = logging.getLogger("batchsync.jobs")

S = SyncJobStatus


def bank_active_time(job: SyncJob, now: dt.datetime) -> None:
    """Add the time since the job last started running to its active seconds."""
    if job.running_since is not None:
        job.active_seconds += (now - job.running_since).total_seconds()
        job.running_since = None


def days_release_expired(job_id: int, now: dt.datetime) -> int:
    """Give a job's days whose worker is gone back to pending (attempts are kept).

    SKIP LOCKED: a day still locked by a frozen worker's transaction is left for later rather
    than waited on (the caller may hold the slot lock).
    """
    expired = list(
        SyncDay.objects.filter(job_id=job_id, status=SyncDayStatus.RUNNING, lease_expires_at__lt=now)
        .select_for_update(skip_locked=True)
        .values_list("pk", flat=True)
    )
    return SyncDay.objects.filter(pk__in=expired).update(status=SyncDayStatus.PENDING, lease_expires_at=None)


def queue_advance() -> SyncJob | None:
    """Move the next queued job into the free slot (caller holds the `SyncLock` row)."""
    if SyncJob.objects.active().exists():
        return None
    job = SyncJob.objects.queued_in_order().select_for_update().first()
    if job is None:
        return None
    job.status = S.PENDING
    job.lease_expires_at = lease_until(timezone.now())  # deadline for a worker to pick it up
    job.save(update_fields=["status", "lease_expires_at"])
    job_event_record(job, SyncJobEventKind.DEQUEUED, status=job.status)
    job_event_publish(job.pk)
    job_dispatch(job, job.parallelism)
    log_event(logger, "dequeued", job=job.task_id, status="pending")
    return job


def _record_end(job: SyncJob) -> None:
    """The end of a run on the timeline: finished (with its outcome), or stopped when paused."""
    kind = SyncJobEventKind.FINISHED if job.status in FINISHED_STATUSES else SyncJobEventKind.STOPPED
    job_event_record(
        job,
        kind,
        status=job.status,
        loaded=job.days_loaded,
        to_load=job.days_to_load,
        failed=job.failed_days,
        skipped=job.skipped_days,
    )


def sync_job_finish_if_done(job_id: int) -> SyncJob:
    """End the job's run when no live worker holds a day: finished, paused or cancelled.

    Runs under the slot lock because finishing frees the slot for the next queued job.
    """
    with transaction.atomic():
        slot_lock()
        job = job_lock(job_id)
        if job.status not in WORKING_STATUSES:
            return job
        now = timezone.now()
        days = SyncDay.objects.filter(job_id=job.pk)
        if days.in_flight(now).exists():
            return job
        if job.status == S.RUNNING and days.claimable(now).exists():
            return job
        if job.status == S.RUNNING:
            job.status = S.FAILED if days.filter(status=SyncDayStatus.FAILED).exists() else S.SUCCEEDED
        elif job.status == S.PAUSING:
            job.status = S.PAUSED
        else:
            job.status = S.CANCELLED
        # Days a stopped job left running (their worker died) go back to pending for resume.
        days_release_expired(job.pk, now)
        bank_active_time(job, now)
        if job.status in FINISHED_STATUSES:
            job.finished_at = now
        job.warning_days = DayFinding.objects.of_job(job.pk).warning_day_count()
        job.lease_expires_at = None
        job.save()
        progress_refresh(job)
        alert_job_finished(job)
        _record_end(job)
        queue_advance()
    log_event(
        logger,
        "finished",
        job=job.task_id,
        status=job.status,
        message=Shown(job.message, str(job.message), bare=True),
    )
    log_event(logger, "released_slot", job=job.task_id)
    return job
