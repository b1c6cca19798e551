"""Reads of alerts: the list the API, the admin and `batch_sync alerts list` show."""

from __future__ import annotations

from django.db.models import F, QuerySet

from batchsync.alert_models import Alert


def alert_list(
    *, kind: str | None = None, scope: str | None = None, open_only: bool = False
) -> QuerySet[Alert]:
    """Alerts newest first, each with its job's task id and its deliveries."""
    alerts = Alert.objects.annotate(task_id=F("job__task_id")).prefetch_related("deliveries")
    if kind:
        alerts = alerts.filter(kind=kind)
    if scope:
        alerts = alerts.filter(scope=scope)
    if open_only:
        alerts = alerts.open_incidents()
    return alerts.order_by("-created_at", "-id")


def alert_detail(alert_id: int) -> Alert:
    """One alert, shaped as in `alert_list`."""
    return alert_list().get(pk=alert_id)
