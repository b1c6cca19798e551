"""Operator lifecycle: creating, retrying, cancelling, pausing and resuming jobs, and the queue.

Transactions are short on purpose: starting a job locks the singleton `SyncLock` row only for
the few statements that check the running slot and insert the job; a day's load is its own
transaction (in `runner`); progress is committed after each day in another one. Nothing holds
a lock or a transaction open for the length of a job.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Sequence

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from batchsync.conf import get_settings
from batchsync.dispatch import job_dispatch
from batchsync.event_models import SyncJobEventKind
from batchsync.exceptions import InvalidJobRequest, InvalidTransition, SyncAlreadyRunning
from batchsync.logs import Shown, log_event
from batchsync.models import (
    ACTIVE_STATUSES,
    FINISHED_STATUSES,
    Reprocess,
    SyncDay,
    SyncJob,
    SyncJobKind,
    SyncJobStatus,
)
from batchsync.services.completion import bank_active_time, queue_advance, sync_job_finish_if_done
from batchsync.services.events import job_event_record
from batchsync.services.locks import already_running, job_lock, lease_until, slot_lock
from batchsync.services.planning import JobRequest, sync_days_plan, sync_request_validate
from batchsync.services.progress import progress_refresh
from batchsync.services.recovery import days_release_dead_workers, sync_jobs_recover_stalled
from batchsync.verify import verify_days_plan

logger = logging.getLogger("batchsync.jobs")

S = SyncJobStatus


# Operator transitions: operation -> {from status: to status}. Worker-driven transitions
# (pending -> running, running -> succeeded/failed, pausing -> paused, cancelling ->
# cancelled) are in `sync_job_join` and `sync_job_finish_if_done`.
TRANSITIONS: dict[str, dict[str, str]] = {
    "cancel": {
        S.PENDING: S.CANCELLED,
        S.QUEUED: S.CANCELLED,
        S.PAUSED: S.CANCELLED,
        S.RUNNING: S.CANCELLING,
        S.PAUSING: S.CANCELLING,
        S.CANCELLING: S.CANCELLING,  # again: harmless, and finishes it if its workers died since
    },
    "pause": {S.PENDING: S.PAUSED, S.QUEUED: S.PAUSED, S.RUNNING: S.PAUSING},
    # A paused job goes back to pending, or to queued when another job holds the slot.
    "resume": {S.PAUSED: S.PENDING, S.PAUSING: S.RUNNING},
    # Retry leaves the finished job as it is and starts a new one (pending, or queued).
    "retry": {S.SUCCEEDED: S.PENDING, S.FAILED: S.PENDING, S.CANCELLED: S.PENDING},
}


def _new_task_id(start_date: dt.date, end_date: dt.date) -> str:
    """The seed's task id form, `<start>_<end>_<epoch seconds>`, made unique under the lock."""
    base = f"{start_date.isoformat()}_{end_date.isoformat()}_{int(time.time())}"
    task_id, suffix = base, 1
    while SyncJob.objects.filter(task_id=task_id).exists():
        suffix += 1
        task_id = f"{base}_{suffix}"
    return task_id


def sync_job_create(
    request: JobRequest,
    *,
    retry_of: SyncJob | None = None,
) -> SyncJob:
    """Create a job with its days; refuse (or queue) it while another job holds the slot.

    The slot check and the insert happen in one short transaction that holds the singleton
    `SyncLock` row FOR UPDATE, so concurrent starts from any process are serialized; the
    partial unique index `syncjob_one_active` makes a second active job impossible even so.
    A pending job is handed to workers on commit (see `batchsync.dispatch`: the foreground
    command hands it nowhere and runs the job itself).
    """
    sync_request_validate(request)
    if request.kind == SyncJobKind.VERIFY:
        plan = verify_days_plan(request.start_date, request.end_date)
    else:
        plan = sync_days_plan(request.start_date, request.end_date, request.reprocess, source=request.source)
    if request.days:  # a job of chosen days holds only those days of its range
        chosen = set(request.days)
        plan = [day for day in plan if day.date in chosen]
    # A foreground start hands nothing to a cluster: see the reaper's docstring.
    sync_jobs_recover_stalled()
    try:
        with transaction.atomic():
            slot_lock()
            holder = SyncJob.objects.active().first()
            busy = holder is not None
            if holder is not None and not request.queue:
                raise already_running(holder)
            job = SyncJob.objects.create(
                task_id=_new_task_id(request.start_date, request.end_date),
                source=request.source,
                source_options=request.source_options,
                start_date=request.start_date,
                end_date=request.end_date,
                status=S.QUEUED if busy else S.PENDING,
                reprocess=request.reprocess,
                parallelism=request.parallelism or get_settings().default_parallelism,
                priority=request.priority,
                requested_by=request.requested_by,
                retry_of=retry_of,
                kind=request.kind,
                verify_mode=request.verify_mode,
                schedule_id=request.schedule_id,
                total_days=len(plan),
                # A pending job's lease is the deadline for a worker to pick it up (see the reaper).
                lease_expires_at=None if busy else lease_until(timezone.now()),
            )
            SyncDay.objects.bulk_create(
                SyncDay(job=job, date=p.date, status=p.status, skip_reason=p.skip_reason) for p in plan
            )
            progress_refresh(job)
            _record_created(job, retry_of)
            if job.status == S.PENDING:
                job_dispatch(job, job.parallelism)
    except IntegrityError as error:
        if "syncjob_one_active" in str(error):
            holder = SyncJob.objects.active().first()
            raise (already_running(holder) if holder else SyncAlreadyRunning()) from error
        raise
    log_event(
        logger,
        "created",
        job=job.task_id,
        status=job.status,
        range=Shown((job.start_date, job.end_date), f"{job.start_date}..{job.end_date}"),
        days=job.total_days,
        to_load=job.total_days - job.skipped_days,
        source=job.source,
    )
    return job


def _record_created(job: SyncJob, retry_of: SyncJob | None) -> None:
    """The new job's first events (created, and queued when it waits), and `retried` on the original."""
    actor = job.requested_by
    job_event_record(
        job,
        SyncJobEventKind.CREATED,
        actor,
        status=job.status,
        days=job.total_days,
        to_load=job.days_to_load,
        retry_of=retry_of.task_id if retry_of else None,
    )
    if job.status == S.QUEUED:
        job_event_record(job, SyncJobEventKind.QUEUED, actor, priority=job.priority)
    if retry_of is not None:
        job_event_record(retry_of, SyncJobEventKind.RETRIED, actor, new_job=job.task_id, status=job.status)


def sync_job_retry_request(
    job: SyncJob,
    *,
    reprocess: str = Reprocess.FAILED,
    requested_by: str = "",
    queue: bool = False,
    priority: int | None = None,
) -> JobRequest:
    """The request a retry of `job` would make (also what a dry run of the retry plans).

    `priority` (for a queued retry) defaults to the job's own; `sync_job_create` checks its bounds.
    """
    sync_job_check_transition(job, "retry")
    return JobRequest(
        start_date=job.start_date,
        end_date=job.end_date,
        source=job.source,
        source_options=job.source_options,
        reprocess=reprocess,
        parallelism=job.parallelism,
        priority=job.priority if priority is None else priority,
        queue=queue,
        requested_by=requested_by or job.requested_by,
        days=sync_job_day_list(job),
        kind=job.kind,
        verify_mode=job.verify_mode,
    )


def sync_job_day_list(job: SyncJob) -> tuple[dt.date, ...]:
    """The chosen days of a job created for a day list; () for a job of its whole range."""
    if job.total_days == (job.end_date - job.start_date).days + 1:
        return ()
    return tuple(job.days.order_by("date").values_list("date", flat=True))


def sync_job_rerun_request(
    job: SyncJob, days: Sequence[dt.date], *, requested_by: str = "", queue: bool = False
) -> JobRequest:
    """The request re-running exactly `days` of `job` (force reload), like Airflow's "clear"."""
    chosen = tuple(sorted(set(days)))
    if not chosen:
        raise InvalidJobRequest("days", _("Choose at least one day"))
    outside = [day for day in chosen if not job.start_date <= day <= job.end_date]
    if outside:
        raise InvalidJobRequest(
            "days",
            _("%(day)s is outside the range %(start)s..%(end)s")
            % {"day": outside[0], "start": job.start_date, "end": job.end_date},
        )
    return JobRequest(
        start_date=chosen[0],
        end_date=chosen[-1],
        source=job.source,
        source_options=job.source_options,
        reprocess=Reprocess.ALL,
        parallelism=job.parallelism,
        priority=job.priority,
        queue=queue,
        requested_by=requested_by or job.requested_by,
        days=chosen,
        kind=job.kind,
        verify_mode=job.verify_mode,
    )


def sync_job_rerun_days(
    job: SyncJob, days: Sequence[dt.date], *, requested_by: str = "", queue: bool = False
) -> SyncJob:
    """A new job loading exactly `days` of `job` again (any status; queued behind a running job)."""
    job = SyncJob.objects.get(pk=job.pk)
    return sync_job_create(
        sync_job_rerun_request(job, days, requested_by=requested_by, queue=queue), retry_of=job
    )


def sync_job_retry(
    job: SyncJob,
    *,
    reprocess: str = Reprocess.FAILED,
    requested_by: str = "",
    queue: bool = False,
    priority: int | None = None,
) -> SyncJob:
    """Start a new run of a finished job's range; `reprocess` picks which days load again."""
    job = SyncJob.objects.get(pk=job.pk)  # the current status, not the caller's copy
    request = sync_job_retry_request(
        job, reprocess=reprocess, requested_by=requested_by, queue=queue, priority=priority
    )
    return sync_job_create(request, retry_of=job)


def sync_job_check_transition(job: SyncJob, operation: str) -> str:
    """The status `operation` leads to from the job's status, or `InvalidTransition`."""
    target = TRANSITIONS[operation].get(job.status)
    if target is None:
        raise InvalidTransition(
            _("Cannot %(operation)s job %(id)s: %(reason)s")
            % {"operation": _(operation), "id": job.task_id, "reason": status_sentence(job)}
        )
    return target


def status_sentence(job: SyncJob) -> str:
    """Where the job stands, as the end of a sentence: `it has already finished (succeeded)`."""
    if job.status in FINISHED_STATUSES:
        return _("it has already finished (%(status)s)") % {"status": job.get_status_display()}
    sentences = {
        S.PENDING: _("it is waiting for a worker to start it"),
        S.QUEUED: _("it is queued behind the running job"),
        S.RUNNING: _("it is running"),
        S.PAUSING: _("it is pausing after the day in flight"),
        S.PAUSED: _("it is paused"),
        S.CANCELLING: _("it is being cancelled after the day in flight"),
    }
    return sentences[SyncJobStatus(job.status)]


def sync_job_allowed_operations(job: SyncJob) -> list[str]:
    """The operator operations valid for the job now (for buttons and help texts)."""
    return [operation for operation, moves in TRANSITIONS.items() if job.status in moves]


# The timeline's event of each operator transition.
TRANSITION_EVENTS = {
    "cancel": SyncJobEventKind.CANCELLED,
    "pause": SyncJobEventKind.PAUSED,
    "resume": SyncJobEventKind.RESUMED,
}


def _transition(job: SyncJob, operation: str, requested_by: str) -> SyncJob:
    """Apply an operator transition under the slot lock, or raise `InvalidTransition`."""
    with transaction.atomic():
        slot_lock()
        job = job_lock(job)
        target = sync_job_check_transition(job, operation)
        now = timezone.now()
        if target == S.PENDING and SyncJob.objects.active().exclude(pk=job.pk).exists():
            target = S.QUEUED
        job.status = target
        if target in FINISHED_STATUSES or target == S.PAUSED:
            bank_active_time(job, now)
            job.finished_at = now if target in FINISHED_STATUSES else None
            job.estimated_completion = None
            job.lease_expires_at = None
        elif target == S.PENDING:
            job.lease_expires_at = lease_until(now)  # deadline for a worker to pick it up
        job.save()
        progress_refresh(job)
        job_event_record(job, TRANSITION_EVENTS[operation], requested_by, status=job.status)
        # Resuming a pausing job: its workers may have left already; extra ones leave at the cap.
        if target in (S.PENDING, S.RUNNING):
            job_dispatch(job, job.parallelism)
        if target not in ACTIVE_STATUSES:
            queue_advance()
    log_event(logger, operation, job=job.task_id, status=job.status, by=requested_by or "-")
    if target in (S.PAUSING, S.CANCELLING):
        # With no day in flight (workers between days, or all of them gone) stop right now.
        days_release_dead_workers(job)
        job = sync_job_finish_if_done(job.pk)
    return job


def sync_job_cancel(job: SyncJob, *, requested_by: str = "") -> SyncJob:
    """Cancel at once when nothing runs; else `cancelling` until the day in flight is done."""
    return _transition(job, "cancel", requested_by)


def sync_job_pause(job: SyncJob, *, requested_by: str = "") -> SyncJob:
    """Pause after the day in flight; the workers are released."""
    return _transition(job, "pause", requested_by)


def sync_job_resume(job: SyncJob, *, requested_by: str = "") -> SyncJob:
    """Continue a paused job from its first undone day, keeping counts, errors and time."""
    return _transition(job, "resume", requested_by)
