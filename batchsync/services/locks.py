"""Locks and leases every service shares: the start slot, a job's row, a lease's deadline.

Lock order, everywhere: the singleton `SyncLock` row first, then the job row, then its days.
"""

from __future__ import annotations

import datetime as dt

from batchsync import selectors
from batchsync.conf import get_settings
from batchsync.exceptions import SyncAlreadyRunning
from batchsync.models import SyncJob, SyncLock


def slot_lock() -> None:
    """Lock the singleton `SyncLock` row FOR UPDATE, in the caller's transaction.

    A data migration creates the row, but `manage.py flush` (and a test database reset)
    deletes it; it is recreated here instead of every start failing until a re-migrate.
    """
    try:
        SyncLock.objects.select_for_update().get(pk=1)
    except SyncLock.DoesNotExist:
        SyncLock.objects.bulk_create([SyncLock(pk=1)], ignore_conflicts=True)
        SyncLock.objects.select_for_update().get(pk=1)


def job_lock(job: SyncJob | int) -> SyncJob:
    """The job's row, locked FOR NO KEY UPDATE in the caller's transaction."""
    # FOR NO KEY UPDATE: does not wait for rows that merely reference the job (SyncError inserts).
    return SyncJob.objects.select_for_update(no_key=True).get(pk=job if isinstance(job, int) else job.pk)


def lease_until(now: dt.datetime) -> dt.datetime:
    """The deadline of a lease taken now (BATCHSYNC LEASE_SECONDS)."""
    return now + dt.timedelta(seconds=get_settings().lease_seconds)


def already_running(holder: SyncJob) -> SyncAlreadyRunning:
    """The refusal of a start while `holder` has the slot, with the holder's facts."""
    return SyncAlreadyRunning(job_id=holder.pk, facts=selectors.sync_job_slot_holder(holder))
