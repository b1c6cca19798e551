"""Sync jobs: their statuses and kinds, the QuerySet naming their queries, and their messages."""

from __future__ import annotations

import datetime as dt
from typing import ClassVar

from django.db import models
from django.db.models import F, Q, Value
from django.utils import timezone
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _


class SyncJobStatus(models.TextChoices):
    PENDING = "pending", _("pending")
    QUEUED = "queued", _("queued")
    RUNNING = "running", _("running")
    PAUSING = "pausing", _("pausing")
    PAUSED = "paused", _("paused")
    CANCELLING = "cancelling", _("cancelling")
    CANCELLED = "cancelled", _("cancelled")
    SUCCEEDED = "succeeded", _("succeeded")
    FAILED = "failed", _("failed")


# Statuses that hold the single "running" slot: at most one job may be in one of these.
ACTIVE_STATUSES = (
    SyncJobStatus.PENDING,
    SyncJobStatus.RUNNING,
    SyncJobStatus.PAUSING,
    SyncJobStatus.CANCELLING,
)
# Statuses in which workers may still be loading days of the job.
WORKING_STATUSES = (SyncJobStatus.RUNNING, SyncJobStatus.PAUSING, SyncJobStatus.CANCELLING)
FINISHED_STATUSES = (SyncJobStatus.SUCCEEDED, SyncJobStatus.FAILED, SyncJobStatus.CANCELLED)


class Reprocess(models.TextChoices):
    FAILED = "failed", _("failed and never-run days")
    ALL = "all", _("all days")
    NONE = "none", _("only days never loaded")


class SyncJobKind(models.TextChoices):
    SYNC = "sync", _("sync")
    VERIFY = "verify", _("verify")


class VerifyMode(models.TextChoices):
    """What a verify job compares each loaded day with (blank for a sync job)."""

    NONE = "", _("not a verify job")
    CHECKSUM = "checksum", _("recorded checksum")
    AGAINST_SOURCE = "against_source", _("the source, fetched again")
    CHECKS = "checks", _("the data checks")


class SyncJobQuerySet(models.QuerySet["SyncJob"]):
    def active(self) -> SyncJobQuerySet:
        """Jobs that hold the single running slot."""
        return self.filter(status__in=ACTIVE_STATUSES)

    def working(self) -> SyncJobQuerySet:
        """Jobs whose days workers may be loading right now."""
        return self.filter(status__in=WORKING_STATUSES)

    def queued_in_order(self) -> SyncJobQuerySet:
        """Queued jobs, next to run first: highest priority, then oldest."""
        return self.filter(status=SyncJobStatus.QUEUED).order_by("-priority", "created_at", "id")

    def finished(self) -> SyncJobQuerySet:
        return self.filter(status__in=FINISHED_STATUSES)

    def stalled(self, now: dt.datetime) -> SyncJobQuerySet:
        """Working jobs whose lease ran out: no worker has heartbeated them in time."""
        return self.working().filter(Q(lease_expires_at__lt=now) | Q(lease_expires_at__isnull=True))


class SyncJob(models.Model):
    """One batch sync of a date range from one source."""

    task_id = models.CharField(_("task id"), max_length=80, unique=True)
    source = models.CharField(_("source"), max_length=50)
    source_options = models.JSONField(_("source options"), default=dict, blank=True)
    start_date = models.DateField(_("start date"))
    end_date = models.DateField(_("end date"))
    status = models.CharField(
        _("status"), max_length=12, choices=SyncJobStatus.choices, default=SyncJobStatus.PENDING
    )
    force = models.BooleanField(_("force reload"), default=False)
    reprocess = models.CharField(
        _("reprocess"), max_length=8, choices=Reprocess.choices, default=Reprocess.FAILED
    )
    parallelism = models.PositiveSmallIntegerField(_("parallelism"), default=1)
    priority = models.SmallIntegerField(_("priority"), default=0)
    retry_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="retries"
    )
    # A verify job compares loaded days instead of loading them (docs/verify.md).
    kind = models.CharField(_("kind"), max_length=8, choices=SyncJobKind.choices, default=SyncJobKind.SYNC)
    verify_mode = models.CharField(
        _("verify mode"), max_length=16, choices=VerifyMode.choices, blank=True, default=VerifyMode.NONE
    )
    # The schedule whose tick started the job (none: started by hand).
    schedule = models.ForeignKey(
        "batchsync.SyncSchedule",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="jobs",
        verbose_name=_("schedule"),
    )

    total_days = models.PositiveIntegerField(_("total days"), default=0)
    processed_days = models.PositiveIntegerField(_("processed days"), default=0)
    success_days = models.PositiveIntegerField(_("succeeded days"), default=0)
    failed_days = models.PositiveIntegerField(_("failed days"), default=0)
    skipped_days = models.PositiveIntegerField(_("skipped days"), default=0)
    current_date = models.DateField(_("current date"), null=True, blank=True)
    rows_loaded = models.BigIntegerField(_("rows loaded"), default=0)
    # Days whose data checks left warnings (`DayFinding`), counted when the run ends.
    warning_days = models.PositiveIntegerField(_("days with warnings"), default=0)
    requested_by = models.CharField(_("requested by"), max_length=150, blank=True)

    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    # Running time without pauses: seconds banked by earlier runs, plus now - running_since.
    active_seconds = models.FloatField(_("active seconds"), default=0.0)
    running_since = models.DateTimeField(null=True, blank=True)
    estimated_completion = models.DateTimeField(_("estimated completion"), null=True, blank=True)

    # Runner safety: the worker that last worked on the job, its lease, and a fencing counter
    # bumped on every (re)start so that a worker from an earlier run can never write again.
    worker_id = models.CharField(_("worker"), max_length=120, blank=True)
    lease_expires_at = models.DateTimeField(_("lease expires at"), null=True, blank=True)
    fence = models.PositiveBigIntegerField(_("fencing counter"), default=0)
    recoveries = models.PositiveIntegerField(_("recoveries"), default=0)

    objects: ClassVar[SyncJobQuerySet] = SyncJobQuerySet.as_manager()  # type: ignore[assignment]

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("sync job")
        verbose_name_plural = _("sync jobs")
        indexes = [models.Index(fields=["status", "-priority", "created_at"], name="syncjob_queue_idx")]
        constraints = [
            models.CheckConstraint(condition=Q(start_date__lte=F("end_date")), name="syncjob_start_lte_end"),
            models.CheckConstraint(
                condition=Q(processed_days__lte=F("total_days")), name="syncjob_processed_lte_total"
            ),
            models.CheckConstraint(
                condition=Q(processed_days=F("success_days") + F("failed_days") + F("skipped_days")),
                name="syncjob_processed_is_sum",
            ),
            models.CheckConstraint(condition=Q(parallelism__gte=1), name="syncjob_parallelism_gte_1"),
            models.CheckConstraint(condition=Q(status__in=SyncJobStatus.values), name="syncjob_status_valid"),
            models.CheckConstraint(
                condition=Q(kind="sync", verify_mode="")
                | Q(kind="verify", verify_mode__in=["checksum", "against_source", "checks"]),
                name="syncjob_verify_mode_iff_verify",
            ),
            # The database itself refuses a second job in the running slot.
            models.UniqueConstraint(
                Value(1),
                condition=Q(status__in=ACTIVE_STATUSES),
                name="syncjob_one_active",
                violation_error_message=_("A sync job is already running"),
            ),
        ]

    def __str__(self) -> str:
        return self.task_id

    @property
    def progress_percent(self) -> float:
        """The seed's figure: processed (skipped included) of all days; kept for its clients."""
        if not self.total_days:
            return 0.0
        return round(100.0 * self.processed_days / self.total_days, 1)

    @property
    def days_to_load(self) -> int:
        """Days the job loads: every day of its range but the skipped ones."""
        return self.total_days - self.skipped_days

    @property
    def days_loaded(self) -> int:
        return self.success_days

    @property
    def days_left(self) -> int:
        """Days not yet tried in this run (neither loaded, failed nor skipped)."""
        return self.total_days - self.processed_days

    @property
    def load_percent(self) -> float:
        """The honest headline: days loaded of days to load, in percent (100 when none to load)."""
        if not self.days_to_load:
            return 100.0 if self.is_finished else 0.0
        return round(100.0 * self.days_loaded / self.days_to_load, 1)

    @property
    def duration_seconds(self) -> float | None:
        """Running time without pauses; None before the job first ran."""
        if self.started_at is None:
            return None
        seconds = self.active_seconds
        if self.running_since is not None:
            seconds += (timezone.now() - self.running_since).total_seconds()
        return round(seconds, 3)

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    @property
    def message(self) -> str:
        """The seed's one-line status message, in the active language."""
        counts = {
            "success": self.success_days,
            "failed": self.failed_days,
            "skipped": self.skipped_days,
        }
        seconds = round(self.duration_seconds or 0)
        took = {"minutes": seconds // 60, "seconds": seconds % 60}
        # The seed's messages carry its `progress_percent` (its example pairs them); the honest
        # figure, days loaded of days to load, is the pages' headline (`selectors.sync_job_load_summary`).
        percent = f"{self.progress_percent:.1f}"
        status = self.status
        S = SyncJobStatus
        if self.kind == SyncJobKind.VERIFY and status in (S.PENDING, S.RUNNING, *FINISHED_STATUSES):
            return self._verify_message(counts, took, percent)
        if status == SyncJobStatus.PENDING and self.started_at is not None:
            return ngettext(
                "Batch sync job resumed; %(days)s day left to load",
                "Batch sync job resumed; %(days)s days left to load",
                self.days_left,
            ) % {"days": self.days_left}
        if status == SyncJobStatus.PENDING:
            return ngettext(
                "Batch sync job started; %(days)s day to sync",
                "Batch sync job started; %(days)s days to sync",
                self.total_days,
            ) % {"days": self.total_days}
        if status == SyncJobStatus.QUEUED:
            return gettext("Queued; waits for the running job to finish")
        if status == SyncJobStatus.RUNNING:
            if self.current_date is None:
                return gettext("Starting... (%(percent)s%%)") % {"percent": percent}
            return gettext("Syncing %(date)s... (%(percent)s%%)") % {
                "date": self.current_date.isoformat(),
                "percent": percent,
            }
        if status == SyncJobStatus.PAUSING:
            return gettext("Pausing after the current day... (%(percent)s%%)") % {"percent": percent}
        if status == SyncJobStatus.PAUSED:
            return gettext("Paused with %(loaded)s of %(to_load)s days loaded; resume to continue") % {
                "loaded": self.days_loaded,
                "to_load": self.days_to_load,
            }
        if status == SyncJobStatus.CANCELLING:
            return gettext("Cancelling after the current day... (%(percent)s%%)") % {"percent": percent}
        if status == SyncJobStatus.CANCELLED:
            return gettext(
                "Batch sync cancelled: %(success)s succeeded, %(failed)s failed, "
                "%(skipped)s skipped, took %(minutes)sm %(seconds)ss"
            ) % {**counts, **took}
        finished = gettext(
            "Batch sync finished: %(success)s succeeded, %(failed)s failed, "
            "%(skipped)s skipped, took %(minutes)sm %(seconds)ss"
        ) % {**counts, **took}
        if self.warning_days:
            finished += ngettext(
                "; %(count)s day with warnings", "; %(count)s days with warnings", self.warning_days
            ) % {"count": self.warning_days}
        return finished

    def _verify_message(self, counts: dict[str, int], took: dict[str, int], percent: str) -> str:
        """A verify job's line: the days it will compare, the one it compares, or how they compared."""
        if self.status == SyncJobStatus.PENDING:
            return ngettext(
                "Verify job started; %(days)s day to verify",
                "Verify job started; %(days)s days to verify",
                self.total_days - self.skipped_days,
            ) % {"days": self.total_days - self.skipped_days}
        if self.status == SyncJobStatus.RUNNING:
            return gettext("Verifying %(date)s... (%(percent)s%%)") % {
                "date": self.current_date.isoformat() if self.current_date else "-",
                "percent": percent,
            }
        return gettext(
            "Verify %(status)s: %(success)s days match, %(failed)s differ or failed, "
            "%(skipped)s skipped, took %(minutes)sm %(seconds)ss"
        ) % {"status": self.get_status_display(), **counts, **took}
