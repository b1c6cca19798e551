"""What a job request means: its validation, and the plan deciding which days load."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from batchsync import bounds, calendars, sources
from batchsync.conf import get_settings
from batchsync.exceptions import InvalidJobRequest
from batchsync.models import Reprocess, SkipReason, SyncDay, SyncDayStatus


@dataclass(frozen=True)
class DayPlan:
    date: dt.date
    status: str
    skip_reason: str

    @property
    def loads(self) -> bool:
        """Whether the day would load (else it is skipped, for `skip_reason`)."""
        return self.status == SyncDayStatus.PENDING


@dataclass(frozen=True)
class JobRequest:
    """A validated request for a new job (the API's and the command's input, after parsing)."""

    start_date: dt.date
    end_date: dt.date
    source: str
    source_options: dict[str, Any]
    reprocess: str = Reprocess.FAILED
    parallelism: int | None = None  # None: BATCHSYNC DEFAULT_PARALLELISM (see conf.cpu_parallelism)
    priority: int = 0
    queue: bool = False
    requested_by: str = ""


def sync_request_validate(request: JobRequest, *, today: dt.date | None = None) -> None:
    """Raise `InvalidJobRequest` naming the field when the request cannot run."""
    bounds.date_range_check(
        request.start_date,
        request.end_date,
        today=today or timezone.localdate(),
        max_days=get_settings().max_range_days,
    )
    if request.reprocess not in Reprocess.values:
        raise InvalidJobRequest("reprocess", _("reprocess must be one of: failed, all, none"))
    if request.parallelism is not None:
        bounds.PARALLELISM.check(request.parallelism)
    bounds.PRIORITY.check(request.priority)
    sources.source_validate(request.source, request.source_options)


def sync_days_plan(
    start_date: dt.date, end_date: dt.date, reprocess: str, *, calendar: str | None = None
) -> list[DayPlan]:
    """Decide for each day of the range: load it, or skip it and why. Reads only."""
    calendar = calendar or get_settings().calendar
    sessions = calendars.trading_days(calendar, start_date, end_date)
    history = (
        SyncDay.objects.filter(
            date__range=(start_date, end_date),
            status__in=[SyncDayStatus.SUCCEEDED, SyncDayStatus.FAILED],
        )
        .values("date")
        .annotate(loaded=Count("id", filter=Q(status=SyncDayStatus.SUCCEEDED)))
    )
    loaded = {row["date"] for row in history if row["loaded"]}
    attempted = {row["date"] for row in history}
    plan: list[DayPlan] = []
    day = start_date
    while day <= end_date:
        if day not in sessions:
            plan.append(DayPlan(day, SyncDayStatus.SKIPPED, SkipReason.NON_TRADING))
        elif reprocess == Reprocess.FAILED and day in loaded:
            plan.append(DayPlan(day, SyncDayStatus.SKIPPED, SkipReason.ALREADY_LOADED))
        elif reprocess == Reprocess.NONE and day in attempted:
            reason = SkipReason.ALREADY_LOADED if day in loaded else SkipReason.PREVIOUSLY_FAILED
            plan.append(DayPlan(day, SyncDayStatus.SKIPPED, reason))
        else:
            plan.append(DayPlan(day, SyncDayStatus.PENDING, SkipReason.NONE))
        day += dt.timedelta(days=1)
    return plan


@dataclass(frozen=True)
class PlanSummary:
    """A plan's counts and the dry run's one-line message (command, API and admin show these)."""

    days: int
    to_load: int
    skipped: int
    message: str


def sync_days_plan_summary(plan: list[DayPlan]) -> PlanSummary:
    """How many days of the plan would load or be skipped, and the dry run's message."""
    to_load = sum(1 for day in plan if day.loads)
    skipped = len(plan) - to_load
    message = _("Dry run: %(days)s days, %(load)s to load, %(skipped)s skipped; nothing was created") % {
        "days": len(plan),
        "load": to_load,
        "skipped": skipped,
    }
    return PlanSummary(days=len(plan), to_load=to_load, skipped=skipped, message=message)
