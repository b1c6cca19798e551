"""Run a job day by day. The same function serves the django-q2 task and the foreground command.

Each day is ONE transaction: prove this worker still owns the day (fence), delete the day's
bars, COPY the new ones, run the data checks (`checks`), record their provenance
(`LoadedDay`), mark the day done. A crash
anywhere leaves the day fully loaded or untouched. Progress is committed after the day, in its
own short transaction: the one that claims the next day (or finishes the job).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import socket
import threading
import time
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import (
    DatabaseError,
    close_old_connections,
    connection,
    transaction,
)

from batchsync import loader, services, sessions, sources, sql
from batchsync.backoff import doubling, retrying
from batchsync.conf import get_settings
from batchsync.exceptions import DatabaseUnavailable, InvalidTransition, LeaseLost, SourceError, SourceJobStop
from batchsync.logs import Shown, log_event, seconds
from batchsync.models import SyncJob, SyncJobKind
from batchsync.reconnect import CONNECTION_ERRORS, await_database, first_line, reconnect, with_reconnect
from batchsync.services import ClaimedDay
from batchsync.services.source_stop import sync_job_stop_for_source
from batchsync.sources.base import Source

logger = logging.getLogger("batchsync.runner")

ProgressCallback = Callable[[SyncJob], None]


@dataclass(frozen=True)
class RunOutcome:
    """What one worker's run of a job ended with."""

    job: SyncJob
    days_loaded: int
    more_work: bool  # stopped at its deadline with days still to do


def new_worker_id() -> str:
    """host:pid:random, unique per run, so leases and fences can tell workers apart.

    At most 63 characters: it is also the `application_name` of the worker's sessions.
    """
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


# The sessions already named, and for which worker: a session keeps its name, so the query
# runs once per session, not twice per day. Weak keys: a closed connection drops out.
_tagged_sessions: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def _tag_connection(worker_id: str) -> None:
    """Name this thread's database session after the worker, so a fencer can find and end it."""
    connection.ensure_connection()
    session = connection.connection
    if session is not None and _tagged_sessions.get(session) == worker_id:
        return
    with connection.cursor() as cursor:
        cursor.execute(sql.SESSION_NAME_SET, [worker_id[:63]])
    if session is not None and not connection.in_atomic_block:  # a rollback would undo it
        _tagged_sessions[session] = worker_id


class _Heartbeat(threading.Thread):
    """Extends this worker's leases every third of the lease, in its own DB connection."""

    def __init__(self, job_id: int, worker_id: str, job_fence: int) -> None:
        super().__init__(name=f"batchsync-heartbeat-{worker_id}", daemon=True)
        self.job_id = job_id
        self.worker_id = worker_id
        self.job_fence = job_fence
        self.claim: ClaimedDay | None = None
        self.stopped = threading.Event()

    def run(self) -> None:
        interval = max(get_settings().lease_seconds / 3.0, 0.05)
        try:
            while not self.stopped.wait(interval):
                try:
                    _tag_connection(self.worker_id)
                    services.sync_worker_heartbeat(
                        self.job_id, self.worker_id, self.claim, job_fence=self.job_fence
                    )
                except DatabaseError as error:
                    # A lost connection is the outage the workers ride out: one line, no traceback.
                    lost = isinstance(error, CONNECTION_ERRORS)
                    log_event(
                        logger,
                        "heartbeat_failed",
                        level=logging.WARNING,
                        exc_info=not lost,
                        worker=self.worker_id,
                        error=first_line(error),
                    )
                    close_old_connections()
                    reconnect()
        finally:
            connection.close()


RETRYABLE_ERRORS: tuple[type[BaseException], ...] = (SourceError, *CONNECTION_ERRORS)


def _is_connection_error(error: BaseException) -> bool:
    raw = connection.connection
    return isinstance(error, CONNECTION_ERRORS) or raw is None or bool(raw.closed)


def _neighbours_check(day: dt.date, worker_id: str) -> None:
    """Compare the day, now committed, with the days next to it that its checks could not see.

    After the commit, so a failure here never retries nor fails the day: the pair is then left
    for `batch_sync verify --checks`, and the failure is logged.
    """
    try:
        services.loaded_day_neighbours_check(day)
    except DatabaseError as error:
        log_event(
            logger,
            "neighbours_check_failed",
            level=logging.WARNING,
            worker=worker_id,
            date=day,
            error=first_line(error),
        )
        reconnect()


def _load_claimed_day(
    source: Source,
    origin: services.DayOrigin,
    claim: ClaimedDay,
    worker_id: str,
    job_fence: int,
    abort: threading.Event | None,
) -> int:
    """Fetch the day (retrying transient source errors) and commit it in one fenced transaction.

    After an abort (`abort` set, this worker's session ended under it) the day is not retried
    or noted: it was rolled back and given back to pending by whoever aborted it.
    """
    config = get_settings()
    outage_started: float | None = None

    def load(attempt: int) -> int:
        started = time.monotonic()
        payload = source.fetch_day(claim.date)
        _tag_connection(worker_id)  # again: the connection may be new after a loss
        with transaction.atomic():
            services.sync_day_lock_for_commit(claim, worker_id, job_fence)
            with connection.cursor() as cursor:
                rows = loader.replace_day(cursor, claim.date, payload)
            # The data checks: an error fails the day (rolled back); warnings commit with it.
            checked = services.day_checks_enforce(
                claim.date,
                origin=payload.origin,
                job_id=origin.job_id,
                sync_day_id=claim.id,
                line_of=lambda code: loader.csv_line_of(payload, code),
            )
            # Its provenance commits with its rows.
            services.loaded_day_record(claim.date, origin, previous_checksum=checked.previous_checksum)
            services.sync_day_mark_succeeded(claim, rows, started)
        return rows

    def wait(error: BaseException, attempt: int) -> float:
        nonlocal outage_started
        if abort is not None and abort.is_set():
            raise LeaseLost(f"day {claim.date}: aborted, rolled back") from error
        if isinstance(error, CONNECTION_ERRORS):
            # Connection lost mid-day (server restart, backend terminated): the day's
            # transaction rolled back with it. Wait for the database (up to the outage
            # window, counted from the first loss of this day), then load the day again;
            # its fence tells whether this worker still holds it. Only an error that
            # recurs while the database answers at once counts against the retries.
            outage_started = outage_started or time.monotonic()
            if await_database(worker_id, outage_started, error) == 0 and attempt > config.source_retries:
                raise error
            _retry_note(claim, error, attempt)
            return 0.0
        if not getattr(error, "transient", True) or attempt > config.source_retries:
            raise error
        delay = doubling(config.source_retry_backoff_seconds, attempt)
        log_event(
            logger,
            "day_retry",
            level=logging.WARNING,
            worker=worker_id,
            date=claim.date,
            attempt=attempt,
            delay=seconds(delay),
            error=error,
        )
        _retry_note(claim, error, attempt)
        return delay

    rows = retrying(load, retry_on=RETRYABLE_ERRORS, wait=wait)
    _neighbours_check(claim.date, worker_id)
    return rows


def _retry_note(claim: ClaimedDay, error: BaseException, attempt: int) -> None:
    try:
        services.sync_day_record_retry(claim, error, attempt)
    except DatabaseError:
        reconnect()


def sync_job_run(
    job_id: int,
    *,
    worker_id: str | None = None,
    deadline: float | None = None,
    stop: threading.Event | None = None,
    abort: threading.Event | None = None,
    on_progress: ProgressCallback | None = None,
) -> RunOutcome:
    """Work on a job until no day is left for this worker (or `deadline`, a monotonic time).

    `stop` is the foreground command's Ctrl-C: the job is cancelled cooperatively, after the
    day in flight; `abort` is its second Ctrl-C (see `_load_claimed_day`). Safe to call from
    many workers at once; each day is claimed by one.
    """
    worker_id = worker_id or new_worker_id()
    with_reconnect(_tag_connection, worker_id, log_as=worker_id)
    fence = with_reconnect(services.sync_job_join, job_id, worker_id, log_as=worker_id)
    job = with_reconnect(SyncJob.objects.get, pk=job_id, log_as=worker_id)
    if fence is None:
        return RunOutcome(job=job, days_loaded=0, more_work=False)
    day_step, step_close = _day_step(job, worker_id, fence, abort)
    heartbeat = _Heartbeat(job_id, worker_id, fence)
    heartbeat.start()
    sessions.LockWaitWatch.watch(worker_id)  # logs it when a day waits on another session's lock
    loaded = 0
    idle_since: float | None = None
    claimed_any = False
    more_work = False
    cancel_requested = False
    day_done = True  # a day of this worker's ended and its progress is not yet published
    try:
        while True:
            if stop is not None and stop.is_set() and not cancel_requested:
                cancel_requested = True
                with contextlib.suppress(InvalidTransition):  # another worker finished it already
                    services.sync_job_cancel(job, requested_by="cli")  # the command's Ctrl-C
            # At least one day per run, even past the deadline: a slice shorter than the time
            # to join would otherwise hand the job on forever without loading anything.
            if deadline is not None and claimed_any and time.monotonic() >= deadline:
                more_work = True
                # No next claim publishes the last day's progress: do it here.
                job = with_reconnect(services.sync_job_progress_commit, job_id, log_as=worker_id)
                break
            claim = _claim_with_reconnect(job_id, worker_id, fence, publish_progress=day_done)
            day_done = False
            if claim is None:
                idle_since = idle_since or time.monotonic()
                if _should_wait(job_id, fence, idle_since):
                    continue
                break
            idle_since = None
            heartbeat.claim = claim
            claimed_any = True
            # The claim published the progress of the days before it, and wrote `current_date`.
            if claim.progress is not None:
                claim.progress.apply_to(job)
            job.current_date = claim.date
            if on_progress is not None:
                on_progress(job)  # the day now being loaded is `current_date`
            log_event(
                logger,
                "day_start",
                job=job.task_id,
                worker=worker_id,
                position=Shown(
                    (job.processed_days + 1, job.total_days),
                    f"[{job.processed_days + 1}/{job.total_days}]",
                    bare=True,
                ),
                date=claim.date,
                attempt=claim.attempt,
                percent=Shown(job.progress_percent, f"({job.progress_percent:.1f}%)", bare=True),
            )
            try:
                rows = day_step(claim)
                loaded += 1
                log_event(logger, "day_done", job=job.task_id, worker=worker_id, date=claim.date, rows=rows)
            except LeaseLost:
                # The day is someone else's now, or back to pending: its lease ran out while
                # this worker was frozen or cut off, or a server crash lost the claim itself
                # (claims commit without a WAL flush). The worker is alive, so it goes back
                # to claiming; the claim ends it if the job stopped or moved on to a new run.
                log_event(
                    logger,
                    "lease_lost",
                    level=logging.WARNING,
                    job=job.task_id,
                    worker=worker_id,
                    date=claim.date,
                )
                if abort is not None and abort.is_set():
                    break
            except DatabaseUnavailable:
                raise  # not the day's fault: the job stays resumable (see `await_database`)
            except Exception as error:  # any failure of a day is recorded, and the job goes on
                _reconnect_if_broken(error)
                # A source that can serve no day (refused token) fails the rest of the job at once.
                record = sync_job_stop_for_source if isinstance(error, SourceJobStop) else None
                recorded = with_reconnect(
                    record or services.sync_day_record_failure,
                    claim,
                    worker_id,
                    fence,
                    error,
                    log_as=worker_id,
                )
                log_event(
                    logger,
                    "day_failed",
                    level=logging.ERROR,
                    job=job.task_id,
                    worker=worker_id,
                    date=claim.date,
                    recorded=recorded,
                    error=error,
                )
                if not recorded:
                    break
            finally:
                heartbeat.claim = None
                day_done = True  # published by the next claim, or by the finish below
    finally:
        sessions.LockWaitWatch.unwatch(worker_id)
        heartbeat.stopped.set()
        heartbeat.join()
        step_close()
    if not more_work:
        job = with_reconnect(services.sync_job_finish_if_done, job_id, log_as=worker_id)
    else:
        job = SyncJob.objects.get(pk=job_id)
    if on_progress is not None:
        on_progress(job)
    return RunOutcome(job=job, days_loaded=loaded, more_work=more_work)


def _day_step(
    job: SyncJob, worker_id: str, fence: int, abort: threading.Event | None
) -> tuple[Callable[[ClaimedDay], int], Callable[[], None]]:
    """What this worker does with a claimed day, and what it releases at the end of its run.

    A sync job loads the day from its source; a verify job compares it (services.verify).
    """
    if job.kind == SyncJobKind.VERIFY:
        return (lambda claim: services.verify_claimed_day(job, claim, worker_id, fence)), lambda: None
    source = sources.source_get(job.source, job.source_options)
    origin = services.DayOrigin(
        source=job.source,
        fingerprint=services.source_options_fingerprint(job.source_options, source.options_unfingerprinted),
        job_id=job.pk,
    )
    return (lambda claim: _load_claimed_day(source, origin, claim, worker_id, fence, abort)), source.close


def _reconnect_if_broken(error: BaseException) -> None:
    if _is_connection_error(error):
        reconnect()


def _claim_with_reconnect(
    job_id: int, worker_id: str, fence: int, *, publish_progress: bool
) -> ClaimedDay | None:
    """Claim the next day, riding out a database outage (see `reconnect.await_database`)."""
    with_reconnect(_tag_connection, worker_id, log_as=worker_id)
    return with_reconnect(
        services.sync_day_claim, job_id, worker_id, fence, publish_progress=publish_progress, log_as=worker_id
    )


def _should_wait(job_id: int, fence: int, idle_since: float) -> bool:
    """With nothing to claim, stay a while if the job may yet need this worker.

    Days held by other workers come back if those workers die (their lease runs out), and a
    day locked by a frozen worker is freed by ending its sessions; waiting here lets the job
    finish without the reaper. Gives up after two leases (the reaper covers the rest).

    The pause grows with the idle time (20 ms up to 1 s): usually the other workers are just
    finishing the job's last days, and a worker that slept a whole second after them would
    keep the job (and the foreground command) waiting for nothing.
    """
    lease = get_settings().lease_seconds
    idle = time.monotonic() - idle_since
    if idle > 2 * lease + 1:
        return False
    if not with_reconnect(services.sync_job_worth_waiting, job_id, fence):
        return False
    with_reconnect(services.sync_days_fence_expired, job_id)
    time.sleep(min(max(idle / 4.0, 0.02), lease / 8.0, 1.0))
    return True
