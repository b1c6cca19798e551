"""django-q2 entry points. They only call the runner and services; the job rows decide."""

from __future__ import annotations

import time

from django_q.tasks import async_task

from batchsync import runner, services
from batchsync.conf import get_settings
from batchsync.models import SyncJob

WORK_TASK = "batchsync.tasks.sync_job_work"


def sync_job_enqueue_workers(job_id: int, workers: int) -> list[str]:
    """Put `workers` runs of the job on the cluster; returns the django-q2 task ids."""
    task_id = SyncJob.objects.filter(pk=job_id).values_list("task_id", flat=True).first() or str(job_id)
    return [
        str(async_task(WORK_TASK, job_id, group=task_id, task_name=f"batchsync {task_id} #{n + 1}"))
        for n in range(workers)
    ]


def sync_job_work(job_id: int) -> str:
    """One worker's slice of a job; re-enqueues itself when the slice ends with work left."""
    deadline = time.monotonic() + get_settings().task_slice_seconds
    outcome = runner.sync_job_run(job_id, deadline=deadline)
    if outcome.more_work:
        sync_job_enqueue_workers(job_id, 1)
    days = f"{outcome.days_loaded} day" + ("" if outcome.days_loaded == 1 else "s")
    return f"{outcome.job.task_id}: {outcome.job.status}, {days} loaded by this worker"


def sync_jobs_recover_stalled() -> int:
    """Scheduled reaper (every minute, see migration 0003)."""
    return len(services.sync_jobs_recover_stalled())
