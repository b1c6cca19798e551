"""Reads: the shapes the command, the API and the pages show. Nothing here writes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from typing import Any

from django.db.models import Case, Count, OuterRef, Prefetch, Q, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from batchsync import finding_selectors, sessions
from batchsync.conf import get_settings
from batchsync.event_models import SyncJobEvent
from batchsync.exceptions import JobNotFound
from batchsync.models import (
    ACTIVE_STATUSES,
    WORKING_STATUSES,
    LoadedDay,
    SkipReason,
    SyncDay,
    SyncDayStatus,
    SyncError,
    SyncJob,
    SyncJobStatus,
)
from batchsync.queue_selectors import queue_fields, sync_job_queue_place, with_queue_place


def _iso(value: dt.datetime | None) -> str | None:
    return timezone.localtime(value).isoformat() if value else None


def sync_job_recent_errors(job: SyncJob, limit: int | None = None) -> list[SyncError]:
    """The job's most recent errors, newest first (the seed shows 10)."""
    return list(sync_error_list(job)[: limit or get_settings().recent_errors])


def sync_job_progress(job: SyncJob, errors: list[SyncError] | None = None) -> dict[str, Any]:
    """The seed's progress object (every field of its example), plus batchsync's own fields."""
    if errors is None:
        errors = sync_job_recent_errors(job)
    return {
        "task_id": job.task_id,
        "status": job.status,
        "total": job.total_days,
        "current": job.processed_days,
        "success": job.success_days,
        "failed": job.failed_days,
        "skipped": job.skipped_days,
        "skipped_other_source": sync_job_other_source_days(job),
        "current_date": job.current_date.isoformat() if job.current_date else None,
        "message": job.message,
        "progress_percent": job.progress_percent,
        "days_to_load": job.days_to_load,
        "days_loaded": job.days_loaded,
        "load_percent": job.load_percent,
        "load_summary": sync_job_load_summary(job),
        "start_time": _iso(job.started_at),
        "end_time": _iso(job.finished_at),
        "duration_seconds": job.duration_seconds,
        "estimated_completion": _iso(job.estimated_completion),
        "errors": [
            {"date": e.date.isoformat() if e.date else None, "error": e.error, "time": _iso(e.created_at)}
            for e in errors
        ],
        "start_date": job.start_date.isoformat(),
        "end_date": job.end_date.isoformat(),
        "source": job.source,
        "kind": job.kind,
        "verify_mode": job.verify_mode,
        "rows_loaded": job.rows_loaded,
        "parallelism": job.parallelism,
        "priority": job.priority,
        "reprocess": job.reprocess,
        "requested_by": job.requested_by,
        "created_time": _iso(job.created_at),
        "retry_of": job.retry_of.task_id if job.retry_of_id and job.retry_of else None,
        "lock_waits": [wait.as_dict() for wait in sync_job_lock_waits(job)],
        **queue_fields(sync_job_queue_place(job)),
    }


def sync_job_load_summary(job: SyncJob) -> str:
    """The progress headline: `loaded 11 of 4,681 to load · 2,621 skipped`, translated.

    Days to load leave the skipped ones out (non-trading, already loaded): they are shown apart.
    """
    text = _("loaded %(loaded)s of %(to_load)s to load") % {
        "loaded": f"{job.days_loaded:,}",
        "to_load": f"{job.days_to_load:,}",
    }
    if job.failed_days:
        text += " · " + _("%(failed)s failed") % {"failed": f"{job.failed_days:,}"}
    if job.skipped_days:
        text += " · " + _("%(skipped)s skipped") % {"skipped": f"{job.skipped_days:,}"}
    return text


def sync_job_events(job: SyncJob) -> QuerySet[SyncJobEvent]:
    """The job's timeline, oldest first."""
    return SyncJobEvent.objects.timeline(job.pk)


def sync_job_event_text(event: SyncJobEvent) -> str:
    """An event's facts as the pages, the API and the command show them, translated."""
    facts = event.detail
    parts: list[str] = []
    status = facts.get("status")
    if status:
        label = SyncJobStatus(status).label if status in SyncJobStatus.values else status
        parts.append(_("now %(status)s") % {"status": label})
    if "to_load" in facts and "loaded" in facts:
        parts.append(
            _("%(loaded)s of %(to_load)s days loaded")
            % {"loaded": f"{facts['loaded']:,}", "to_load": f"{facts['to_load']:,}"}
        )
    elif "to_load" in facts:
        parts.append(_("%(to_load)s days to load") % {"to_load": f"{facts['to_load']:,}"})
    if facts.get("failed"):
        parts.append(_("%(failed)s failed") % {"failed": f"{facts['failed']:,}"})
    if facts.get("new_job"):
        parts.append(_("new job %(task_id)s") % {"task_id": facts["new_job"]})
    if facts.get("retry_of"):
        parts.append(_("retry of %(task_id)s") % {"task_id": facts["retry_of"]})
    if facts.get("days_released"):
        parts.append(_("%(days)s days given back") % {"days": facts["days_released"]})
    if facts.get("unclaimed"):
        parts.append(_("no worker had picked it up"))
    if facts.get("previous_worker"):
        parts.append(_("previous worker %(worker)s") % {"worker": facts["previous_worker"]})
    return "; ".join(parts)


def sync_job_lock_waits(job: SyncJob) -> list[sessions.LockWait]:
    """The job's days waiting on another session's lock (only a working job has any)."""
    return sessions.sync_job_lock_waits(job.pk) if job.status in WORKING_STATUSES else []


def sync_job_detail(task_id: str) -> SyncJob:
    """The job with this task id (or numeric id), with what its progress shows, or `JobNotFound`."""
    lookup = Q(task_id=task_id)
    if task_id.isascii() and task_id.isdigit() and len(task_id) < 19:  # fits a bigint
        lookup |= Q(pk=int(task_id))
    job = (
        with_queue_place(_with_other_source_days(SyncJob.objects.select_related("retry_of")))
        .filter(lookup)
        .first()
    )
    if job is None:
        raise JobNotFound(_("No sync job with id %(id)s") % {"id": task_id})
    return job


def sync_job_list(
    *, status: str | None = None, source: str | None = None, date: dt.date | None = None
) -> QuerySet[SyncJob]:
    """Jobs newest first, filtered; each carries `recent_errors` (prefetched, one query per page)."""
    jobs = with_queue_place(_with_other_source_days(SyncJob.objects.select_related("retry_of")))
    jobs = jobs.order_by("-created_at", "-id")
    if status:
        jobs = jobs.filter(status=status)
    if source:
        jobs = jobs.filter(source=source)
    if date:
        jobs = jobs.filter(start_date__lte=date, end_date__gte=date)
    recent = SyncError.objects.order_by("-created_at", "-id")[: get_settings().recent_errors]
    return jobs.prefetch_related(Prefetch("errors", queryset=recent, to_attr="recent_errors"))


def sync_day_list(job: SyncJob, *, status: str | None = None) -> QuerySet[SyncDay]:
    """The job's days in date order (optionally only those in `status`), with their provenance.

    `loaded_source`, `loaded_rows`, `loaded_checksum`, `loaded_by_job`, `loaded_at`: what
    `daily_bar` holds for the day now (None when nothing is recorded), whichever job loaded it.
    """
    loaded = LoadedDay.objects.filter(trade_date=OuterRef("date"))
    days = (
        SyncDay.objects.filter(job=job)
        .order_by("date")
        .annotate(
            loaded_source=Subquery(loaded.values("source")[:1]),
            loaded_rows=Subquery(loaded.values("rows")[:1]),
            loaded_checksum=Subquery(loaded.values("checksum")[:1]),
            loaded_by_job=Subquery(loaded.values("job__task_id")[:1]),
            loaded_at=Subquery(loaded.values("loaded_at")[:1]),
        )
    )
    found = finding_selectors.sync_days_with_findings(days)  # `findings`, `finding_checks`
    return found.filter(status=status) if status else found


def sync_job_other_source_days(job: SyncJob) -> int:
    """Days of the job skipped because another source loaded them (force replaces them)."""
    annotated = getattr(job, "other_source_days", None)
    if annotated is not None:
        return int(annotated)
    return SyncDay.objects.filter(job=job, skip_reason=SkipReason.LOADED_OTHER_SOURCE).count()


def _with_other_source_days(jobs: QuerySet[SyncJob]) -> QuerySet[SyncJob]:
    """`jobs`, each with `other_source_days` (in the same query, not one more per job)."""
    days = (
        SyncDay.objects.filter(job=OuterRef("pk"), skip_reason=SkipReason.LOADED_OTHER_SOURCE)
        .order_by()
        .values("job")
        .annotate(n=Count("id"))
        .values("n")
    )
    return jobs.annotate(other_source_days=Coalesce(Subquery(days), 0))


def loaded_day_source_counts(start_date: dt.date, end_date: dt.date) -> dict[str, int]:
    """How many days of the range `daily_bar` holds from each source (by recorded provenance)."""
    days = LoadedDay.objects.filter(trade_date__range=(start_date, end_date))
    return dict(days.order_by("source").values_list("source").annotate(n=Count("id")))


def sync_error_list(job: SyncJob) -> QuerySet[SyncError]:
    """All of the job's errors, newest first."""
    return SyncError.objects.filter(job=job).order_by("-created_at", "-id")


def sync_job_calendar_days_query(job: SyncJob) -> QuerySet[SyncDay]:
    """The job's days in date order, only the fields a calendar cell shows."""
    return (
        SyncDay.objects.filter(job=job)
        .order_by("date")
        .only(
            "date",
            "status",
            "skip_reason",
            "rows",
            "duration_seconds",
            "attempts",
            "last_error",
            "started_at",
            "finished_at",
        )
    )


def sync_job_day_rows(job: SyncJob, *, years: Collection[int] = ()) -> list[tuple[dt.date, str, str]]:
    """(date, status, skip reason) of the job's days in date order (only `years` when given)."""
    days = SyncDay.objects.filter(job=job)
    if years:
        days = days.filter(date__year__in=list(years))
    return list(days.order_by("date").values_list("date", "status", "skip_reason"))


def sync_job_month_days(job: SyncJob, year: int, month: int) -> list[SyncDay]:
    """The job's days of one month, with the fields a full calendar cell shows."""
    return list(sync_job_calendar_days_query(job).filter(date__year=year, date__month=month))


def sync_job_days_changed_since(job: SyncJob, since: dt.datetime) -> set[dt.date]:
    """Days that started or finished since `since`, and those running now."""
    changed = SyncDay.objects.filter(job=job).filter(
        Q(status=SyncDayStatus.RUNNING) | Q(started_at__gte=since) | Q(finished_at__gte=since)
    )
    return set(changed.values_list("date", flat=True))


def sync_job_state_counts(job: SyncJob) -> list[tuple[str, str, int]]:
    """(status, skip reason, how many days) of the job, one row per pair."""
    rows = (
        SyncDay.objects.filter(job=job)
        .order_by()
        .values_list("status", "skip_reason")
        .annotate(n=Count("id"))
    )
    return [(status, reason, n) for status, reason, n in rows]


def sync_day_errors(job: SyncJob, date: dt.date) -> QuerySet[SyncError]:
    """The errors of one day of the job, newest first."""
    return sync_error_list(job).filter(date=date)


def sync_job_day(job: SyncJob, date: dt.date) -> SyncDay | None:
    """One day of the job, or None when the job does not hold it."""
    return SyncDay.objects.filter(job=job, date=date).first()


def sync_job_current() -> SyncJob | None:
    """The job a progress page follows: the one working, else the active one, else the newest."""
    rank = Case(
        When(status__in=WORKING_STATUSES, then=Value(0)),
        When(status__in=ACTIVE_STATUSES, then=Value(1)),
        default=Value(2),
    )
    return SyncJob.objects.select_related("retry_of").order_by(rank, "-created_at", "-id").first()


def sync_job_list_recent(limit: int = 20) -> list[SyncJob]:
    """The newest jobs, newest first."""
    return list(SyncJob.objects.order_by("-created_at", "-id")[:limit])


def sync_job_day_counts(job: SyncJob) -> dict[str, int]:
    """How many of the job's days are in each state (states with none left out), in lifecycle order."""
    counts = dict(SyncDay.objects.filter(job=job).values_list("status").annotate(n=Count("id")))
    return {status: counts[status] for status in SyncDayStatus.values if counts.get(status)}


def sync_job_slot_holder(job: SyncJob, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """What a refused start says about the job holding the slot (the API's 409 `running_job`).

    A worker renews the job's lease every third of a lease, so it was last seen about a lease
    before the lease's end. `takeover_in_seconds`: when a rerun of the job's own command (or
    `resume`) can take a pending or running job over (0: now), None for other statuses.
    """
    now = now or timezone.now()
    lease = get_settings().lease_seconds
    expires = job.lease_expires_at
    seen = expires - dt.timedelta(seconds=lease) if expires is not None and job.worker_id else None
    takeover: float | None = None
    if job.status in (SyncJobStatus.PENDING, SyncJobStatus.RUNNING):
        takeover = max(0.0, round((expires - now).total_seconds(), 1)) if expires is not None else 0.0
    return {
        "task_id": job.task_id,
        "status": job.status,
        "start_date": job.start_date.isoformat(),
        "end_date": job.end_date.isoformat(),
        "source": job.source,
        "processed_days": job.processed_days,
        "total_days": job.total_days,
        "progress_percent": job.progress_percent,
        "worker_id": job.worker_id or None,
        "worker_last_seen": _iso(seen),
        "worker_last_seen_seconds_ago": round(max(0.0, (now - seen).total_seconds()), 1) if seen else None,
        "lease_expires_at": _iso(expires),
        "takeover_in_seconds": takeover,
        "ways_on": [
            f"python manage.py batch_sync resume {job.task_id}",
            "queue: true (API), --queue (command)",
            "python manage.py qcluster",
        ],
    }


def sync_job_slot_holder_message(facts: dict[str, Any]) -> str:
    """The refused start's one line: the blocking job, its progress, its worker, the ways on."""
    if facts["worker_last_seen_seconds_ago"] is None:
        seen = _("no worker has joined it yet")
    else:
        seen = _("its worker %(worker)s was last seen %(seconds)ss ago") % {
            "worker": facts["worker_id"],
            "seconds": f"{facts['worker_last_seen_seconds_ago']:.0f}",
        }
    takeover = facts["takeover_in_seconds"]
    if takeover is None:
        here = ""
    elif takeover > 0:
        here = _("in %(seconds)ss its lease runs out and a rerun of its command takes it over here; ") % {
            "seconds": f"{takeover:.0f}"
        }
    else:
        here = _("its lease has run out: a rerun of its command takes it over here; ")
    return _(
        "A sync job is already running: %(task_id)s is %(status)s (%(processed)s/%(total)s days, "
        "%(percent)s%%), %(seen)s. Ways on: %(here)spython manage.py batch_sync resume %(task_id)s; "
        "--queue to run after it; python manage.py qcluster to let a cluster continue it"
    ) % {
        "task_id": facts["task_id"],
        "status": facts["status"],
        "processed": facts["processed_days"],
        "total": facts["total_days"],
        "percent": f"{facts['progress_percent']:.1f}",
        "seen": seen,
        "here": here,
    }
