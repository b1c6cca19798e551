"""Reads of sync schedules: the list, and what each shows (last run, outcome, next run)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from batchsync.models import ScheduleOutcome, SyncJobStatus, SyncSchedule
from batchsync.services.latest import exchange_timezone


def sync_schedule_list() -> QuerySet[SyncSchedule]:
    """Every schedule by name, with its last job."""
    return SyncSchedule.objects.select_related("last_job").order_by("name")


def sync_schedule_outcome(schedule: SyncSchedule) -> str:
    """The last run's outcome in words: its job's status once it started one, else why not."""
    job = schedule.last_job
    if schedule.last_outcome in (ScheduleOutcome.STARTED, ScheduleOutcome.QUEUED) and job is not None:
        return _("job %(status)s") % {"status": SyncJobStatus(job.status).label}
    return str(ScheduleOutcome(schedule.last_outcome).label)


def in_exchange_zone(moment: dt.datetime | None) -> dt.datetime | None:
    """A time as the exchange's clock shows it (cron expressions are in that zone)."""
    return moment.astimezone(exchange_timezone()) if moment else None


def sync_schedule_facts(schedule: SyncSchedule) -> dict[str, Any]:
    """Everything a schedule shows (API, command): its settings, last run, outcome and next run."""
    job = schedule.last_job
    return {
        "name": schedule.name,
        "cron": schedule.cron,
        "timezone": str(exchange_timezone()),
        "source": schedule.source,
        "source_options": schedule.source_options,
        "lookback_days": schedule.lookback_days,
        "parallelism": schedule.parallelism,
        "priority": schedule.priority,
        "paused": schedule.paused,
        "freshness_deadline": schedule.freshness_deadline,
        "next_run_at": None if schedule.paused else in_exchange_zone(schedule.next_run_at),
        "last_run_at": in_exchange_zone(schedule.last_run_at),
        "last_job": job.task_id if job else None,
        "last_job_status": job.status if job else None,
        "last_outcome": schedule.last_outcome,
        "outcome": sync_schedule_outcome(schedule),
        "last_message": schedule.last_message,
        "created_at": schedule.created_at,
        "updated_at": schedule.updated_at,
    }
