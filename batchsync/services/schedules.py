"""Sync schedules: their validation, the operator's changes, and the tick that starts what is due.

One django-q2 schedule (migration 0012) calls `sync_schedules_tick` every minute. Each due
schedule is taken under its row lock (FOR UPDATE SKIP LOCKED) and its next run time moves past
`now` in the same transaction, so two ticks never start it twice, and ticks missed while the
cluster was down collapse into one run (whose range comes from what is loaded).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from croniter import croniter  # type: ignore[import-untyped]
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from batchsync import bounds, sources
from batchsync.conf import get_settings
from batchsync.exceptions import BatchSyncError, InvalidJobRequest, ScheduleNotFound, SyncUpToDate
from batchsync.logs import log_event
from batchsync.models import FINISHED_STATUSES, ScheduleOutcome, SyncJob, SyncJobStatus, SyncSchedule
from batchsync.services.latest import exchange_timezone
from batchsync.services.lifecycle import sync_job_create
from batchsync.services.planning import source_options_build, sync_request_build
from batchsync.services.provenance import SECRET_OPTION

logger = logging.getLogger("batchsync.schedules")

SCHEDULE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


@dataclass(frozen=True)
class ScheduleSpec:
    """What an operator sets on a schedule (the command's, the API's and the admin's input)."""

    name: str
    cron: str
    source: str | None = None  # None: BATCHSYNC DEFAULT_SOURCE
    source_options: dict[str, Any] = field(default_factory=dict)
    lookback_days: int | None = None
    parallelism: int | None = None
    priority: int = 0
    paused: bool = False
    freshness_deadline: dt.time | None = None


@dataclass(frozen=True)
class ScheduleRun:
    """What one start of a schedule did: its outcome, the job it started (if any) and why."""

    schedule: SyncSchedule
    outcome: str
    job: SyncJob | None
    message: str


def cron_validate(expression: str) -> str:
    """The cron expression, stripped; `InvalidJobRequest` for anything but five valid fields."""
    expression = " ".join(expression.split())
    if len(expression.split()) != 5 or not croniter.is_valid(expression):
        raise InvalidJobRequest(
            "cron",
            _("Invalid cron expression %(cron)s: five fields, minute hour day month weekday")
            % {"cron": repr(expression[:100])},
        )
    return expression


def cron_next(expression: str, after: dt.datetime) -> dt.datetime:
    """The first time after `after` that the expression matches, in the exchange's time zone."""
    following: dt.datetime = croniter(expression, after.astimezone(exchange_timezone())).get_next(dt.datetime)
    return following


def schedule_spec_validate(spec: ScheduleSpec, *, confine_paths: bool) -> ScheduleSpec:
    """The spec with its cron, source and options checked and normalized; `InvalidJobRequest` else."""
    if not SCHEDULE_NAME.match(spec.name):
        raise InvalidJobRequest(
            "name",
            _("A schedule name is 1-100 letters, digits, '_', '.' or '-', starting with a letter or digit"),
        )
    source = spec.source or get_settings().default_source
    for option in spec.source_options:
        if SECRET_OPTION.search(option):
            raise InvalidJobRequest(
                "source_options",
                _("%(name)s looks like a secret: schedules never store secrets (set it in the environment)")
                % {"name": option[:60]},
            )
    options = source_options_build(source, spec.source_options, path=None, confine_paths=confine_paths)
    sources.source_validate(source, options)
    if spec.lookback_days is not None:
        bounds.LOOKBACK_DAYS.check(spec.lookback_days)
    if spec.parallelism is not None:
        bounds.PARALLELISM.check(spec.parallelism)
    bounds.PRIORITY.check(spec.priority)
    return replace(spec, cron=cron_validate(spec.cron), source=source, source_options=options)


def schedule_get(name: str) -> SyncSchedule:
    """The schedule named `name`; `ScheduleNotFound` when none is."""
    schedule = SyncSchedule.objects.select_related("last_job").filter(name=name).first()
    if schedule is None:
        raise ScheduleNotFound(_("No schedule named %(name)s") % {"name": name[:100]})
    return schedule


def sync_schedule_create(
    spec: ScheduleSpec, *, confine_paths: bool = True, now: dt.datetime | None = None
) -> SyncSchedule:
    """Create a schedule; its first run is the cron expression's next time after `now`."""
    spec = schedule_spec_validate(spec, confine_paths=confine_paths)
    now = now or timezone.now()
    with transaction.atomic():
        if SyncSchedule.objects.select_for_update().filter(name=spec.name).exists():
            raise InvalidJobRequest("name", _("A schedule named %(name)s exists") % {"name": spec.name})
        schedule = SyncSchedule.objects.create(
            **{f.name: getattr(spec, f.name) for f in fields(spec)},
            next_run_at=cron_next(spec.cron, now),
        )
    log_event(logger, "schedule_created", schedule=schedule.name, cron=schedule.cron, source=schedule.source)
    return schedule


def sync_schedule_update(
    name: str, changes: Mapping[str, Any], *, confine_paths: bool = True, now: dt.datetime | None = None
) -> SyncSchedule:
    """Change some of a schedule's settings (a new name, cron ...); the next run follows the cron."""
    with transaction.atomic():
        schedule = SyncSchedule.objects.select_for_update().get(pk=schedule_get(name).pk)
        current = ScheduleSpec(**{f.name: getattr(schedule, f.name) for f in fields(ScheduleSpec)})
        unknown = set(changes) - {f.name for f in fields(ScheduleSpec)}
        if unknown:
            raise InvalidJobRequest(sorted(unknown)[0], _("Not a schedule setting"))
        spec = schedule_spec_validate(replace(current, **changes), confine_paths=confine_paths)
        if spec.name != schedule.name and SyncSchedule.objects.filter(name=spec.name).exists():
            raise InvalidJobRequest("name", _("A schedule named %(name)s exists") % {"name": spec.name})
        for f in fields(spec):
            setattr(schedule, f.name, getattr(spec, f.name))
        if spec.cron != current.cron or (current.paused and not spec.paused):
            schedule.next_run_at = cron_next(spec.cron, now or timezone.now())
        schedule.save()
    log_event(logger, "schedule_updated", schedule=schedule.name, changed=",".join(sorted(changes)))
    return schedule


def sync_schedule_pause(name: str) -> SyncSchedule:
    """Stop starting runs (a run already started goes on)."""
    return _schedule_set_paused(name, paused=True, now=timezone.now())


def sync_schedule_resume(name: str, *, now: dt.datetime | None = None) -> SyncSchedule:
    """Start runs again from the cron's next time after `now` (ticks missed while paused are not run)."""
    return _schedule_set_paused(name, paused=False, now=now or timezone.now())


def _schedule_set_paused(name: str, *, paused: bool, now: dt.datetime) -> SyncSchedule:
    """Pause or resume without checking the source again (its token may live only on the cluster)."""
    with transaction.atomic():
        schedule = SyncSchedule.objects.select_for_update().get(pk=schedule_get(name).pk)
        if schedule.paused and not paused:
            schedule.next_run_at = cron_next(schedule.cron, now)
        schedule.paused = paused
        schedule.save(update_fields=["paused", "next_run_at", "updated_at"])
    log_event(logger, "schedule_paused" if paused else "schedule_resumed", schedule=schedule.name)
    return schedule


def sync_schedule_delete(name: str) -> None:
    """Remove a schedule; the jobs it started stay (their `schedule` becomes empty)."""
    schedule = schedule_get(name)
    schedule.delete()
    log_event(logger, "schedule_deleted", schedule=name)


def sync_schedule_run_now(name: str, *, now: dt.datetime | None = None) -> ScheduleRun:
    """Start the schedule's run now, by the same rules as a tick; its next run time stays."""
    now = now or timezone.now()
    with transaction.atomic():
        schedule = SyncSchedule.objects.select_for_update().filter(pk=schedule_get(name).pk).get()
        run = _schedule_start(schedule, now)
    return run


def sync_schedules_tick(now: dt.datetime | None = None) -> list[ScheduleRun]:
    """Start every schedule that is due at `now`, each once however many of its ticks were missed."""
    now = now or timezone.now()
    runs: list[ScheduleRun] = []
    for schedule_id in list(SyncSchedule.objects.due(now).values_list("pk", flat=True)):
        with transaction.atomic():
            due = SyncSchedule.objects.due(now).filter(pk=schedule_id)
            schedule = due.select_for_update(skip_locked=True).first()
            if schedule is None:  # another tick holds or has just run it
                continue
            schedule.next_run_at = cron_next(schedule.cron, now)
            runs.append(_schedule_start(schedule, now))
    return runs


def _schedule_start(schedule: SyncSchedule, now: dt.datetime) -> ScheduleRun:
    """Start a `latest` run of the locked schedule, or record why not; saves the schedule."""
    job: SyncJob | None = None
    previous = schedule.jobs.exclude(status__in=FINISHED_STATUSES).order_by("-created_at").first()
    if previous is not None:
        outcome = ScheduleOutcome.SKIPPED
        message = _("Skipped: the previous run %(job)s is still %(status)s") % {
            "job": previous.task_id,
            "status": SyncJobStatus(previous.status).label,
        }
    else:
        try:
            request = sync_request_build(
                latest=True,
                source=schedule.source,
                source_options=schedule.source_options,
                lookback_days=schedule.lookback_days,
                parallelism=schedule.parallelism,
                priority=schedule.priority,
                queue=True,
                requested_by=f"schedule:{schedule.name}"[:150],
                confine_paths=False,  # confined when the schedule was saved
                now=now,
                schedule_id=schedule.pk,
            )
            job = sync_job_create(request)
        except SyncUpToDate as done:
            outcome, message = ScheduleOutcome.UP_TO_DATE, done.message
        except BatchSyncError as error:
            outcome, message = ScheduleOutcome.ERROR, error.message
        else:
            queued = job.status == SyncJobStatus.QUEUED
            outcome = ScheduleOutcome.QUEUED if queued else ScheduleOutcome.STARTED
            message = _("Started job %(job)s: %(start)s to %(end)s") % {
                "job": job.task_id,
                "start": job.start_date.isoformat(),
                "end": job.end_date.isoformat(),
            }
            schedule.last_job = job
    schedule.last_run_at, schedule.last_outcome, schedule.last_message = now, outcome, message
    schedule.save(update_fields=["next_run_at", "last_run_at", "last_outcome", "last_message", "last_job"])
    log_event(
        logger,
        "schedule_run",
        schedule=schedule.name,
        outcome=outcome,
        job=job.task_id if job else "",
        next_run=schedule.next_run_at.isoformat() if schedule.next_run_at else "",
    )
    return ScheduleRun(schedule=schedule, outcome=outcome, job=job, message=message)
