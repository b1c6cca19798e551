"""Handing jobs to workers: to the django-q2 cluster once the transaction commits, or not at all.

Services call `job_dispatch` whenever a job needs workers (it became pending, was resumed or
recovered); where the job goes is the caller's choice, made around the service call, so no
service takes an `enqueue` argument and services never import the task module (which imports
the runner, which imports services):

- by default the job goes to the cluster on commit; a broker that cannot be reached is logged
  and the reaper enqueues the job again once its pickup deadline passes;
- inside `handoff()` the same, and the caller reads the task ids and the broker failure to
  tell the user (the command, the API and the admin start form do);
- inside `handoff(foreground=True)` nothing is handed: this process runs the job itself (the
  command's foreground run). The reaper leaves stalled running jobs alone then (see
  `services.sync_jobs_recover_stalled`).

The choice is a context variable: it holds for the calling thread only, so the command's
worker threads (which start with the default) hand on what they finish, as before.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from django.db import transaction
from django.utils.translation import gettext as _
from django_q.tasks import async_task
from redis.exceptions import RedisError

from batchsync.exceptions import BrokerUnavailable
from batchsync.logs import log_event
from batchsync.models import SyncJob

# The task a worker runs, by dotted path: importing it here would bring back the import cycle.
WORK_TASK = "batchsync.tasks.sync_job_work"

logger = logging.getLogger("batchsync.jobs")


@dataclass
class Handoff:
    """Where this context's jobs go (`foreground`: nowhere), and what came of handing them on."""

    foreground: bool = False
    task_ids: list[str] = field(default_factory=list)
    failure: BrokerUnavailable | None = None


_current: ContextVar[Handoff | None] = ContextVar("batchsync_handoff", default=None)


@contextmanager
def handoff(*, foreground: bool = False) -> Iterator[Handoff]:
    """Hand the jobs the services start inside this block to the cluster, or (foreground) not."""
    current = Handoff(foreground=foreground)
    token = _current.set(current)
    try:
        yield current
    finally:
        _current.reset(token)


def in_foreground() -> bool:
    """Does this process run the jobs it starts itself (no cluster to hand work to)?"""
    current = _current.get()
    return current is not None and current.foreground


def job_dispatch(job: SyncJob, workers: int) -> None:
    """Put `workers` runs of the job on the cluster once the transaction commits (not in the foreground).

    The broker is called after the commit (a worker must find the job), so a broker that is
    down cannot roll the job back: the job stays pending, and the reaper enqueues it again.
    """
    current = _current.get() or Handoff()
    if current.foreground:
        return
    job_id = job.pk
    transaction.on_commit(lambda: _enqueue(current, job_id, workers))


def _enqueue(current: Handoff, job_id: int, workers: int) -> None:
    try:
        current.task_ids.extend(sync_job_enqueue_workers(job_id, workers))
    except BrokerUnavailable as error:
        current.failure = error
        log_event(logger, "enqueue_failed", level=logging.WARNING, job_id=job_id, error=error.__cause__)


def sync_job_enqueue_workers(job_id: int, workers: int) -> list[str]:
    """Put `workers` runs of the job on the cluster now; returns the django-q2 task ids.

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


# Alert deliveries (docs/alerts.md): sent by this task, off the request and day-commit paths.
ALERT_TASK = "batchsync.tasks.alert_deliver"


def alert_dispatch(alert_id: int) -> None:
    """Hand the alert's deliveries to the cluster once the transaction commits.

    A broker that cannot be reached (or no cluster running) loses nothing: the deliveries stay
    pending in the database and `batch_sync alerts check` (every minute on the cluster, or from
    a systemd timer) sends them.
    """
    transaction.on_commit(lambda: _alert_enqueue(alert_id))


def _alert_enqueue(alert_id: int) -> None:
    try:
        async_task(ALERT_TASK, alert_id, task_name=f"batchsync alert #{alert_id}")
    except RedisError as error:
        log_event(logger, "alert_enqueue_failed", level=logging.WARNING, alert_id=alert_id, error=error)
