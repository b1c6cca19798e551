"""Reads: the shapes the command, the API and the pages show. Nothing here writes."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone

from batchsync.conf import get_settings
from batchsync.models import SyncError, SyncJob


def _iso(value: dt.datetime | None) -> str | None:
    return timezone.localtime(value).isoformat() if value else None


def sync_job_recent_errors(job: SyncJob, limit: int | None = None) -> list[SyncError]:
    """The job's most recent errors, newest first (the seed shows 10)."""
    return list(
        SyncError.objects.filter(job=job).order_by("-created_at", "-id")[
            : limit or get_settings().recent_errors
        ]
    )


def sync_job_progress(job: SyncJob, errors: list[SyncError] | None = None) -> dict[str, Any]:
    """The seed's progress object (every field of its example), plus batchsync's own fields."""
    if errors is None:
        errors = sync_job_recent_errors(job)
    return {
        "task_id": job.task_id,
        "status": job.status,
        "total": job.total_days,
        "current": job.processed_days,
        "success": job.success_days,
        "failed": job.failed_days,
        "skipped": job.skipped_days,
        "current_date": job.current_date.isoformat() if job.current_date else None,
        "message": job.message,
        "progress_percent": job.progress_percent,
        "start_time": _iso(job.started_at),
        "end_time": _iso(job.finished_at),
        "duration_seconds": job.duration_seconds,
        "estimated_completion": _iso(job.estimated_completion),
        "errors": [
            {"date": e.date.isoformat() if e.date else None, "error": e.error, "time": _iso(e.created_at)}
            for e in errors
        ],
        "start_date": job.start_date.isoformat(),
        "end_date": job.end_date.isoformat(),
        "source": job.source,
        "rows_loaded": job.rows_loaded,
        "parallelism": job.parallelism,
        "priority": job.priority,
        "reprocess": job.reprocess,
        "requested_by": job.requested_by,
        "created_time": _iso(job.created_at),
        "retry_of": job.retry_of.task_id if job.retry_of_id and job.retry_of else None,
    }
