"""`batch_sync alerts check|test|list`: freshness deadlines and deliveries, a test alert, the alerts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any

from django.core.management.base import CommandParser
from django.utils import timezone

from batchsync import alert_selectors, bounds, services
from batchsync.alert_models import PROBLEM_KINDS, Alert, AlertDelivery, DeliveryStatus
from batchsync.exceptions import BatchSyncError, InvalidJobRequest
from batchsync.management.exit_status import EXIT_DAYS_FAILED, EXIT_OK
from batchsync.management.output import shown, table

ALERT_ACTIONS = ("check", "test", "list")
# The options only `alerts` takes (`Arguments.extra`); --now and --limit are shared fields.
ALERT_OPTIONS = ("alerts_action", "open_only")


def add_alert_subcommands(
    subcommands: Any,
    django_options: CommandParser,
    whole_number: Callable[[str], int],
    moment: Callable[[str], dt.datetime],
) -> None:
    """`alerts check [--now T]`, `alerts test`, `alerts list [--limit N] [--open]`."""
    alerts = subcommands.add_parser(
        "alerts",
        parents=[django_options],
        help="check freshness deadlines and send due alerts (check), send a test alert (test), list alerts",
    )
    alerts.add_argument("alerts_action", choices=ALERT_ACTIONS, help="check, test or list")
    alerts.add_argument(
        "--now",
        type=moment,
        help="check: as if it were this time (ISO; without an offset, in TIME_ZONE), to replay a day or test",
    )
    alerts.add_argument(
        "--limit",
        type=whole_number,
        default=20,
        help=f"list: alerts shown ({bounds.LIST_LIMIT.low} to {bounds.LIST_LIMIT.high})",
    )
    alerts.add_argument("--open", dest="open_only", action="store_true", help="list: open incidents only")


def alerts_action(
    action: str, *, now: dt.datetime | None, limit: int, open_only: bool, write: Callable[[str], None]
) -> int:
    """Run one `alerts` action, writing its lines; the exit status."""
    if now is not None and action != "check":
        raise InvalidJobRequest("now", "--now is an option of alerts check only")
    if action == "check":
        return _check(now, write)
    if action == "test":
        return _test(write)
    for line in alert_lines(
        alert_selectors.alert_list(open_only=open_only)[: bounds.LIST_LIMIT.check(limit)]
    ):
        write(line)
    return EXIT_OK


def _check(now: dt.datetime | None, write: Callable[[str], None]) -> int:
    checked = services.alerts_check(now or timezone.now())
    for check in checked.deadlines:
        write(deadline_line(check))
    if not checked.deadlines:
        write("No active schedule has a freshness deadline.")
    return _deliveries_report(checked.deliveries, write)


def _test(write: Callable[[str], None]) -> int:
    if not services.alert_channels():
        raise BatchSyncError(
            "No alert channel is configured: set BATCHSYNC_ALERT_EMAILS and/or "
            "BATCHSYNC_ALERT_WEBHOOK_URL (with BATCHSYNC_ALERT_WEBHOOK_SECRET)"
        )
    alert = services.alert_test_record()
    write(f"Test alert #{alert.pk} recorded.")
    return _deliveries_report(services.alert_deliver(alert.pk), write)


def _deliveries_report(deliveries: Iterable[AlertDelivery], write: Callable[[str], None]) -> int:
    failed = False
    for delivery in deliveries:
        attempts = f"{delivery.attempts} attempt" + ("" if delivery.attempts == 1 else "s")
        line = f"alert #{delivery.alert_id} {delivery.channel} {delivery.status} ({attempts})"
        if delivery.status != DeliveryStatus.SENT:
            failed = True
            line += f": {delivery.last_error}"
        write(line)
    return EXIT_DAYS_FAILED if failed else EXIT_OK


def deadline_line(check: services.DeadlineCheck) -> str:
    """One schedule's deadline as `alerts check` found it."""
    schedule = check.schedule
    deadline = schedule.freshness_deadline.strftime("%H:%M") if schedule.freshness_deadline else "-"
    head = f"schedule {schedule.name} (deadline {deadline}):"
    if check.state == "missed":
        alert = f"alert #{check.alert.pk}" if check.alert else "alerted before"
        return f"{head} missed, {check.expected} not loaded (newest {shown(check.loaded)}); {alert}"
    if check.state == "met":
        recovered = f"; recovered, alert #{check.alert.pk}" if check.alert else ""
        return f"{head} met, {check.expected} loaded{recovered}"
    if check.state == "error":
        return f"{head} not checked: {check.error}"
    return f"{head} {'not a trading day' if check.state == 'not_trading' else 'not yet'}"


def alert_state(alert: Alert) -> str:
    """open, resolved (by #n), grouped (into #n) or sent."""
    if alert.grouped_into_id:
        return f"grouped into #{alert.grouped_into_id}"
    if alert.resolved_by_id:
        return f"resolved by #{alert.resolved_by_id}"
    return "open" if alert.kind in PROBLEM_KINDS else "-"


def alert_lines(alerts: Iterable[Alert]) -> list[str]:
    """`batch_sync alerts list`: one row per alert, newest first."""
    headers = ("id", "time", "kind", "scope", "count", "state", "deliveries", "message")
    rows = [
        (
            alert.pk,
            timezone.localtime(alert.created_at).strftime("%Y-%m-%d %H:%M:%S"),
            alert.kind,
            alert.scope,
            alert.occurrences,
            alert_state(alert),
            ", ".join(f"{d.channel} {d.status}" for d in alert.deliveries.all()) or "-",
            alert.message[:100],
        )
        for alert in alerts
    ]
    return table(headers, rows, numeric=(0, 4))
