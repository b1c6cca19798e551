"""Verify jobs: a `SyncJob` of kind verify, whose days are compared instead of loaded.

A verify job takes the one running slot like any job, so the queue, pause, resume, cancel,
retry, progress and ETA work unchanged. Each claimed day is compared (`batchsync.verify`) and
marked succeeded when it matches, or failed with a `SyncError` saying what differs and how to
repair it. It never writes `daily_bar` or `LoadedDay`; in `checks` mode a matching day's
findings are replaced by what today's checks find (docs/verify.md).
"""

from __future__ import annotations

import datetime as dt
import time

from django.db import transaction
from django.utils.translation import gettext as _

from batchsync.exceptions import InvalidJobRequest, VerifyMismatch
from batchsync.models import Reprocess, SyncJob, SyncJobKind, VerifyMode
from batchsync.services.findings import day_findings_replace
from batchsync.services.lifecycle import sync_job_create
from batchsync.services.planning import JobRequest, sync_request_validate
from batchsync.services.workers import ClaimedDay, sync_day_lock_for_commit, sync_day_mark_succeeded
from batchsync.verify import DayVerdict, day_against_source, day_verify, repair_hint, with_checks

VERIFY_MODES = (VerifyMode.CHECKSUM, VerifyMode.AGAINST_SOURCE, VerifyMode.CHECKS)


def verify_request_build(
    *,
    start_date: dt.date,
    end_date: dt.date,
    mode: str = VerifyMode.CHECKSUM,
    parallelism: int | None = None,
    priority: int = 0,
    queue: bool = False,
    requested_by: str = "",
) -> JobRequest:
    """A validated request for a verify job of the range; `InvalidJobRequest` names the field."""
    if mode not in VERIFY_MODES:
        raise InvalidJobRequest(
            "mode", _("mode must be one of: %(modes)s") % {"modes": ", ".join(VERIFY_MODES)}
        )
    request = JobRequest(
        start_date=start_date,
        end_date=end_date,
        source="",
        source_options={},
        reprocess=Reprocess.ALL,
        parallelism=parallelism,
        priority=priority,
        queue=queue,
        requested_by=requested_by,
        kind=SyncJobKind.VERIFY,
        verify_mode=mode,
    )
    sync_request_validate(request)
    return request


def verify_job_create(request: JobRequest) -> SyncJob:
    """Create the verify job (pending, or queued behind the running job), like any job."""
    return sync_job_create(request)


def verify_claimed_day(job: SyncJob, claim: ClaimedDay, worker_id: str, job_fence: int) -> int:
    """Compare a claimed day of a verify job; mark it succeeded, or raise `VerifyMismatch`.

    The comparison reads (the source's rows go to a rolled-back temporary table); only the
    day's status is written, under the fence, as a load's is.
    """
    started = time.monotonic()
    verdict = day_verify(claim.date)
    if verdict is None:
        raise VerifyMismatch(
            _("%(day)s: no rows and no load record any more") % {"day": claim.date.isoformat()}
        )
    if job.verify_mode == VerifyMode.AGAINST_SOURCE:
        verdict = day_against_source(verdict)
    elif job.verify_mode == VerifyMode.CHECKS:
        [verdict] = with_checks([verdict])
    with transaction.atomic():
        sync_day_lock_for_commit(claim, worker_id, job_fence)
        if not verdict.matches:
            raise VerifyMismatch(verify_failure_message(verdict))
        if job.verify_mode == VerifyMode.CHECKS:
            # Today's rules over the day's rows: its findings now say what they find (as a load's would).
            day_findings_replace(claim.date, verdict.check_warnings, job_id=job.pk, sync_day_id=claim.id)
        sync_day_mark_succeeded(claim, verdict.rows_now, started)
    return verdict.rows_now


def verify_failure_message(verdict: DayVerdict) -> str:
    """What differs on the day, and the command that repairs it."""
    return f"{verdict.describe()}. {repair_hint([verdict])}"
