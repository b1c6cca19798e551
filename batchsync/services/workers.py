"""The worker protocol: join a job, claim a day, prove the claim (fence), keep it (heartbeat).

A day is loaded in one transaction by `runner`; these services are its steps. A worker that
lost its claim (frozen past its lease, then woken) is stopped by the fence and commits nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import traceback as traceback_module
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from batchsync import sql
from batchsync.conf import get_settings
from batchsync.event_models import SyncJobEventKind
from batchsync.exceptions import BatchSyncError, LeaseLost
from batchsync.logs import Shown, log_event
from batchsync.models import WORKING_STATUSES, SyncDay, SyncDayStatus, SyncError, SyncJob, SyncJobStatus
from batchsync.services.events import job_event_record, worker_actor
from batchsync.services.locks import already_running, job_lock, lease_until, slot_lock
from batchsync.services.notify import day_event_publish, job_event_publish
from batchsync.services.progress import JobProgress, progress_refresh
from batchsync.services.recovery import sessions_end

logger = logging.getLogger("batchsync.jobs")

S = SyncJobStatus


@dataclass(frozen=True)
class ClaimedDay:
    id: int
    date: dt.date
    fence: int
    attempt: int
    progress: JobProgress | None = None  # the job's progress, published by the claim


def sync_job_join(job_id: int, worker_id: str) -> int | None:
    """Start (pending -> running) or join a running job; return its fence, or None to stop."""
    with transaction.atomic():
        job = job_lock(job_id)
        now = timezone.now()
        started = job.status == S.PENDING
        if started:
            job.status = S.RUNNING
            job.fence += 1
            job.started_at = job.started_at or now
            job.running_since = now
            job.finished_at = None
            job_event_record(job, SyncJobEventKind.STARTED, worker_actor(worker_id), fence=job.fence)
            log_event(
                logger,
                "started",
                job=job.task_id,
                range=Shown((job.start_date, job.end_date), f"{job.start_date}..{job.end_date}"),
                days=job.total_days,
                to_load=job.total_days - job.processed_days,
                fence=job.fence,
            )
        elif job.status != S.RUNNING:
            return None
        job.worker_id = worker_id
        job.lease_expires_at = lease_until(now)
        job.save()
        if started:
            job_event_publish(job.pk)  # pending -> running, sent on commit
        return job.fence


def sync_job_take_over(job_id: int, worker_id: str) -> SyncJob:
    """Take over a job whose workers are gone (its lease ran out), to run it in the foreground.

    For a rerun of the same command (or `resume`) after the foreground run was killed: with no
    cluster nobody else would ever continue the job. Under the slot lock, so of two reruns at
    once one takes it; while the lease still runs this raises `SyncAlreadyRunning` with the
    job's facts (among them the seconds until it can be taken over).
    """
    with transaction.atomic():
        slot_lock()
        job = job_lock(job_id)
        now = timezone.now()
        alive = job.lease_expires_at is not None and job.lease_expires_at >= now
        if job.status not in (S.PENDING, S.RUNNING) or alive:
            raise already_running(job)
        previous = job.worker_id
        job.worker_id = worker_id
        job.lease_expires_at = lease_until(now)
        job.save(update_fields=["worker_id", "lease_expires_at"])
        job_event_record(
            job, SyncJobEventKind.TAKEN_OVER, worker_actor(worker_id), previous_worker=previous or None
        )
    log_event(
        logger,
        "taken_over",
        level=logging.WARNING,
        job=job.task_id,
        status=job.status,
        worker=worker_id,
        previous_worker=previous or "-",
    )
    return job


def sync_day_claim(
    job_id: int, worker_id: str, fence: int, *, publish_progress: bool = True
) -> ClaimedDay | None:
    """Take the job's next day (earliest first) for this worker, or None when it should stop.

    With `publish_progress` the same transaction commits the job's progress (counts, ETA) so
    far: this is the progress commit after the worker's previous day, outside any day's COPY
    transaction, folded into the next claim to save a transaction per day. It runs even when
    no day is left to claim, as long as the job still runs; a job that stops is refreshed by
    its finish. An idle worker polling for days passes False: nothing of its own changed.

    FOR UPDATE SKIP LOCKED lets many workers claim days of one job without waiting on each
    other; a running day whose lease ran out (its worker died) is claimable again. The job row
    is locked first (briefly) so that concurrent claims respect `parallelism` exactly. A day
    claimable again after using up its attempts has crashed its worker every time: it is
    failed instead of looping forever (finished attempts never leave a day claimable).
    """
    config = get_settings()
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            now = timezone.now()
            params: dict[str, Any] = {"job": job_id, "job_running": S.RUNNING, "fence": fence}
            cursor.execute(sql.CLAIM_LOCK_JOB, params)
            locked = cursor.fetchone()
            if locked is None:
                return None
            parallelism, started_at, active_seconds, running_since, eta = locked
            progress = None
            if publish_progress:
                progress = progress_refresh(
                    SyncJob(
                        pk=job_id,
                        status=S.RUNNING,
                        started_at=started_at,
                        active_seconds=active_seconds,
                        running_since=running_since,
                        estimated_completion=eta,
                    )
                )
                publish_progress = False  # once: the loop below may claim again
            params.update(
                parallelism=parallelism,
                pending=SyncDayStatus.PENDING,
                running=SyncDayStatus.RUNNING,
                now=now,
                until=lease_until(now),
                worker=worker_id,
                max_attempts=config.max_day_attempts,
            )
            cursor.execute(sql.CLAIM_DAY, params)
            row = cursor.fetchone()
            if row is None:
                return None
            day_id, date, day_fence, attempts = row
            if date is None:  # used up its attempts: locked by the statement above, fail it
                day = SyncDay.objects.get(pk=day_id)
                _day_fail(
                    day,
                    _("The worker stopped during this day %(n)s times (killed or lost); giving up")
                    % {"n": day.attempts},
                    tb="",
                    file="",
                    line=None,
                )
                publish_progress = True  # the failed day counts: publish it with the next claim
                continue
            return ClaimedDay(id=day_id, date=date, fence=day_fence, attempt=attempts, progress=progress)


def sync_day_lock_for_commit(claim: ClaimedDay, worker_id: str, job_fence: int) -> None:
    """Inside the day's transaction: lock the day and prove this worker still owns it.

    This is the fence: a worker that lost its lease (frozen past expiry, then woken) finds the
    day re-claimed (fence moved) or reset, raises `LeaseLost`, and its transaction is rolled
    back, so it never commits a day it no longer owns. An expired lease not yet re-claimed
    counts as lost too: someone may be about to take the day, so a late worker stands down.
    """
    params: dict[str, Any] = {
        "day": claim.id,
        "running": SyncDayStatus.RUNNING,
        "fence": claim.fence,
        "worker": worker_id,
        "now": timezone.now(),
        "job_fence": job_fence,
        "working": list(WORKING_STATUSES),
    }
    with connection.cursor() as cursor:
        cursor.execute(sql.DAY_FENCE, params)
        held = cursor.fetchone() is not None
    if not held:
        raise LeaseLost(f"day {claim.date} (job day {claim.id}) is no longer held by {worker_id}")


def sync_day_mark_succeeded(claim: ClaimedDay, rows: int, started: float) -> None:
    """Record a loaded day (in the day's own transaction, right after its COPY and fence)."""
    SyncDay.objects.filter(pk=claim.id).update(
        status=SyncDayStatus.SUCCEEDED,
        rows=rows,
        duration_seconds=round(time.monotonic() - started, 4),
        finished_at=timezone.now(),
        last_error="",
        lease_expires_at=None,
    )
    day_event_publish(claim.id)


def _day_fail(day: SyncDay, message: str, *, tb: str, file: str, line: int | None) -> None:
    day.status = SyncDayStatus.FAILED
    day.last_error = message
    day.finished_at = timezone.now()
    day.lease_expires_at = None
    day.save(update_fields=["status", "last_error", "finished_at", "lease_expires_at"])
    SyncError.objects.create(
        job_id=day.job_id,
        day=day,
        date=day.date,
        error=message,
        traceback=tb,
        file=file,
        line=line,
        attempt=max(day.attempts, 1),
    )
    day_event_publish(day.pk)


def error_traceback(error: BaseException) -> str:
    """The traceback kept with an error: none for a data error (a bad value, a missing file)."""
    if isinstance(error, BatchSyncError):  # our own errors say what and where; no code to show
        return ""
    return "".join(traceback_module.format_exception(error))


def sync_day_record_failure(claim: ClaimedDay, worker_id: str, job_fence: int, error: BaseException) -> bool:
    """Mark a claimed day failed with its error; False when the day is no longer ours."""
    message = str(getattr(error, "message", "") or error) or error.__class__.__name__
    tb = error_traceback(error)
    with transaction.atomic():
        try:
            sync_day_lock_for_commit(claim, worker_id, job_fence)
        except LeaseLost:
            return False
        _day_fail(
            SyncDay.objects.get(pk=claim.id),
            message,
            tb=tb,
            file=getattr(error, "file", "") or "",
            line=getattr(error, "line", None),
        )
    return True


def sync_day_record_retry(claim: ClaimedDay, error: BaseException, attempt: int) -> None:
    """Keep a transient error of a day that will be tried again (the day stays running)."""
    SyncError.objects.create(
        job_id=SyncDay.objects.filter(pk=claim.id).values_list("job_id", flat=True).get(),
        day_id=claim.id,
        date=claim.date,
        error=f"{error} (will retry)",
        traceback=error_traceback(error),
        file=getattr(error, "file", "") or "",
        line=getattr(error, "line", None),
        attempt=attempt,
    )


def sync_worker_heartbeat(
    job_id: int, worker_id: str, claim: ClaimedDay | None, *, job_fence: int | None = None
) -> None:
    """Extend the leases this worker holds (the job's and its day's) in short statements.

    Runs in the heartbeat thread's own connection, so it renews the day's lease while the
    day's transaction is loading: that transaction holds the day row only FOR KEY SHARE (see
    `sql.DAY_FENCE`), which an update of the lease does not wait for. A day longer than the
    lease is kept by its live worker; only a worker that stopped heartbeating loses it. A row
    locked harder (a claim, or the day's final update) is skipped, not waited for.
    """
    until = lease_until(timezone.now())
    jobs = SyncJob.objects.filter(pk=job_id, status__in=WORKING_STATUSES)
    if job_fence is not None:
        jobs = jobs.filter(fence=job_fence)
    jobs.update(lease_expires_at=until)
    if claim is not None:
        with transaction.atomic():
            held = list(
                SyncDay.objects.filter(
                    pk=claim.id, worker_id=worker_id, fence=claim.fence, status=SyncDayStatus.RUNNING
                )
                .select_for_update(no_key=True, skip_locked=True)
                .values_list("pk", flat=True)
            )
            SyncDay.objects.filter(pk__in=held).update(lease_expires_at=until)


def sync_workers_abort(job_id: int, worker_ids: list[str]) -> int:
    """Roll back the days these workers have in flight and give them back to pending.

    For the command's second Ctrl-C. Ending the workers' sessions first rolls their day
    transactions back at once (a worker thread may be mid-COPY, and its transaction holds the
    day row, which the release below would otherwise wait for). Nothing of those days was
    written, so nobody need wait for their leases. Returns the days given back.
    """
    sessions_end(worker_ids)
    return SyncDay.objects.filter(
        job_id=job_id, worker_id__in=worker_ids, status=SyncDayStatus.RUNNING
    ).update(status=SyncDayStatus.PENDING, lease_expires_at=None)


def sync_job_worth_waiting(job_id: int, fence: int) -> bool:
    """Should an idle worker stay? Yes while the job runs and days are left it may yet take.

    Days are left while some are pending (locked, or over the parallelism cap right now) or
    held by other workers, whose lease runs out if they died. The caller bounds the wait.
    """
    job = SyncJob.objects.filter(pk=job_id).values("status", "fence").first()
    if job is None or job["status"] != S.RUNNING or job["fence"] != fence:
        return False
    days = SyncDay.objects.filter(job_id=job_id)
    return days.filter(status__in=[SyncDayStatus.PENDING, SyncDayStatus.RUNNING]).exists()
