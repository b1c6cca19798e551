"""Job lifecycle: every write to jobs, days and errors, and every status transition, is here.

Transactions are short on purpose: starting a job locks the singleton `SyncLock` row only for
the few statements that check the running slot and insert the job; a day's load is its own
transaction (in `runner`); progress is committed after each day in another one. Nothing holds
a lock or a transaction open for the length of a job.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import traceback as traceback_module
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from batchsync import bounds, calendars, selectors, sessions, sources
from batchsync.conf import get_settings
from batchsync.exceptions import (
    InvalidJobRequest,
    InvalidTransition,
    LeaseLost,
    SyncAlreadyRunning,
)
from batchsync.models import (
    ACTIVE_STATUSES,
    FINISHED_STATUSES,
    WORKING_STATUSES,
    Reprocess,
    SkipReason,
    SyncDay,
    SyncDayStatus,
    SyncError,
    SyncJob,
    SyncJobStatus,
    SyncLock,
)

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

Enqueue = Callable[[SyncJob, int], None]


@dataclass(frozen=True)
class DayPlan:
    date: dt.date
    status: str
    skip_reason: str

    @property
    def loads(self) -> bool:
        """Whether the day would load (else it is skipped, for `skip_reason`)."""
        return self.status == SyncDayStatus.PENDING


@dataclass(frozen=True)
class JobRequest:
    """A validated request for a new job (the API's and the command's input, after parsing)."""

    start_date: dt.date
    end_date: dt.date
    source: str
    source_options: dict[str, Any]
    reprocess: str = Reprocess.FAILED
    parallelism: int | None = None  # None: BATCHSYNC DEFAULT_PARALLELISM (see conf.cpu_parallelism)
    priority: int = 0
    queue: bool = False
    requested_by: str = ""


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


@dataclass(frozen=True)
class ClaimedDay:
    id: int
    date: dt.date
    fence: int
    attempt: int
    progress: JobProgress | None = None  # the job's progress, published by the claim


def sync_job_enqueue_on_commit(job: SyncJob, workers: int) -> None:
    """Hand `workers` runs of the job to the django-q2 cluster once the transaction commits.

    A broker that cannot be reached is logged, not raised: the job is committed by then, and
    the reaper enqueues it again (callers that must tell the user use `tasks.ClusterHandoff`).
    """
    from batchsync.tasks import ClusterHandoff

    ClusterHandoff()(job, workers)


# --- validation and planning -------------------------------------------------------------


def sync_request_validate(request: JobRequest, *, today: dt.date | None = None) -> None:
    """Raise `InvalidJobRequest` naming the field when the request cannot run."""
    bounds.date_range_check(
        request.start_date,
        request.end_date,
        today=today or timezone.localdate(),
        max_days=get_settings().max_range_days,
    )
    if request.reprocess not in Reprocess.values:
        raise InvalidJobRequest("reprocess", _("reprocess must be one of: failed, all, none"))
    if request.parallelism is not None:
        bounds.PARALLELISM.check(request.parallelism)
    bounds.PRIORITY.check(request.priority)
    sources.source_validate(request.source, request.source_options)


def sync_days_plan(
    start_date: dt.date, end_date: dt.date, reprocess: str, *, calendar: str | None = None
) -> list[DayPlan]:
    """Decide for each day of the range: load it, or skip it and why. Reads only."""
    calendar = calendar or get_settings().calendar
    sessions = calendars.trading_days(calendar, start_date, end_date)
    history = (
        SyncDay.objects.filter(
            date__range=(start_date, end_date),
            status__in=[SyncDayStatus.SUCCEEDED, SyncDayStatus.FAILED],
        )
        .values("date")
        .annotate(loaded=Count("id", filter=Q(status=SyncDayStatus.SUCCEEDED)))
    )
    loaded = {row["date"] for row in history if row["loaded"]}
    attempted = {row["date"] for row in history}
    plan: list[DayPlan] = []
    day = start_date
    while day <= end_date:
        if day not in sessions:
            plan.append(DayPlan(day, SyncDayStatus.SKIPPED, SkipReason.NON_TRADING))
        elif reprocess == Reprocess.FAILED and day in loaded:
            plan.append(DayPlan(day, SyncDayStatus.SKIPPED, SkipReason.ALREADY_LOADED))
        elif reprocess == Reprocess.NONE and day in attempted:
            reason = SkipReason.ALREADY_LOADED if day in loaded else SkipReason.PREVIOUSLY_FAILED
            plan.append(DayPlan(day, SyncDayStatus.SKIPPED, reason))
        else:
            plan.append(DayPlan(day, SyncDayStatus.PENDING, SkipReason.NONE))
        day += dt.timedelta(days=1)
    return plan


@dataclass(frozen=True)
class PlanSummary:
    """A plan's counts and the dry run's one-line message (command, API and admin show these)."""

    days: int
    to_load: int
    skipped: int
    message: str


def sync_days_plan_summary(plan: list[DayPlan]) -> PlanSummary:
    """How many days of the plan would load or be skipped, and the dry run's message."""
    to_load = sum(1 for day in plan if day.loads)
    skipped = len(plan) - to_load
    message = _("Dry run: %(days)s days, %(load)s to load, %(skipped)s skipped; nothing was created") % {
        "days": len(plan),
        "load": to_load,
        "skipped": skipped,
    }
    return PlanSummary(days=len(plan), to_load=to_load, skipped=skipped, message=message)


# --- creating jobs -----------------------------------------------------------------------


def _slot_lock() -> None:
    """Lock the singleton `SyncLock` row FOR UPDATE, in the caller's transaction.

    A data migration creates the row, but `manage.py flush` (and a test database reset)
    deletes it; it is recreated here instead of every start failing until a re-migrate.
    """
    try:
        SyncLock.objects.select_for_update().get(pk=1)
    except SyncLock.DoesNotExist:
        SyncLock.objects.bulk_create([SyncLock(pk=1)], ignore_conflicts=True)
        SyncLock.objects.select_for_update().get(pk=1)


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
    enqueue: Enqueue | None = sync_job_enqueue_on_commit,
    retry_of: SyncJob | None = None,
) -> SyncJob:
    """Create a job with its days; refuse (or queue) it while another job holds the slot.

    The slot check and the insert happen in one short transaction that holds the singleton
    `SyncLock` row FOR UPDATE, so concurrent starts from any process are serialized; the
    partial unique index `syncjob_one_active` makes a second active job impossible even so.
    `enqueue` hands the job to workers on commit; the foreground command passes None and runs
    the job itself.
    """
    sync_request_validate(request)
    plan = sync_days_plan(request.start_date, request.end_date, request.reprocess)
    # A foreground start (enqueue None) hands nothing to a cluster: see the reaper's docstring.
    sync_jobs_recover_stalled(enqueue=enqueue)
    try:
        with transaction.atomic():
            _slot_lock()
            holder = SyncJob.objects.active().first()
            busy = holder is not None
            if holder is not None and not request.queue:
                raise _already_running(holder)
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
                total_days=len(plan),
                # A pending job's lease is the deadline for a worker to pick it up (see the reaper).
                lease_expires_at=None if busy else _lease_until(timezone.now()),
            )
            SyncDay.objects.bulk_create(
                SyncDay(job=job, date=p.date, status=p.status, skip_reason=p.skip_reason) for p in plan
            )
            _progress_refresh(job)
            if job.status == S.PENDING and enqueue is not None:
                enqueue(job, job.parallelism)
    except IntegrityError as error:
        if "syncjob_one_active" in str(error):
            holder = SyncJob.objects.active().first()
            raise (_already_running(holder) if holder else SyncAlreadyRunning()) from error
        raise
    logger.info(
        "job=%s event=created status=%s range=%s..%s days=%s to_load=%s source=%s",
        job.task_id,
        job.status,
        job.start_date,
        job.end_date,
        job.total_days,
        job.total_days - job.skipped_days,
        job.source,
    )
    return job


def _already_running(holder: SyncJob) -> SyncAlreadyRunning:
    return SyncAlreadyRunning(job_id=holder.pk, facts=selectors.sync_job_slot_holder(holder))


def sync_job_take_over(job_id: int, worker_id: str) -> SyncJob:
    """Take over a job whose workers are gone (its lease ran out), to run it in the foreground.

    For a rerun of the same command (or `resume`) after the foreground run was killed: with no
    cluster nobody else would ever continue the job. Under the slot lock, so of two reruns at
    once one takes it; while the lease still runs this raises `SyncAlreadyRunning` with the
    job's facts (among them the seconds until it can be taken over).
    """
    with transaction.atomic():
        _slot_lock()
        job = _locked(job_id)
        now = timezone.now()
        alive = job.lease_expires_at is not None and job.lease_expires_at >= now
        if job.status not in (S.PENDING, S.RUNNING) or alive:
            raise _already_running(job)
        previous = job.worker_id
        job.worker_id = worker_id
        job.lease_expires_at = _lease_until(now)
        job.save(update_fields=["worker_id", "lease_expires_at"])
    logger.warning(
        "job=%s event=taken_over status=%s worker=%s previous_worker=%s",
        job.task_id,
        job.status,
        worker_id,
        previous or "-",
    )
    return job


def sync_job_retry_request(
    job: SyncJob, *, reprocess: str = Reprocess.FAILED, requested_by: str = "", queue: bool = False
) -> JobRequest:
    """The request a retry of `job` would make (also what a dry run of the retry plans)."""
    sync_job_check_transition(job, "retry")
    return JobRequest(
        start_date=job.start_date,
        end_date=job.end_date,
        source=job.source,
        source_options=job.source_options,
        reprocess=reprocess,
        parallelism=job.parallelism,
        priority=job.priority,
        queue=queue,
        requested_by=requested_by or job.requested_by,
    )


def sync_job_retry(
    job: SyncJob,
    *,
    reprocess: str = Reprocess.FAILED,
    requested_by: str = "",
    queue: bool = False,
    enqueue: Enqueue | None = sync_job_enqueue_on_commit,
) -> SyncJob:
    """Start a new run of a finished job's range; `reprocess` picks which days load again."""
    job = SyncJob.objects.get(pk=job.pk)  # the current status, not the caller's copy
    request = sync_job_retry_request(job, reprocess=reprocess, requested_by=requested_by, queue=queue)
    return sync_job_create(request, enqueue=enqueue, retry_of=job)


# --- operator transitions ----------------------------------------------------------------


def _locked(job: SyncJob | int) -> SyncJob:
    # FOR NO KEY UPDATE: does not wait for rows that merely reference the job (SyncError inserts).
    return SyncJob.objects.select_for_update(no_key=True).get(pk=job if isinstance(job, int) else job.pk)


def sync_job_check_transition(job: SyncJob, operation: str) -> str:
    """The status `operation` leads to from the job's status, or `InvalidTransition`."""
    target = TRANSITIONS[operation].get(job.status)
    if target is None:
        raise InvalidTransition(
            _("Cannot %(operation)s job %(id)s: it is %(status)s")
            % {"operation": _(operation), "id": job.task_id, "status": job.get_status_display()}
        )
    return target


def sync_job_allowed_operations(job: SyncJob) -> list[str]:
    """The operator operations valid for the job now (for buttons and help texts)."""
    return [operation for operation, moves in TRANSITIONS.items() if job.status in moves]


def _transition(job: SyncJob, operation: str, *, enqueue: Enqueue | None) -> SyncJob:
    """Apply an operator transition under the slot lock, or raise `InvalidTransition`."""
    with transaction.atomic():
        _slot_lock()
        job = _locked(job)
        target = sync_job_check_transition(job, operation)
        now = timezone.now()
        if target == S.PENDING and SyncJob.objects.active().exclude(pk=job.pk).exists():
            target = S.QUEUED
        job.status = target
        if target in FINISHED_STATUSES or target == S.PAUSED:
            _bank_active_time(job, now)
            job.finished_at = now if target in FINISHED_STATUSES else None
            job.estimated_completion = None
            job.lease_expires_at = None
        elif target == S.PENDING:
            job.lease_expires_at = _lease_until(now)  # deadline for a worker to pick it up
        job.save()
        _progress_refresh(job)
        # Resuming a pausing job: its workers may have left already; extra ones leave at the cap.
        if target in (S.PENDING, S.RUNNING) and enqueue is not None:
            enqueue(job, job.parallelism)
        if target not in ACTIVE_STATUSES:
            _queue_advance(enqueue)
    logger.info("job=%s event=%s status=%s", job.task_id, operation, job.status)
    if target in (S.PAUSING, S.CANCELLING):
        # With no day in flight (workers between days, or all of them gone) stop right now.
        _days_release_dead_workers(job)
        job = sync_job_finish_if_done(job.pk, enqueue=enqueue)
    return job


def _days_release_dead_workers(job: SyncJob) -> int:
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
    logger.warning(
        "job=%s event=days_released_dead_workers days=%s workers=%s",
        job.task_id,
        released,
        ",".join(sorted(dead)),
    )
    return released


def sync_job_cancel(job: SyncJob, *, enqueue: Enqueue | None = sync_job_enqueue_on_commit) -> SyncJob:
    """Cancel at once when nothing runs; else `cancelling` until the day in flight is done."""
    return _transition(job, "cancel", enqueue=enqueue)


def sync_job_pause(job: SyncJob, *, enqueue: Enqueue | None = sync_job_enqueue_on_commit) -> SyncJob:
    """Pause after the day in flight; the workers are released."""
    return _transition(job, "pause", enqueue=enqueue)


def sync_job_resume(job: SyncJob, *, enqueue: Enqueue | None = sync_job_enqueue_on_commit) -> SyncJob:
    """Continue a paused job from its first undone day, keeping counts, errors and time."""
    return _transition(job, "resume", enqueue=enqueue)


def _queue_advance(enqueue: Enqueue | None) -> SyncJob | None:
    """Move the next queued job into the free slot (caller holds the `SyncLock` row)."""
    if SyncJob.objects.active().exists():
        return None
    job = SyncJob.objects.queued_in_order().select_for_update().first()
    if job is None:
        return None
    job.status = S.PENDING
    job.lease_expires_at = _lease_until(timezone.now())  # deadline for a worker to pick it up
    job.save(update_fields=["status", "lease_expires_at"])
    if enqueue is not None:
        enqueue(job, job.parallelism)
    logger.info("job=%s event=dequeued status=pending", job.task_id)
    return job


# --- worker side: join, claim, load, finish ------------------------------------------------


def _lease_until(now: dt.datetime) -> dt.datetime:
    return now + dt.timedelta(seconds=get_settings().lease_seconds)


def _bank_active_time(job: SyncJob, now: dt.datetime) -> None:
    if job.running_since is not None:
        job.active_seconds += (now - job.running_since).total_seconds()
        job.running_since = None


def sync_job_join(job_id: int, worker_id: str) -> int | None:
    """Start (pending -> running) or join a running job; return its fence, or None to stop."""
    with transaction.atomic():
        job = _locked(job_id)
        now = timezone.now()
        if job.status == S.PENDING:
            job.status = S.RUNNING
            job.fence += 1
            job.started_at = job.started_at or now
            job.running_since = now
            job.finished_at = None
            logger.info(
                "job=%s event=started range=%s..%s days=%s to_load=%s fence=%s",
                job.task_id,
                job.start_date,
                job.end_date,
                job.total_days,
                job.total_days - job.processed_days,
                job.fence,
            )
        elif job.status != S.RUNNING:
            return None
        job.worker_id = worker_id
        job.lease_expires_at = _lease_until(now)
        job.save()
        return job.fence


# The claim's two statements (raw SQL: they run twice per day, and the ORM's compile time was
# most of the claim's cost). First the job row is locked and the transaction set to commit
# without a WAL flush (`set_config(..., true)` is SET LOCAL; see `_commit_without_flush`).
# The second statement runs after the lock is granted, so its snapshot sees every claim
# committed before: the in-flight count is taken under the lock, as `parallelism` needs.
_CLAIM_LOCK_JOB_SQL = """
SELECT job.parallelism, job.started_at, job.active_seconds, job.running_since, job.estimated_completion
FROM batchsync_syncjob job, set_config('synchronous_commit', 'off', true)
WHERE job.id = %(job)s AND job.status = %(job_running)s AND job.fence = %(fence)s
FOR NO KEY UPDATE OF job
"""
# Pick the earliest claimable day (SKIP LOCKED) when fewer than `parallelism` are in flight,
# take it unless it has used up its attempts, and note it on the job. Returns the picked
# day's id, and its new date/fence/attempts only if it was taken (NULLs: the caller fails it).
_CLAIM_DAY_SQL = """
WITH candidate AS (
    SELECT id FROM batchsync_syncday
    WHERE job_id = %(job)s
      AND (status = %(pending)s OR (status = %(running)s AND lease_expires_at < %(now)s))
      AND (
          SELECT count(*) FROM batchsync_syncday
          WHERE job_id = %(job)s AND status = %(running)s AND lease_expires_at >= %(now)s
      ) < %(parallelism)s
    ORDER BY date
    LIMIT 1
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE batchsync_syncday day
    SET status = %(running)s, worker_id = %(worker)s, lease_expires_at = %(until)s,
        fence = day.fence + 1, attempts = day.attempts + 1, started_at = %(now)s
    FROM candidate
    WHERE day.id = candidate.id AND day.attempts < %(max_attempts)s
    RETURNING day.id, day.date, day.fence, day.attempts
), job AS (
    UPDATE batchsync_syncjob
    SET "current_date" = claimed.date, worker_id = %(worker)s, lease_expires_at = %(until)s
    FROM claimed
    WHERE batchsync_syncjob.id = %(job)s
)
SELECT candidate.id, claimed.date, claimed.fence, claimed.attempts
FROM candidate LEFT JOIN claimed ON claimed.id = candidate.id
"""


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
            cursor.execute(_CLAIM_LOCK_JOB_SQL, params)
            locked = cursor.fetchone()
            if locked is None:
                return None
            parallelism, started_at, active_seconds, running_since, eta = locked
            progress = None
            if publish_progress:
                progress = _progress_refresh(
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
                until=_lease_until(now),
                worker=worker_id,
                max_attempts=config.max_day_attempts,
            )
            cursor.execute(_CLAIM_DAY_SQL, params)
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


# The fence, checked inside the day's transaction: the day row is locked only if this worker
# still holds it (same fence, lease not run out) and the job is still working on the same run.
# OF day: locking the joined job row too would serialize every parallel worker's day on it.
# FOR KEY SHARE: enough to keep claims and releases (FOR UPDATE SKIP LOCKED) off the day until
# it commits, while the worker's heartbeat, from its own connection, can still renew the
# day's lease (an update of a non-key column does not wait for KEY SHARE).
_DAY_FENCE_SQL = """
SELECT day.id
FROM batchsync_syncday day JOIN batchsync_syncjob job ON job.id = day.job_id
WHERE day.id = %(day)s AND day.status = %(running)s AND day.fence = %(fence)s
  AND day.worker_id = %(worker)s AND day.lease_expires_at >= %(now)s
  AND job.fence = %(job_fence)s AND job.status = ANY(%(working)s)
FOR KEY SHARE OF day
"""


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
        cursor.execute(_DAY_FENCE_SQL, params)
        held = cursor.fetchone() is not None
    if not held:
        raise LeaseLost(f"day {claim.date} (job day {claim.id}) is no longer held by {worker_id}")


def sync_day_mark_succeeded(claim: ClaimedDay, rows: int, started: float) -> None:
    """Record a loaded day (in the day's own transaction, right after its COPY and fence)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE batchsync_syncday SET status = %s, rows = %s, duration_seconds = %s, "
            "finished_at = %s, last_error = '', lease_expires_at = NULL WHERE id = %s",
            [SyncDayStatus.SUCCEEDED, rows, round(time.monotonic() - started, 4), timezone.now(), claim.id],
        )


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


def sync_day_record_failure(claim: ClaimedDay, worker_id: str, job_fence: int, error: BaseException) -> bool:
    """Mark a claimed day failed with its error; False when the day is no longer ours."""
    message = str(getattr(error, "message", "") or error) or error.__class__.__name__
    tb = "".join(traceback_module.format_exception(error))
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
        traceback="".join(traceback_module.format_exception(error)),
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
    `_DAY_FENCE_SQL`), which an update of the lease does not wait for. A day longer than the
    lease is kept by its live worker; only a worker that stopped heartbeating loses it. A row
    locked harder (a claim, or the day's final update) is skipped, not waited for.
    """
    until = _lease_until(timezone.now())
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
    _sessions_end(worker_ids)
    return SyncDay.objects.filter(
        job_id=job_id, worker_id__in=worker_ids, status=SyncDayStatus.RUNNING
    ).update(status=SyncDayStatus.PENDING, lease_expires_at=None)


def _sessions_end(worker_ids: list[str]) -> int:
    """Terminate the other database sessions named after these workers; return how many ended.

    Waits up to 2 s for each to be gone, so their transactions are rolled back on return.
    """
    names = sorted({worker[:63] for worker in worker_ids})
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 2000)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND application_name = ANY(%s)",
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
        ended = _sessions_end(workers)
    except DatabaseError:
        # Not allowed to signal those sessions (another role): the lease still fences them.
        logger.warning("event=fence_failed workers=%s", ",".join(workers), exc_info=True)
        return 0
    if ended:
        logger.warning("event=fenced sessions=%s workers=%s", ended, ",".join(workers))
    return int(ended)


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


def _days_release_expired(job_id: int, now: dt.datetime) -> int:
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


# Counts, rows and ETA recomputed from the days and written in one statement (it runs after
# every day). The ETA rule is `_progress_refresh`'s docstring; `eta` is the caller's value,
# kept when there is nothing to estimate from yet.
_PROGRESS_REFRESH_SQL = """
UPDATE batchsync_syncjob job SET
    success_days = stats.success,
    failed_days = stats.failed,
    skipped_days = stats.skipped,
    processed_days = stats.success + stats.failed + stats.skipped,
    rows_loaded = stats.rows,
    estimated_completion = CASE
        WHEN %(working)s AND stats.success + stats.failed > 0
             AND %(elapsed)s::float8 IS NOT NULL AND stats.remaining > 0
        THEN %(now)s::timestamptz + make_interval(
            secs => stats.remaining * (%(elapsed)s::float8 / (stats.success + stats.failed))
        )
        WHEN NOT %(working)s OR stats.remaining = 0 THEN NULL
        ELSE %(eta)s::timestamptz
    END
FROM (
    SELECT
        count(*) FILTER (WHERE status = %(succeeded)s) AS success,
        count(*) FILTER (WHERE status = %(failed)s) AS failed,
        count(*) FILTER (WHERE status = %(skipped)s) AS skipped,
        coalesce(sum(rows) FILTER (WHERE status = %(succeeded)s), 0) AS rows,
        count(*) FILTER (WHERE status IN (%(pending)s, %(running)s)) AS remaining
    FROM batchsync_syncday WHERE job_id = %(job)s
) stats
WHERE job.id = %(job)s
RETURNING job.success_days, job.failed_days, job.skipped_days, job.rows_loaded, job.estimated_completion
"""


def _progress_refresh(job: SyncJob) -> JobProgress:
    """Recompute the job's counts, rows and ETA from its days (idempotent, so crash-safe).

    ETA: remaining days x seconds per attempted day while the job works; none once it stops
    or nothing remains; unchanged while no day was attempted yet. The caller holds the job row
    (locked, or just created), so the statement always finds it.
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
        cursor.execute(_PROGRESS_REFRESH_SQL, params)
        row = cursor.fetchone()
    if row is None:
        raise SyncJob.DoesNotExist(f"job {job.pk} is gone")
    progress = JobProgress(*row)
    progress.apply_to(job)
    return progress


def _commit_without_flush() -> None:
    """Let this transaction commit without waiting for its WAL flush (a per-day saving).

    Only for what is redone after a server crash anyway: a lost claim leaves the day pending
    (its worker's session died with the server), lost progress is recounted from the days.
    The worker that thought it held the day finds that out at its fence (`LeaseLost`) and
    simply claims again (`runner.sync_job_run`). The day's own load commits synchronously,
    which flushes these earlier commits too.
    """
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit TO OFF")


def sync_job_progress_commit(job_id: int) -> SyncJob:
    """Commit the job's progress after a day, outside the day's COPY transaction.

    The job row is locked (briefly) so the ETA is decided on its committed status: read
    unlocked, another worker could finish the job (paused, ETA cleared) in between, and this
    update would then put a stale ETA back on the finished job.
    """
    with transaction.atomic():
        _commit_without_flush()
        job = _locked(job_id)
        _progress_refresh(job)
    return job


def sync_job_finish_if_done(job_id: int, *, enqueue: Enqueue | None = sync_job_enqueue_on_commit) -> SyncJob:
    """End the job's run when no live worker holds a day: finished, paused or cancelled.

    Runs under the slot lock because finishing frees the slot for the next queued job.
    """
    with transaction.atomic():
        _slot_lock()
        job = _locked(job_id)
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
        _days_release_expired(job.pk, now)
        _bank_active_time(job, now)
        if job.status in FINISHED_STATUSES:
            job.finished_at = now
        job.lease_expires_at = None
        job.save()
        _progress_refresh(job)
        _queue_advance(enqueue)
    logger.info("job=%s event=finished status=%s %s", job.task_id, job.status, job.message)
    logger.info("job=%s event=released_slot", job.task_id)
    return job


def sync_jobs_recover_stalled(*, enqueue: Enqueue | None = sync_job_enqueue_on_commit) -> list[SyncJob]:
    """Reaper: give stalled jobs (no live worker) back to workers, or finish them.

    A job is stalled when its lease ran out: its workers were killed, their machine is gone
    or they are frozen. Frozen workers' sessions are ended first (`sync_days_fence_expired`),
    the expired days go back to pending with their attempts counted (a day that keeps killing
    its worker is failed at the next claim once it has used `MAX_DAY_ATTEMPTS`), and new
    workers are enqueued; a pausing or cancelling job is finished instead. Pending jobs no
    worker picked up in time (the task was lost with a Redis worker, or the process died
    between commit and enqueue) are enqueued again. Runs as a django-q2 schedule, at every job
    start and from `batch_sync recover`; running it twice at once is harmless (SKIP LOCKED).

    With `enqueue` None (a foreground start, which runs its own job and has no cluster to hand
    work to) a stalled running job is left as it is, lease expired, for the rerun of its
    command or `resume` to take over; nothing is queued for a cluster that may not exist.
    """
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
            released = _days_release_expired(job.pk, now)
            if job.status == S.RUNNING and enqueue is None:
                # Nobody to hand it to: renewing its lease would only make a dead job look
                # alive, and refuse the rerun that would take it over (`sync_job_take_over`).
                logger.warning(
                    "job=%s event=stalled status=running days_released=%s worker=%s",
                    job.task_id,
                    released,
                    job.worker_id or "-",
                )
                continue
            job.recoveries += 1
            job.lease_expires_at = _lease_until(now)
            job.save(update_fields=["recoveries", "lease_expires_at"])
            if job.status == S.RUNNING and enqueue is not None:
                enqueue(job, job.parallelism)
            logger.warning(
                "job=%s event=recovered status=%s days_released=%s recoveries=%s",
                job.task_id,
                job.status,
                released,
                job.recoveries,
            )
        if job.status != S.RUNNING:
            job = sync_job_finish_if_done(job.pk, enqueue=enqueue)
        recovered.append(job)
    if enqueue is None:
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
            job.lease_expires_at = _lease_until(now)
            job.recoveries += 1
            job.save(update_fields=["lease_expires_at", "recoveries"])
            enqueue(job, job.parallelism)
            logger.warning("job=%s event=requeued status=pending recoveries=%s", job.task_id, job.recoveries)
        recovered.append(job)
    return recovered
