"""Reads about the queue: where a queued job stands and which job it waits behind."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from batchsync.models import SyncJob, SyncJobStatus


@dataclass(frozen=True)
class QueuePlace:
    """A queued job's place: 1 runs next; `holder` is the job in the slot it waits for."""

    position: int
    length: int
    holder: SyncJob | None

    def as_fields(self) -> dict[str, Any]:
        """The API's and the command's fields (see `queue_fields`)."""
        return {
            "queue_position": self.position,
            "queue_length": self.length,
            "queued_behind": self.holder.task_id if self.holder else None,
        }


def sync_job_queue_place(job: SyncJob) -> QueuePlace | None:
    """Where a queued job stands (the order `queue_advance` follows); None when it is not queued."""
    if job.status != SyncJobStatus.QUEUED:
        return None
    order = list(SyncJob.objects.queued_in_order().values_list("pk", flat=True))
    position = order.index(job.pk) + 1 if job.pk in order else len(order) + 1
    return QueuePlace(
        position=position, length=max(len(order), position), holder=SyncJob.objects.active().first()
    )


def queue_fields(place: QueuePlace | None) -> dict[str, Any]:
    """`queue_position`, `queue_length` and `queued_behind` (all None for a job not queued)."""
    if place is None:
        return {"queue_position": None, "queue_length": None, "queued_behind": None}
    return place.as_fields()
