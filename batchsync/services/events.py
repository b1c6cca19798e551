"""A job's timeline: each service that makes a transition records it here, with who made it."""

from __future__ import annotations

from typing import Any

from batchsync.event_models import SyncJobEvent, SyncJobEventKind
from batchsync.models import SyncJob

# Actors that are not users: the reaper, and a worker (`worker_actor`); the command is "cli".
REAPER = "reaper"


def worker_actor(worker_id: str) -> str:
    return f"worker {worker_id}"


def job_event_record(job: SyncJob, kind: SyncJobEventKind, actor: str = "", **detail: Any) -> SyncJobEvent:
    """Add an event to the job's timeline (in the caller's transaction, so it commits with the change)."""
    return SyncJobEvent.objects.create(job=job, kind=kind, actor=actor[:150], detail=detail)
