"""Persistent state of batchsync: jobs, their days, their errors, and the bars they load."""

from __future__ import annotations

import datetime as dt
from typing import ClassVar

from django.db import models
from django.db.models import F, Q, Value
from django.utils import timezone
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

# Re-exported, and so registered with the app when it loads its models.
from batchsync.adj_models import AdjFactor as AdjFactor
from batchsync.adj_models import PriceAdjustment as PriceAdjustment
from batchsync.db_fields import ExactDecimalField, bar_value_check


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


class LoadedDay(models.Model):
    """What `daily_bar` holds for one trading day: which source and job loaded it, and a checksum.

    Written in the day's own transaction with its COPY, so it always describes the rows there.
    """

    trade_date = models.DateField(_("trade date"), unique=True)
    source = models.CharField(_("source"), max_length=50)
    # sha256 of the source's options that shape the data (never secrets): see `services.provenance`.
    options_fingerprint = models.CharField(_("options fingerprint"), max_length=64)
    job = models.ForeignKey(
        SyncJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="loaded_days"
    )
    rows = models.PositiveIntegerField(_("rows"))
    checksum = models.CharField(_("checksum"), max_length=32)  # md5, computed by PostgreSQL
    loaded_at = models.DateTimeField(_("loaded at"), default=timezone.now)

    class Meta:
        db_table = "batchsync_loaded_day"
        ordering = ["trade_date"]
        verbose_name = _("loaded day")
        verbose_name_plural = _("loaded days")

    def __str__(self) -> str:
        return f"{self.trade_date} {self.source}"


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


class TradingCalendar(models.Model):
    """An exchange calendar as exchange_calendars gave it, stored so planning needs no pandas.

    Building a calendar imports pandas and numpy (0.3-0.5 s of every `batch_sync` run); reading
    its sessions from here takes a millisecond. Stored again when the installed
    exchange_calendars version differs from `source_version` (a new release adds holidays).
    """

    name = models.CharField(_("calendar"), primary_key=True, max_length=16)
    first_session = models.DateField(_("first session"))
    last_session = models.DateField(_("last session"))
    source_version = models.CharField(_("exchange_calendars version"), max_length=32)
    stored_at = models.DateTimeField(_("stored at"), default=timezone.now)

    class Meta:
        db_table = "batchsync_trading_calendar"
        verbose_name = _("trading calendar")
        verbose_name_plural = _("trading calendars")
        constraints = [
            models.CheckConstraint(
                condition=Q(first_session__lte=F("last_session")), name="trading_calendar_first_lte_last"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.first_session}..{self.last_session}"


class TradingSession(models.Model):
    """One trading day of a stored calendar."""

    pk = models.CompositePrimaryKey("calendar", "date")
    calendar = models.ForeignKey(
        TradingCalendar, on_delete=models.CASCADE, related_name="sessions", db_column="calendar"
    )
    date = models.DateField(_("date"))

    class Meta:
        db_table = "batchsync_trading_session"
        verbose_name = _("trading session")
        verbose_name_plural = _("trading sessions")

    def __str__(self) -> str:
        return f"{self.calendar_id} {self.date}"


class DailyBar(models.Model):
    """One daily bar (tushare `daily`), keyed by (trade_date, ts_code).

    NUMERIC, not float: prices are decimal quantities quoted to the cent (funds to 0.001), and
    sums and comparisons must be exact. Scales follow tushare: prices and changes 4 places,
    pct_chg 4, vol (lots) 2, amount (thousand yuan) 3; more decimals are refused, not rounded
    (`batchsync.db_fields`).
    """

    pk = models.CompositePrimaryKey("trade_date", "ts_code")
    trade_date = models.DateField()
    # Byte order: codes are ASCII, and "C" keeps the key's comparisons memcmp on any server locale.
    ts_code = models.CharField(max_length=12, db_collation="C")
    open = ExactDecimalField(max_digits=14, decimal_places=4)
    high = ExactDecimalField(max_digits=14, decimal_places=4)
    low = ExactDecimalField(max_digits=14, decimal_places=4)
    close = ExactDecimalField(max_digits=14, decimal_places=4)
    pre_close = ExactDecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    change = ExactDecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    pct_chg = ExactDecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    vol = ExactDecimalField(max_digits=20, decimal_places=2)
    amount = ExactDecimalField(max_digits=22, decimal_places=3)

    class Meta:
        db_table = "daily_bar"
        verbose_name = _("daily bar")
        verbose_name_plural = _("daily bars")
        constraints = [
            models.CheckConstraint(condition=Q(low__lte=F("high")), name="daily_bar_low_lte_high"),
            # No NaN, no silent rounding, prices > 0, vol and amount >= 0 (batchsync.db_fields).
            *(
                bar_value_check(name, scale=4, digits=14, low="gt0")
                for name in ("open", "high", "low", "close")
            ),
            bar_value_check("pre_close", scale=4, digits=14, low="gt0", nullable=True),
            bar_value_check("change", scale=4, digits=14, low="any", nullable=True),
            bar_value_check("pct_chg", scale=4, digits=12, low="any", nullable=True),
            bar_value_check("vol", scale=2, digits=20, low="gte0"),
            bar_value_check("amount", scale=3, digits=22, low="gte0"),
        ]

    def __str__(self) -> str:
        return f"{self.trade_date} {self.ts_code}"


# Re-exported, and so registered with the app when it loads its models (kept apart: models.py is long).
from batchsync.alert_models import Alert as Alert  # noqa: E402
from batchsync.alert_models import AlertDelivery as AlertDelivery  # noqa: E402
from batchsync.check_models import CheckSeverity as CheckSeverity  # noqa: E402
from batchsync.check_models import DayFinding as DayFinding  # noqa: E402
from batchsync.event_models import SyncJobEvent as SyncJobEvent  # noqa: E402
from batchsync.event_models import SyncJobEventKind as SyncJobEventKind  # noqa: E402
from batchsync.schedule_models import ScheduleOutcome as ScheduleOutcome  # noqa: E402
from batchsync.schedule_models import SyncSchedule as SyncSchedule  # noqa: E402
