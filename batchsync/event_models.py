"""A job's timeline: who did what to it, and what happened to it, when."""

from __future__ import annotations

from typing import ClassVar

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class SyncJobEventKind(models.TextChoices):
    CREATED = "created", _("created")
    QUEUED = "queued", _("queued")
    DEQUEUED = "dequeued", _("moved from the queue to the slot")
    STARTED = "started", _("started")
    PAUSED = "paused", _("paused")
    RESUMED = "resumed", _("resumed")
    CANCELLED = "cancelled", _("cancelled")
    RETRIED = "retried", _("retried as a new job")
    TAKEN_OVER = "taken_over", _("taken over by a new worker")
    RECOVERED = "recovered", _("recovered after a dead worker")
    STOPPED = "stopped", _("workers stopped")
    FINISHED = "finished", _("finished")


class SyncJobEventQuerySet(models.QuerySet["SyncJobEvent"]):
    def timeline(self, job_id: int) -> SyncJobEventQuerySet:
        """The job's events, oldest first (the order they happened in)."""
        return self.filter(job_id=job_id).order_by("created_at", "id")


class SyncJobEvent(models.Model):
    """One entry of a job's timeline: a transition, who made it, and its facts (`detail`)."""

    job = models.ForeignKey("batchsync.SyncJob", on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(_("event"), max_length=12, choices=SyncJobEventKind.choices)
    # A user name, "cli" (the command), "worker <id>" or "reaper".
    actor = models.CharField(_("by"), max_length=150, blank=True)
    created_at = models.DateTimeField(_("time"), default=timezone.now)
    # The facts of the event: the status it led to, days, the new job of a retry, ...
    detail = models.JSONField(_("detail"), default=dict, blank=True)

    objects: ClassVar[SyncJobEventQuerySet] = SyncJobEventQuerySet.as_manager()  # type: ignore[assignment]

    class Meta:
        db_table = "batchsync_job_event"
        ordering = ["created_at", "id"]
        verbose_name = _("job event")
        verbose_name_plural = _("job events")
        indexes = [models.Index(fields=["job", "created_at"], name="syncjobevent_timeline_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=SyncJobEventKind.values), name="syncjobevent_kind_valid"
            )
        ]

    def __str__(self) -> str:
        return f"{self.job_id} {self.kind} {self.actor}"
