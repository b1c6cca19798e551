"""django-q2 entry points. They only call the runner and services; the job rows decide."""

from __future__ import annotations

import logging
import time

from django.db import transaction
from django.utils.translation import gettext as _
from django_q.tasks import async_task
from redis.exceptions import RedisError

from batchsync import runner, services
from batchsync.conf import get_settings
from batchsync.exceptions import BrokerUnavailable
from batchsync.models import SyncJob

WORK_TASK = "batchsync.tasks.sync_job_work"

logger = logging.getLogger("batchsync.jobs")


def sync_job_enqueue_workers(job_id: int, workers: int) -> list[str]:
    """Put `workers` runs of the job on the cluster; returns the django-q2 task ids.

    Raises `BrokerUnavailable` when the Redis broker cannot be reached (the ORM broker is the
    database itself: its errors are the database's).
    """
    task_id = SyncJob.objects.filter(pk=job_id).values_list("task_id", flat=True).first() or str(job_id)
    try:
        return [
            str(async_task(WORK_TASK, job_id, group=task_id, task_name=f"batchsync {task_id} #{n + 1}"))
            for n in range(workers)
        ]
    except RedisError as error:
        raise BrokerUnavailable(
            _(
                "Job %(id)s was created (pending) but not handed to the cluster: the broker cannot be "
                "reached (%(reason)s). It starts when the broker is back, or run it here: "
                "python manage.py batch_sync work %(id)s"
            )
            % {"id": task_id, "reason": str(error).rstrip(".")}
        ) from error


class ClusterHandoff:
    """An `Enqueue` that hands the job to the cluster on commit and keeps the outcome.

    The broker is called after the commit (a worker must find the job), so a broker that is
    down cannot roll the job back: the job stays pending, and the reaper enqueues it again
    once its pickup deadline passes. The caller reads `failure` to tell the user so.
    """

    def __init__(self) -> None:
        self.task_ids: list[str] = []
        self.failure: BrokerUnavailable | None = None

    def __call__(self, job: SyncJob, workers: int) -> None:
        job_id = job.pk
        transaction.on_commit(lambda: self._enqueue(job_id, workers))

    def _enqueue(self, job_id: int, workers: int) -> None:
        try:
            self.task_ids.extend(sync_job_enqueue_workers(job_id, workers))
        except BrokerUnavailable as error:
            self.failure = error
            logger.warning("job_id=%s event=enqueue_failed error=%s", job_id, error.__cause__)


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
