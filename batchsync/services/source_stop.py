"""A source that can serve no day (refused token, no permission) ends the job's remaining days at once."""

from __future__ import annotations

from django.db import connection, transaction
from django.utils import timezone

from batchsync import sql
from batchsync.exceptions import LeaseLost, SourceJobStop
from batchsync.models import SyncDay, SyncDayQuerySet, SyncDayStatus, SyncError
from batchsync.services.workers import ClaimedDay, sync_day_lock_for_commit, sync_day_record_failure


def sync_job_stop_for_source(claim: ClaimedDay, worker_id: str, job_fence: int, error: SourceJobStop) -> bool:
    """Fail the claimed day and every pending day of its job with the source's one message.

    The error is recorded once per job: a worker whose day met the same refusal while another
    worker recorded it (they serialize on a lock of the job) fails its day without a second,
    identical SyncError. False when the claimed day is no longer this worker's.
    """
    job_id = SyncDay.objects.filter(pk=claim.id).values_list("job_id", flat=True).get()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(sql.SOURCE_STOP_LOCK, [job_id])
        if not SyncError.objects.filter(job_id=job_id, error=error.message).exists():
            if not sync_day_record_failure(claim, worker_id, job_fence, error):
                return False
        else:
            try:
                sync_day_lock_for_commit(claim, worker_id, job_fence)
            except LeaseLost:
                return False
            _days_fail(SyncDay.objects.filter(pk=claim.id), error.message)
        _days_fail(SyncDay.objects.filter(job_id=job_id, status=SyncDayStatus.PENDING), error.message)
    return True


def _days_fail(days: SyncDayQuerySet, message: str) -> int:
    """Mark the days failed with `message` (no SyncError each: the job's one error says why)."""
    return days.update(
        status=SyncDayStatus.FAILED, last_error=message, finished_at=timezone.now(), lease_expires_at=None
    )
