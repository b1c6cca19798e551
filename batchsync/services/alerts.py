"""Alerts: record each event once, group repeats into the open incident, close incidents on recovery.

Every alert is a row (`Alert`, unique `event_key`), written in the caller's transaction: the
end of a job's run records its failure or recovery with the run's own commit, so an alert is
neither lost nor doubled. Its deliveries are rows too, sent after the commit by a cluster task
or by `batch_sync alerts check` (`services.alert_delivery`), never on the day-commit path.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from batchsync.alert_models import (
    PROBLEM_KINDS,
    Alert,
    AlertChannel,
    AlertDelivery,
    AlertKind,
    incident_family,
)
from batchsync.conf import get_settings
from batchsync.dispatch import alert_dispatch
from batchsync.logs import log_event
from batchsync.models import SyncJob, SyncJobStatus, SyncSchedule
from batchsync.reconnect import CONNECTION_ERRORS, first_line

logger = logging.getLogger("batchsync.alerts")

# Two processes opening the same incident at once: the loser retries and groups into it.
RECORD_TRIES = 3


@dataclass(frozen=True)
class AlertEvent:
    """An event as its source reports it; `event_key` names it uniquely (same event, same key)."""

    kind: AlertKind
    scope: str
    event_key: str
    message: str
    source: str = ""
    job: SyncJob | None = None
    schedule: SyncSchedule | None = None
    trade_date: dt.date | None = None


def job_scope(job: SyncJob) -> str:
    """What groups a job's alerts: its schedule, or its source for a job started by hand."""
    return f"schedule:{job.schedule_id}" if job.schedule_id else f"source:{job.source}"


def alert_channels() -> dict[str, str]:
    """The configured channels and their targets (addresses, URL): where each alert goes."""
    config = get_settings()
    channels = {}
    if config.alert_emails:
        channels[AlertChannel.EMAIL.value] = ", ".join(config.alert_emails)
    if config.alert_webhook_url:
        channels[AlertChannel.WEBHOOK.value] = config.alert_webhook_url
    return channels


@contextlib.contextmanager
def site_language() -> Iterator[None]:
    """Alerts are read away from any request: in the site's language (LANGUAGE_CODE)."""
    with translation.override(settings.LANGUAGE_CODE):
        yield


def alert_record(event: AlertEvent, *, to_cluster: bool = True) -> Alert | None:
    """Record the event once: open an incident and queue its deliveries, or group it into the open one.

    None when the event was recorded before (by this or another process). `to_cluster=False`:
    the caller sends the deliveries itself (`batch_sync alerts test`).
    """
    attempt = 1
    while True:
        try:
            with transaction.atomic():
                return _alert_record_once(event, to_cluster)
        except IntegrityError:
            # Another process recorded this event, or opened this incident, first.
            if Alert.objects.filter(event_key=event.event_key).exists():
                return None
            if attempt == RECORD_TRIES:
                raise
            attempt += 1


def _alert_record_once(event: AlertEvent, to_cluster: bool) -> Alert | None:
    if Alert.objects.filter(event_key=event.event_key).exists():
        return None
    now = timezone.now()
    fields = {
        "kind": event.kind,
        "scope": event.scope,
        "event_key": event.event_key,
        "message": event.message,
        "source": event.source,
        "job": event.job,
        "schedule_id": _schedule_id(event),
        "trade_date": event.trade_date,
        "created_at": now,
        "last_seen_at": now,
    }
    if event.kind in PROBLEM_KINDS:
        incident = (
            Alert.objects.open_incidents()
            .filter(scope=event.scope, kind__in=incident_family(event.kind))
            .select_for_update()
            .first()
        )
        if incident is not None:
            alert = Alert.objects.create(**fields, grouped_into=incident)
            Alert.objects.filter(pk=incident.pk).update(occurrences=F("occurrences") + 1, last_seen_at=now)
            log_event(logger, "alert_grouped", alert=alert.pk, kind=event.kind, into=incident.pk)
            return alert
    alert = Alert.objects.create(**fields)
    channels = alert_channels()
    AlertDelivery.objects.bulk_create(
        AlertDelivery(alert=alert, channel=channel, target=target, created_at=now)
        for channel, target in channels.items()
    )
    if channels and to_cluster:
        alert_dispatch(alert.pk)
    log_event(
        logger,
        "alert",
        level=logging.WARNING if event.kind in PROBLEM_KINDS else logging.INFO,
        alert=alert.pk,
        kind=event.kind,
        scope=event.scope,
        channels=",".join(channels) or "-",
    )
    return alert


def _schedule_id(event: AlertEvent) -> int | None:
    if event.schedule is not None:
        return event.schedule.pk
    return event.job.schedule_id if event.job is not None else None


@contextlib.contextmanager
def _never_failing(what: str, job: SyncJob) -> Iterator[None]:
    """An alert that cannot be recorded is logged; the job's own commit goes on regardless."""
    try:
        with transaction.atomic():
            yield
    except CONNECTION_ERRORS as error:
        # The session was ended (an abort, a server restart): the job's own statements meet it
        # too and reconnect; a traceback here would only be noise on the operator's terminal.
        log_event(
            logger,
            "alert_record_failed",
            level=logging.WARNING,
            job=job.task_id,
            on=what,
            error=first_line(error),
        )
    except Exception:
        log_event(logger, "alert_record_failed", level=logging.ERROR, exc_info=True, job=job.task_id, on=what)


def alert_job_finished(job: SyncJob) -> None:
    """The end of a job's run (in its transaction): a failure alert (grouped), or a recovery."""
    with _never_failing("finished", job):
        if job.status == SyncJobStatus.FAILED:
            alert_record(_failure_event(job))
        elif job.status == SyncJobStatus.SUCCEEDED:
            alert_recovery(job)


def _failure_event(job: SyncJob) -> AlertEvent:
    facts = {
        "task_id": job.task_id,
        "source": job.source,
        "start": job.start_date,
        "end": job.end_date,
        "failed": job.failed_days,
        "success": job.success_days,
    }
    with site_language():
        if job.success_days == 0:
            kind = AlertKind.JOB_FAILED
            message = _(
                "Job %(task_id)s (source %(source)s, %(start)s..%(end)s) failed: "
                "%(failed)s day(s) failed and none loaded"
            )
        else:
            kind = AlertKind.FAILED_DAYS
            message = _(
                "Job %(task_id)s (source %(source)s, %(start)s..%(end)s) finished with "
                "%(failed)s failed day(s); %(success)s loaded"
            )
        message %= facts
    return AlertEvent(kind, job_scope(job), f"{kind}:job:{job.pk}", message, job.source, job)


def alert_recovery(job: SyncJob) -> Alert | None:
    """A successful run closes its scope's open incidents and sends one `recovered` alert."""
    scope = job_scope(job)
    incidents = list(Alert.objects.open_incidents().filter(scope=scope).select_for_update().order_by("pk"))
    if not incidents:
        return None
    with site_language():
        message = ngettext(
            "Recovered: job %(task_id)s (source %(source)s) succeeded; %(count)s open alert is closed",
            "Recovered: job %(task_id)s (source %(source)s) succeeded; %(count)s open alerts are closed",
            len(incidents),
        ) % {"task_id": job.task_id, "source": job.source, "count": len(incidents)}
    return _incidents_close(incidents, AlertEvent(AlertKind.RECOVERED, scope, "", message, job.source, job))


def alert_freshness_restored(schedule: SyncSchedule, loaded: dt.date) -> Alert | None:
    """The deadline check found the schedule's latest day loaded: its open miss is recovered."""
    scope = f"schedule:{schedule.pk}"
    with transaction.atomic():
        incidents = list(
            Alert.objects.open_incidents()
            .filter(scope=scope, kind=AlertKind.DEADLINE_MISSED)
            .select_for_update()
            .order_by("pk")
        )
        if not incidents:
            return None
        with site_language():
            message = _(
                "Recovered: schedule %(name)s is fresh again, %(loaded)s is loaded from %(source)s"
            ) % {"name": schedule.name, "loaded": loaded.isoformat(), "source": schedule.source}
        event = AlertEvent(AlertKind.RECOVERED, scope, "", message, schedule.source, schedule=schedule)
        return _incidents_close(incidents, event)


def _incidents_close(incidents: list[Alert], recovery: AlertEvent) -> Alert | None:
    """Record one `recovered` alert (once: keyed by the first incident) and resolve the incidents."""
    key = f"{AlertKind.RECOVERED}:{recovery.scope}:{incidents[0].pk}"
    recovered = alert_record(replace(recovery, event_key=key))
    if recovered is not None:
        Alert.objects.filter(pk__in=[i.pk for i in incidents]).update(
            resolved_at=recovered.created_at, resolved_by=recovered
        )
    return recovered


def alert_job_recovered_by_reaper(job: SyncJob) -> None:
    """The reaper recovered the job again: at BATCHSYNC ALERT_STALLED_RECOVERIES it is stalled."""
    threshold = get_settings().alert_stalled_recoveries
    if job.recoveries < threshold:
        return
    with _never_failing("stalled", job), site_language():
        message = _(
            "Job %(task_id)s (source %(source)s) is stalled: the reaper recovered it %(count)s times"
        ) % {"task_id": job.task_id, "source": job.source, "count": job.recoveries}
        key = f"{AlertKind.JOB_STALLED}:job:{job.pk}"
        alert_record(AlertEvent(AlertKind.JOB_STALLED, job_scope(job), key, message, job.source, job))


def alert_test_record() -> Alert:
    """A test alert through every configured channel (`batch_sync alerts test`)."""
    with site_language():
        message = _("Test alert from batchsync: if you read this, the channel works")
    event = AlertEvent(AlertKind.TEST, "test", f"test:{uuid.uuid4()}", message)
    alert = alert_record(event, to_cluster=False)
    assert alert is not None  # a fresh key is never recorded before
    return alert
