"""How a service hands a job to workers: the `Enqueue` callable and its cluster default."""

from __future__ import annotations

from collections.abc import Callable

from batchsync.models import SyncJob

Enqueue = Callable[[SyncJob, int], None]


def sync_job_enqueue_on_commit(job: SyncJob, workers: int) -> None:
    """Hand `workers` runs of the job to the django-q2 cluster once the transaction commits.

    A broker that cannot be reached is logged, not raised: the job is committed by then, and
    the reaper enqueues it again (callers that must tell the user use `tasks.ClusterHandoff`).
    """
    from batchsync.tasks import ClusterHandoff

    ClusterHandoff()(job, workers)
