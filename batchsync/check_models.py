"""Findings of the data checks: what a check found on a loaded day (warn severity), kept per day."""

from __future__ import annotations

from typing import ClassVar

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class CheckSeverity(models.TextChoices):
    """What a data check's finding does to the day: fail it, note it, or nothing (not run)."""

    ERROR = "error", _("error")
    WARN = "warn", _("warning")
    OFF = "off", _("off")


class DayFindingQuerySet(models.QuerySet["DayFinding"]):
    def warnings(self) -> DayFindingQuerySet:
        return self.filter(severity=CheckSeverity.WARN)

    def of_job(self, job_id: int) -> DayFindingQuerySet:
        return self.filter(job_id=job_id)

    def warning_day_count(self) -> int:
        """How many days these findings warn about (a job's "N days with warnings")."""
        return self.warnings().values("trade_date").distinct().count()


class DayFinding(models.Model):
    """One check's finding on one loaded day: how many rows it flagged and up to 5 of them.

    Written in the day's own transaction (with its bars), and replaced when the day is loaded
    again: the findings always describe the rows `daily_bar` holds for the day.
    """

    job = models.ForeignKey(
        "batchsync.SyncJob", null=True, blank=True, on_delete=models.SET_NULL, related_name="day_findings"
    )
    day = models.ForeignKey(
        "batchsync.SyncDay", null=True, blank=True, on_delete=models.SET_NULL, related_name="day_findings"
    )
    trade_date = models.DateField(_("trade date"))
    check_name = models.CharField(_("check"), max_length=40)
    severity = models.CharField(_("severity"), max_length=5, choices=CheckSeverity.choices)
    count = models.PositiveIntegerField(_("rows flagged"))
    examples = models.JSONField(_("examples"), default=list, blank=True)
    created_at = models.DateTimeField(_("found at"), default=timezone.now)

    objects: ClassVar[DayFindingQuerySet] = DayFindingQuerySet.as_manager()  # type: ignore[assignment]

    class Meta:
        db_table = "batchsync_day_finding"
        ordering = ["trade_date", "check_name"]
        verbose_name = _("data check finding")
        verbose_name_plural = _("data check findings")
        indexes = [models.Index(fields=["job", "trade_date"], name="day_finding_job_idx")]
        constraints = [
            models.UniqueConstraint(fields=["trade_date", "check_name"], name="day_finding_unique_check"),
            models.CheckConstraint(condition=Q(severity__in=["error", "warn"]), name="day_finding_severity"),
        ]

    def __str__(self) -> str:
        return f"{self.trade_date} {self.check_name}: {self.count}"
