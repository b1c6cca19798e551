"""Named sync schedules: a cron expression that starts `--latest` runs of one source."""

from __future__ import annotations

import datetime as dt
from typing import ClassVar

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class ScheduleOutcome(models.TextChoices):
    """What the schedule's last tick did (the run's own result is its job's status)."""

    NONE = "", _("never run")
    STARTED = "started", _("started a job")
    QUEUED = "queued", _("queued a job behind the running one")
    UP_TO_DATE = "up_to_date", _("up to date: nothing to load")
    SKIPPED = "skipped", _("skipped")
    ERROR = "error", _("could not start")


class SyncScheduleQuerySet(models.QuerySet["SyncSchedule"]):
    def due(self, now: dt.datetime) -> SyncScheduleQuerySet:
        """Active schedules whose next run time has come (missed ticks included)."""
        return self.filter(paused=False, next_run_at__lte=now).order_by("next_run_at", "id")


class SyncSchedule(models.Model):
    """A named schedule: its cron expression (exchange time zone) starts `--latest` runs of a source.

    `source_options` never holds secrets (tokens come from the environment, as for every job).
    Ticks are driven by one django-q2 schedule (migration 0012): each tick starts what is due.
    """

    name = models.CharField(_("name"), max_length=100, unique=True)
    cron = models.CharField(_("cron expression"), max_length=100)
    source = models.CharField(_("source"), max_length=50)
    source_options = models.JSONField(_("source options"), default=dict, blank=True)
    # None: BATCHSYNC LATEST_LOOKBACK_DAYS.
    lookback_days = models.PositiveSmallIntegerField(_("look-back trading days"), null=True, blank=True)
    # None: BATCHSYNC DEFAULT_PARALLELISM.
    parallelism = models.PositiveSmallIntegerField(_("parallelism"), null=True, blank=True)
    priority = models.SmallIntegerField(_("priority"), default=0)
    paused = models.BooleanField(_("paused"), default=False)
    # "The latest trading day loaded by 18:30", in the exchange's time zone (alerts check it).
    freshness_deadline = models.TimeField(_("freshness deadline"), null=True, blank=True)

    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    next_run_at = models.DateTimeField(_("next run"), null=True, blank=True)
    last_run_at = models.DateTimeField(_("last run"), null=True, blank=True)
    last_job = models.ForeignKey(
        "batchsync.SyncJob",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("last job"),
    )
    last_outcome = models.CharField(
        _("last outcome"), max_length=12, choices=ScheduleOutcome.choices, blank=True, default=""
    )
    # Why the last tick skipped, was up to date or could not start.
    last_message = models.TextField(_("last message"), blank=True)

    objects: ClassVar[SyncScheduleQuerySet] = SyncScheduleQuerySet.as_manager()  # type: ignore[assignment]

    class Meta:
        db_table = "batchsync_sync_schedule"
        ordering = ["name"]
        verbose_name = _("sync schedule")
        verbose_name_plural = _("sync schedules")
        indexes = [models.Index(fields=["paused", "next_run_at"], name="syncschedule_due_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(parallelism__isnull=True) | Q(parallelism__gte=1),
                name="syncschedule_parallelism_gte_1",
            ),
            models.CheckConstraint(
                condition=Q(last_outcome__in=ScheduleOutcome.values), name="syncschedule_outcome_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.name
