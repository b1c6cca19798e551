"""The days of a job, their errors, and the lock that serializes job starts."""

from __future__ import annotations

import datetime as dt
from typing import ClassVar

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from batchsync.models.jobs import SyncJob


class SyncDayStatus(models.TextChoices):
    PENDING = "pending", _("pending")
    RUNNING = "running", _("running")
    SUCCEEDED = "succeeded", _("succeeded")
    FAILED = "failed", _("failed")
    SKIPPED = "skipped", _("skipped")


class SkipReason(models.TextChoices):
    NONE = "", _("not skipped")
    NON_TRADING = "non_trading", _("non-trading day")
    ALREADY_LOADED = "already_loaded", _("already loaded")
    # Loaded, but by another source: replaced only with force (see `LoadedDay`).
    LOADED_OTHER_SOURCE = "loaded_other_source", _("loaded from another source")
    PREVIOUSLY_FAILED = "previously_failed", _("failed before (reprocess=none)")
    # A verify job's trading day with neither rows nor a load record: nothing to verify.
    NOT_LOADED = "not_loaded", _("not loaded")


class SyncLock(models.Model):
    """A singleton row: starting a job locks it FOR UPDATE so starts are serialized."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(id=1), name="synclock_singleton")]

    def __str__(self) -> str:
        return "batchsync start lock"


class SyncDayQuerySet(models.QuerySet["SyncDay"]):
    def done(self) -> SyncDayQuerySet:
        return self.filter(status__in=[SyncDayStatus.SUCCEEDED, SyncDayStatus.FAILED, SyncDayStatus.SKIPPED])

    def claimable(self, now: dt.datetime) -> SyncDayQuerySet:
        """Days a worker may take: pending ones, and running ones whose lease ran out."""
        return self.filter(
            Q(status=SyncDayStatus.PENDING) | Q(status=SyncDayStatus.RUNNING, lease_expires_at__lt=now)
        )

    def in_flight(self, now: dt.datetime) -> SyncDayQuerySet:
        """Days a live worker is loading right now."""
        return self.filter(status=SyncDayStatus.RUNNING, lease_expires_at__gte=now)


class SyncDay(models.Model):
    """The state of one calendar day of a job; what lets a job resume and retry failed days."""

    job = models.ForeignKey(SyncJob, on_delete=models.CASCADE, related_name="days")
    date = models.DateField(_("date"))
    status = models.CharField(
        _("status"), max_length=10, choices=SyncDayStatus.choices, default=SyncDayStatus.PENDING
    )
    skip_reason = models.CharField(
        _("skip reason"), max_length=20, choices=SkipReason.choices, blank=True, default=""
    )
    rows = models.PositiveIntegerField(_("rows"), default=0)
    duration_seconds = models.FloatField(_("duration (s)"), null=True, blank=True)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True)
    worker_id = models.CharField(_("worker"), max_length=120, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    fence = models.PositiveBigIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects: ClassVar[SyncDayQuerySet] = SyncDayQuerySet.as_manager()  # type: ignore[assignment]

    class Meta:
        ordering = ["job", "date"]
        verbose_name = _("sync day")
        verbose_name_plural = _("sync days")
        indexes = [
            models.Index(fields=["job", "status", "date"], name="syncday_claim_idx"),
            models.Index(fields=["date"], condition=Q(status="succeeded"), name="syncday_loaded_idx"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["job", "date"], name="syncday_unique_job_date"),
            models.CheckConstraint(
                condition=Q(
                    status="skipped",
                    skip_reason__in=[
                        "non_trading",
                        "already_loaded",
                        "loaded_other_source",
                        "previously_failed",
                        "not_loaded",
                    ],
                )
                | (~Q(status="skipped") & Q(skip_reason="")),
                name="syncday_skip_reason_iff_skipped",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.job.task_id} {self.date}"


VIEW_TRACEBACK = "batchsync.view_traceback"


class SyncError(models.Model):
    """One failure of one attempt at one day; every error is kept."""

    job = models.ForeignKey(SyncJob, on_delete=models.CASCADE, related_name="errors")
    day = models.ForeignKey(SyncDay, null=True, blank=True, on_delete=models.CASCADE, related_name="errors")
    date = models.DateField(_("date"), null=True, blank=True)
    error = models.TextField(_("error"))
    traceback = models.TextField(_("traceback"), blank=True)
    file = models.CharField(_("file"), max_length=500, blank=True)
    line = models.PositiveIntegerField(_("line"), null=True, blank=True)
    attempt = models.PositiveIntegerField(_("attempt"), default=1)
    created_at = models.DateTimeField(_("time"), default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("sync error")
        verbose_name_plural = _("sync errors")
        indexes = [models.Index(fields=["job", "-created_at"], name="syncerror_recent_idx")]
        # Tracebacks show the server's code and paths: only for holders of this (superusers have
        # it); the API never shows them, the admin only to holders. Messages are for everyone.
        permissions = [("view_traceback", _("Can view tracebacks of sync errors"))]

    def __str__(self) -> str:
        return f"{self.date}: {self.error[:80]}"
