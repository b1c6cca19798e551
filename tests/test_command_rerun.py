"""`batch_sync rerun <job> --days ...` (batchsync/management/runs.py), in-process."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import CommandError, call_command

from batchsync import dispatch, services
from batchsync.models import SyncJob, SyncJobStatus

pytestmark = pytest.mark.django_db(transaction=True)


def finished_job() -> SyncJob:
    with dispatch.handoff(foreground=True):
        job = services.sync_job_create(
            services.JobRequest(dt.date(2025, 9, 22), dt.date(2025, 9, 30), "demo", {})
        )
    return services.sync_job_cancel(job)


def test_rerun_loads_exactly_the_chosen_days_here() -> None:
    job = finished_job()
    out = io.StringIO()
    call_command(
        "batch_sync", "rerun", job.task_id, "--days", "2025-09-23,2025-09-25..2025-09-26", stdout=out
    )
    new = SyncJob.objects.get(retry_of=job)
    assert new.status == SyncJobStatus.SUCCEEDED and new.success_days == 3 and new.requested_by == "cli"
    assert sorted(new.days.values_list("date", flat=True)) == [
        dt.date(2025, 9, 23),
        dt.date(2025, 9, 25),
        dt.date(2025, 9, 26),
    ]


def test_rerun_detached_is_left_to_the_cluster_and_bad_days_are_one_line() -> None:
    job = finished_job()
    out = io.StringIO()
    call_command("batch_sync", "rerun", str(job.pk), "--days", "2025-09-23", "--detach", stdout=out)
    new = SyncJob.objects.get(retry_of=job)
    assert new.status == SyncJobStatus.PENDING and new.total_days == 1
    assert new.task_id in out.getvalue()
    with pytest.raises(
        CommandError, match=r"^--days: 2025-10-01 is outside the range 2025-09-22..2025-09-30"
    ):
        call_command("batch_sync", "rerun", job.task_id, "--days", "2025-10-01", stdout=io.StringIO())
    with pytest.raises(CommandError, match=r"^--days: 2025-09-31 is not a day"):
        call_command("batch_sync", "rerun", job.task_id, "--days", "2025-09-31", stdout=io.StringIO())
