"""Alerts: one row per event (job failed, stalled, deadline missed, recovered), and their deliveries.

A problem event opens an incident (an alert with deliveries) unless its scope (a schedule, or
a source for jobs started by hand) already has one of its family open (job failed and failed
days are one family); then it is recorded, grouped into the open one, whose `occurrences`
grows, and nothing is sent. The next successful run of the scope closes its incidents and
sends one `recovered` alert.
"""

from __future__ import annotations

from typing import ClassVar

from django.db import models
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class AlertKind(models.TextChoices):
    JOB_FAILED = "job_failed", _("job failed")
    FAILED_DAYS = "failed_days", _("job finished with failed days")
    JOB_STALLED = "job_stalled", _("job stalled")
    DEADLINE_MISSED = "deadline_missed", _("freshness deadline missed")
    RECOVERED = "recovered", _("recovered")
    TEST = "test", _("test alert")


# Kinds that open an incident, which the scope's next successful run closes.
PROBLEM_KINDS = (
    AlertKind.JOB_FAILED,
    AlertKind.FAILED_DAYS,
    AlertKind.JOB_STALLED,
    AlertKind.DEADLINE_MISSED,
)


# A job that loaded nothing and one that loaded some days but not all fail for the same
# reasons night after night: one family, so one open incident groups both.
FAILURE_KINDS = (AlertKind.JOB_FAILED, AlertKind.FAILED_DAYS)


def incident_family(kind: str) -> list[str]:
    """The kinds whose open incident groups an event of `kind`."""
    return [str(k) for k in FAILURE_KINDS] if kind in FAILURE_KINDS else [kind]


class AlertChannel(models.TextChoices):
    EMAIL = "email", _("email")
    WEBHOOK = "webhook", _("webhook")


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("pending")
    SENDING = "sending", _("sending")
    SENT = "sent", _("sent")
    FAILED = "failed", _("failed")


class AlertQuerySet(models.QuerySet["Alert"]):
    def open_incidents(self) -> AlertQuerySet:
        """Problem alerts that were sent (not grouped) and are not resolved yet."""
        return self.filter(kind__in=PROBLEM_KINDS, grouped_into__isnull=True, resolved_at__isnull=True)

    def sent(self) -> AlertQuerySet:
        """Alerts that went out (not grouped into another)."""
        return self.filter(grouped_into__isnull=True)


class Alert(models.Model):
    """One event worth telling someone about; sent unless grouped into an open incident."""

    kind = models.CharField(_("kind"), max_length=20, choices=AlertKind.choices)
    # What groups alerts: `schedule:<id>` for a schedule's runs and deadlines, `source:<name>`
    # for jobs started by hand, `test` for test alerts.
    scope = models.CharField(_("scope"), max_length=120)
    source = models.CharField(_("source"), max_length=50, blank=True)
    schedule = models.ForeignKey(
        "batchsync.SyncSchedule",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="alerts",
        verbose_name=_("schedule"),
    )
    job = models.ForeignKey(
        "batchsync.SyncJob",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="alerts",
        verbose_name=_("job"),
    )
    trade_date = models.DateField(_("trade date"), null=True, blank=True)
    # Unique: the same event recorded twice (two processes, a check run twice) is one alert.
    event_key = models.CharField(_("event key"), max_length=200, unique=True)
    message = models.TextField(_("message"))
    occurrences = models.PositiveIntegerField(_("occurrences"), default=1)
    grouped_into = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="grouped",
        verbose_name=_("grouped into"),
    )
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    resolved_by = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="resolves",
        verbose_name=_("resolved by"),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    last_seen_at = models.DateTimeField(_("last seen at"), default=timezone.now)

    objects: ClassVar[AlertQuerySet] = AlertQuerySet.as_manager()  # type: ignore[assignment]

    class Meta:
        db_table = "batchsync_alert"
        ordering = ["-created_at", "-id"]
        verbose_name = _("alert")
        verbose_name_plural = _("alerts")
        indexes = [models.Index(fields=["scope", "kind"], name="alert_scope_kind_idx")]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=AlertKind.values), name="alert_kind_valid"),
            models.CheckConstraint(condition=Q(occurrences__gte=1), name="alert_occurrences_gte_1"),
            models.CheckConstraint(
                condition=Q(grouped_into__isnull=True) | Q(kind__in=PROBLEM_KINDS),
                name="alert_only_problems_grouped",
            ),
            # The database itself refuses a second open incident of one family for one scope.
            models.UniqueConstraint(
                F("scope"),
                Case(When(kind__in=FAILURE_KINDS, then=Value("failure")), default=F("kind")),
                condition=Q(kind__in=PROBLEM_KINDS, grouped_into__isnull=True, resolved_at__isnull=True),
                name="alert_one_open_incident",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.scope} #{self.pk}"


class AlertDelivery(models.Model):
    """One alert through one channel: its status, attempts and last error."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.CharField(_("channel"), max_length=10, choices=AlertChannel.choices)
    target = models.CharField(_("target"), max_length=500, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    # When a sender took it (status sending); a sender gone longer than a delivery may take
    # leaves it to the next one.
    claimed_at = models.DateTimeField(_("claimed at"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)

    class Meta:
        db_table = "batchsync_alert_delivery"
        ordering = ["alert", "channel"]
        verbose_name = _("alert delivery")
        verbose_name_plural = _("alert deliveries")
        indexes = [models.Index(fields=["status", "claimed_at"], name="alert_delivery_todo_idx")]
        constraints = [
            models.UniqueConstraint(fields=["alert", "channel"], name="alert_delivery_one_per_channel"),
            models.CheckConstraint(
                condition=Q(channel__in=AlertChannel.values), name="alert_delivery_channel_valid"
            ),
            models.CheckConstraint(
                condition=Q(status__in=DeliveryStatus.values), name="alert_delivery_status_valid"
            ),
            models.CheckConstraint(
                condition=~Q(status=DeliveryStatus.SENT) | Q(sent_at__isnull=False),
                name="alert_delivery_sent_has_time",
            ),
            models.CheckConstraint(
                condition=Q(sent_at__isnull=True) | Q(sent_at__gte=F("created_at")),
                name="alert_delivery_sent_after_created",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.alert_id} {self.channel} {self.status}"
