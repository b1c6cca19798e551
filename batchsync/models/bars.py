"""The bars loaded, what loaded each day of them, and the stored trading calendars."""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from batchsync.db_fields import ExactDecimalField, bar_value_check
from batchsync.models.jobs import SyncJob


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
    # The previous trading day's checksum when this day's previous-day checks (pre_close
    # continuity, row count band) last compared it with that day: NULL while that day had no
    # rows (loaded after it, or alongside it by a parallel worker), "" for rows with no load
    # record. A mismatch with the previous day's checksum now means a comparison is due
    # (`services.loaded_day_neighbours_check`).
    previous_checksum = models.CharField(
        _("previous day's checksum compared"), max_length=32, null=True, blank=True
    )

    class Meta:
        db_table = "batchsync_loaded_day"
        ordering = ["trade_date"]
        verbose_name = _("loaded day")
        verbose_name_plural = _("loaded days")

    def __str__(self) -> str:
        return f"{self.trade_date} {self.source}"


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
