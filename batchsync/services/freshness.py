"""Freshness deadlines: a schedule whose latest published trading day is not loaded by its deadline.

Checked by `alerts_check`, every minute on the cluster (migration 0013) and from
`batch_sync alerts check` (a systemd timer when the cluster is down): it needs no job and no
worker, only the database, so a dead cluster is noticed too. Each miss is recorded once per
schedule and exchange-local day (its event key), however many processes check.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from django.utils import timezone
from django.utils.translation import gettext as _

from batchsync import calendars
from batchsync.alert_models import Alert, AlertDelivery, AlertKind
from batchsync.conf import get_settings
from batchsync.exceptions import BatchSyncError
from batchsync.logs import log_event
from batchsync.models import SyncSchedule
from batchsync.services.alert_delivery import alert_deliveries_send_due
from batchsync.services.alerts import AlertEvent, alert_freshness_restored, alert_record, site_language
from batchsync.services.latest import (
    exchange_timezone,
    latest_published_trading_day,
    newest_loaded_trading_day,
)

logger = logging.getLogger("batchsync.alerts")


@dataclass(frozen=True)
class DeadlineCheck:
    """One schedule's deadline at one check: `state` is not_yet, not_trading, met, missed or error."""

    schedule: SyncSchedule
    state: str
    expected: dt.date | None = None
    loaded: dt.date | None = None
    alert: Alert | None = None
    error: str = ""


@dataclass(frozen=True)
class AlertsCheck:
    """What one `alerts check` did: each schedule's deadline, and the deliveries it sent."""

    deadlines: list[DeadlineCheck] = field(default_factory=list)
    deliveries: list[AlertDelivery] = field(default_factory=list)


def alerts_check(now: dt.datetime | None = None) -> AlertsCheck:
    """Check every freshness deadline, then send every delivery that is due (any process's)."""
    deadlines = alert_deadlines_check(now or timezone.now())
    return AlertsCheck(deadlines, alert_deliveries_send_due())


def alert_deadlines_check(now: dt.datetime) -> list[DeadlineCheck]:
    """Each active schedule with a deadline: past it on a trading day, is the latest day loaded?"""
    schedules = SyncSchedule.objects.filter(paused=False, freshness_deadline__isnull=False).order_by("name")
    checks = []
    for schedule in schedules:
        try:
            checks.append(_deadline_check(schedule, now))
        except BatchSyncError as error:  # e.g. the calendar ends: one schedule, not the others
            log_event(
                logger, "deadline_check_failed", level=logging.ERROR, schedule=schedule.name, error=error
            )
            checks.append(DeadlineCheck(schedule, "error", error=error.message))
    return checks


def _deadline_check(schedule: SyncSchedule, now: dt.datetime) -> DeadlineCheck:
    assert schedule.freshness_deadline is not None  # filtered
    local = now.astimezone(exchange_timezone())
    if local.time() < schedule.freshness_deadline:
        return DeadlineCheck(schedule, "not_yet")
    today = local.date()
    if today not in calendars.trading_days(get_settings().calendar, today, today):
        return DeadlineCheck(schedule, "not_trading")
    expected = latest_published_trading_day(schedule.source, now)
    loaded = newest_loaded_trading_day(schedule.source)
    if loaded is not None and loaded >= expected:
        restored = alert_freshness_restored(schedule, loaded)
        return DeadlineCheck(schedule, "met", expected, loaded, restored)
    with site_language():
        message = _(
            "Schedule %(name)s missed its freshness deadline: %(expected)s was not loaded by "
            "%(deadline)s (%(zone)s) on %(today)s; the newest trading day loaded from %(source)s is "
            "%(loaded)s"
        ) % {
            "name": schedule.name,
            "expected": expected.isoformat(),
            "deadline": schedule.freshness_deadline.strftime("%H:%M"),
            "zone": local.tzname(),
            "today": today.isoformat(),
            "source": schedule.source,
            "loaded": loaded.isoformat() if loaded else _("none"),
        }
    event = AlertEvent(
        AlertKind.DEADLINE_MISSED,
        f"schedule:{schedule.pk}",
        f"{AlertKind.DEADLINE_MISSED}:schedule:{schedule.pk}:{today.isoformat()}",
        message,
        source=schedule.source,
        schedule=schedule,
        trade_date=expected,
    )
    return DeadlineCheck(schedule, "missed", expected, loaded, alert_record(event))
