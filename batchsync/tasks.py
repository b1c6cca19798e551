"""django-q2 entry points. They only call the runner and services; the job rows decide."""

from __future__ import annotations

import time

from batchsync import runner, services
from batchsync.conf import get_settings
from batchsync.dispatch import sync_job_enqueue_workers


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


def sync_schedules_tick() -> str:
    """Scheduled every minute (see migration 0012): start the sync schedules that are due."""
    runs = services.sync_schedules_tick()
    return ", ".join(f"{run.schedule.name}: {run.outcome}" for run in runs) or "no schedule due"


def alert_deliver(alert_id: int) -> str:
    """Send an alert's deliveries (queued on commit by `dispatch.alert_dispatch`)."""
    deliveries = services.alert_deliver(alert_id)
    return ", ".join(f"{d.channel} {d.status}" for d in deliveries) or "nothing left to send"


def alerts_check() -> str:
    """Scheduled every minute (migration 0013): missed freshness deadlines, then due deliveries."""
    checked = services.alerts_check()
    missed = sum(1 for check in checked.deadlines if check.state == "missed")
    return f"{len(checked.deadlines)} deadline(s) checked, {missed} missed, {len(checked.deliveries)} sent"
