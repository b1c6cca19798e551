"""Recovery: the reaper for stalled jobs, and ending the database sessions of lost workers."""

from __future__ import annotations

import datetime as dt
import logging

from django.db import DatabaseError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from batchsync import sessions, sql
from batchsync.conf import get_settings
from batchsync.dispatch import in_foreground, job_dispatch
from batchsync.event_models import SyncJobEventKind
from batchsync.logs import log_event
from batchsync.models import WORKING_STATUSES, SyncDay, SyncDayStatus, SyncJob, SyncJobStatus
from batchsync.services.alerts import alert_job_recovered_by_reaper
from batchsync.services.completion import days_release_expired, sync_job_finish_if_done
from batchsync.services.events import REAPER, job_event_record
from batchsync.services.locks import lease_until

logger = logging.getLogger("batchsync.jobs")

S = SyncJobStatus


def sessions_end(worker_ids: list[str]) -> int:
    """Terminate the other database sessions named after these workers; return how many ended.

    Waits up to 2 s for each to be gone, so their transactions are rolled back on return.
    """
    names = sorted({worker[:63] for worker in worker_ids})
    with connection.cursor() as cursor:
        cursor.execute(
            sql.SESSIONS_END,
            [names],
        )
        (ended,) = cursor.fetchone()
    return int(ended)


def sync_days_fence_expired(job_id: int | None = None) -> int:
    """End the database sessions of workers whose day lease ran out; return how many ended.

    A worker frozen inside its day transaction (SIGSTOP, a paused VM, a stuck NFS read) keeps
    the day row locked, so nobody can take the day over, and PostgreSQL cancels nothing while
    a COPY waits for its client (not even `statement_timeout`). Terminating its sessions rolls
    that transaction back and frees the day; if the worker ever wakes, its connection is gone
    and the day's fence has moved, so it commits nothing. Workers name their sessions after
    their worker id (`application_name`), which is how they are found here.
    """
    now = timezone.now()
    expired = SyncDay.objects.filter(status=SyncDayStatus.RUNNING, lease_expires_at__lt=now).exclude(
        worker_id=""
    )
    if job_id is not None:
        expired = expired.filter(job_id=job_id)
    workers = sorted({worker[:63] for worker in expired.values_list("worker_id", flat=True)})
    if not workers:
        return 0
    try:
        ended = sessions_end(workers)
    except DatabaseError:
        # Not allowed to signal those sessions (another role): the lease still fences them.
        log_event(logger, "fence_failed", level=logging.WARNING, exc_info=True, workers=",".join(workers))
        return 0
    if ended:
        log_event(logger, "fenced", level=logging.WARNING, sessions=ended, workers=",".join(workers))
    return int(ended)


def days_release_dead_workers(job: SyncJob) -> int:
    """Give back to pending the days in flight whose worker has no database session left.

    A killed worker's day lease outlives it by up to a lease; its sessions do not. Without
    this, a cancel or pause of a job whose worker was killed waits for the reaper. Should a
    worker merely be reconnecting, the fence stops it from committing the day it lost.
    """
    in_flight = SyncDay.objects.filter(job_id=job.pk).in_flight(timezone.now())
    workers = set(in_flight.exclude(worker_id="").values_list("worker_id", flat=True))
    dead = workers - sessions.sync_workers_alive(workers)
    if not dead:
        return 0
    with transaction.atomic():
        days = list(
            in_flight.filter(worker_id__in=dead)
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)
        )
        released = SyncDay.objects.filter(pk__in=days).update(
            status=SyncDayStatus.PENDING, lease_expires_at=None
        )
    log_event(
        logger,
        "days_released_dead_workers",
        level=logging.WARNING,
        job=job.task_id,
        days=released,
        workers=",".join(sorted(dead)),
    )
    return released


def sync_jobs_recover_stalled() -> list[SyncJob]:
    """Reaper: give stalled jobs (no live worker) back to workers, or finish them.

    A job is stalled when its lease ran out: its workers were killed, their machine is gone
    or they are frozen. Frozen workers' sessions are ended first (`sync_days_fence_expired`),
    the expired days go back to pending with their attempts counted (a day that keeps killing
    its worker is failed at the next claim once it has used `MAX_DAY_ATTEMPTS`), and new
    workers are enqueued; a pausing or cancelling job is finished instead. Pending jobs no
    worker picked up in time (the task was lost with a Redis worker, or the process died
    between commit and enqueue) are enqueued again. Runs as a django-q2 schedule, at every job
    start and from `batch_sync recover`; running it twice at once is harmless (SKIP LOCKED).

    In the foreground (`dispatch.handoff(foreground=True)`: a foreground start, which runs its
    own job and has no cluster to hand work to) a stalled running job is left as it is, lease
    expired, for the rerun of its command or `resume` to take over; nothing is queued for a
    cluster that may not exist.
    """
    foreground = in_foreground()
    recovered: list[SyncJob] = []
    now = timezone.now()
    for job_id in SyncJob.objects.stalled(now).values_list("pk", flat=True):
        sync_days_fence_expired(job_id)
        with transaction.atomic():
            job = SyncJob.objects.select_for_update(skip_locked=True).filter(pk=job_id).first()
            if job is None or job.status not in WORKING_STATUSES:
                continue
            if job.lease_expires_at is not None and job.lease_expires_at >= now:
                continue
            released = days_release_expired(job.pk, now)
            if job.status == S.RUNNING and foreground:
                # Nobody to hand it to: renewing its lease would only make a dead job look
                # alive, and refuse the rerun that would take it over (`sync_job_take_over`).
                log_event(
                    logger,
                    "stalled",
                    level=logging.WARNING,
                    job=job.task_id,
                    status="running",
                    days_released=released,
                    worker=job.worker_id or "-",
                )
                continue
            job.recoveries += 1
            job.lease_expires_at = lease_until(now)
            job.save(update_fields=["recoveries", "lease_expires_at"])
            alert_job_recovered_by_reaper(job)
            job_event_record(
                job,
                SyncJobEventKind.RECOVERED,
                REAPER,
                status=job.status,
                days_released=released,
                worker=job.worker_id,
            )
            if job.status == S.RUNNING:
                job_dispatch(job, job.parallelism)
            log_event(
                logger,
                "recovered",
                level=logging.WARNING,
                job=job.task_id,
                status=job.status,
                days_released=released,
                recoveries=job.recoveries,
            )
        if job.status != S.RUNNING:
            job = sync_job_finish_if_done(job.pk)
        recovered.append(job)
    if foreground:
        return recovered
    # Pending jobs whose pickup deadline (the lease set when they became pending) passed.
    unclaimed = SyncJob.objects.filter(status=S.PENDING).filter(
        Q(lease_expires_at__lt=now)
        | Q(
            lease_expires_at__isnull=True,
            created_at__lt=now - dt.timedelta(seconds=get_settings().lease_seconds),
        )
    )
    for job_id in unclaimed.values_list("pk", flat=True):
        with transaction.atomic():
            job = (
                SyncJob.objects.select_for_update(skip_locked=True)
                .filter(pk=job_id, status=S.PENDING)
                .filter(Q(lease_expires_at__lt=now) | Q(lease_expires_at__isnull=True))
                .first()
            )
            if job is None:
                continue
            job.lease_expires_at = lease_until(now)
            job.recoveries += 1
            job.save(update_fields=["lease_expires_at", "recoveries"])
            alert_job_recovered_by_reaper(job)
            job_event_record(job, SyncJobEventKind.RECOVERED, REAPER, status=job.status, unclaimed=True)
            job_dispatch(job, job.parallelism)
            log_event(
                logger,
                "requeued",
                level=logging.WARNING,
                job=job.task_id,
                status="pending",
                recoveries=job.recoveries,
            )
        recovered.append(job)
    return recovered
