"""Reads about the queue: where a queued job stands and which job it waits behind."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Case, Count, OuterRef, Q, QuerySet, Subquery, When
from django.db.models.functions import Coalesce

from batchsync.models import ACTIVE_STATUSES, SyncJob, SyncJobStatus

QUEUED = SyncJobStatus.QUEUED


@dataclass(frozen=True)
class QueuePlace:
    """A queued job's place: 1 runs next; the holder is the job in the slot it waits for."""

    position: int
    length: int
    holder_id: int | None
    holder_task_id: str | None

    def as_fields(self) -> dict[str, Any]:
        """The API's and the command's fields (see `queue_fields`)."""
        return {
            "queue_position": self.position,
            "queue_length": self.length,
            "queued_behind": self.holder_task_id,
        }


def with_queue_place(jobs: QuerySet[SyncJob]) -> QuerySet[SyncJob]:
    """`jobs`, each queued one with its place in the same query (the order `queue_advance` follows).

    `queue_ahead`: queued jobs that run before it (higher priority, or as high and older);
    `queue_total`: queued jobs; `queue_holder_id`/`queue_holder_task_id`: the job in the slot.
    """
    queued = SyncJob.objects.filter(status=QUEUED).order_by().values("status")
    same = Q(priority=OuterRef("priority"))
    ahead = queued.filter(
        Q(priority__gt=OuterRef("priority"))
        | (same & Q(created_at__lt=OuterRef("created_at")))
        | (same & Q(created_at=OuterRef("created_at"), id__lt=OuterRef("id")))
    )
    holder = SyncJob.objects.filter(status__in=ACTIVE_STATUSES).order_by()

    def when_queued(value: Any) -> Case:
        return Case(When(status=QUEUED, then=value))

    return jobs.annotate(
        queue_ahead=when_queued(Coalesce(Subquery(ahead.annotate(n=Count("id")).values("n")), 0)),
        queue_total=when_queued(Coalesce(Subquery(queued.annotate(n=Count("id")).values("n")), 0)),
        queue_holder_id=when_queued(Subquery(holder.values("id")[:1])),
        queue_holder_task_id=when_queued(Subquery(holder.values("task_id")[:1])),
    )


def sync_job_queue_place(job: SyncJob) -> QueuePlace | None:
    """Where a queued job stands; None when it is not queued (read with the job, or in one query)."""
    if job.status != QUEUED:
        return None
    if not hasattr(job, "queue_ahead"):
        annotated = with_queue_place(SyncJob.objects.filter(pk=job.pk)).first()
        if annotated is None or annotated.status != QUEUED:
            return None
        job = annotated
    ahead, total = getattr(job, "queue_ahead", 0) or 0, getattr(job, "queue_total", 0) or 0
    return QueuePlace(
        position=ahead + 1,
        length=max(total, ahead + 1),
        holder_id=getattr(job, "queue_holder_id", None),
        holder_task_id=getattr(job, "queue_holder_task_id", None),
    )


def queue_fields(place: QueuePlace | None) -> dict[str, Any]:
    """`queue_position`, `queue_length` and `queued_behind` (all None for a job not queued)."""
    if place is None:
        return {"queue_position": None, "queue_length": None, "queued_behind": None}
    return place.as_fields()
