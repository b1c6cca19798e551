"""What a job request means: its validation, and the plan deciding which days load."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from batchsync import bounds, calendars, sources
from batchsync.conf import get_settings
from batchsync.exceptions import InvalidJobRequest, SyncUpToDate
from batchsync.models import LoadedDay, Reprocess, SkipReason, SyncDay, SyncDayStatus, SyncJobKind, VerifyMode
from batchsync.services.latest import exchange_timezone, latest_range, newest_loaded_trading_day
from batchsync.sources.roots import source_options_confined


@dataclass(frozen=True)
class DayPlan:
    date: dt.date
    status: str
    skip_reason: str
    loaded_from: str = ""  # the source whose rows the day holds (when loaded)

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
    # An explicit day list (a re-run of chosen days): the job holds only these days of its range.
    days: tuple[dt.date, ...] = ()
    kind: str = SyncJobKind.SYNC  # a verify job compares loaded days instead (services.verify)
    verify_mode: str = VerifyMode.NONE
    schedule_id: int | None = None  # the schedule whose tick asks for the job


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
    if request.kind == SyncJobKind.VERIFY:  # its days name their own sources
        return
    sources.source_validate(request.source, request.source_options)
    outside = [day for day in request.days if not request.start_date <= day <= request.end_date]
    if outside:
        raise InvalidJobRequest(
            "days",
            _("%(day)s is outside the range %(start)s..%(end)s")
            % {"day": outside[0], "start": request.start_date, "end": request.end_date},
        )


def sync_days_parse(text: str) -> tuple[dt.date, ...]:
    """`2025-10-09,2025-10-13..2025-10-17` (days and inclusive ranges) as sorted distinct days."""
    days: set[dt.date] = set()
    for part in (piece.strip() for piece in text.split(",")):
        if not part:
            continue
        first, _sep, last = part.partition("..")
        try:
            start = dt.date.fromisoformat(first.strip())
            end = dt.date.fromisoformat(last.strip()) if last else start
        except ValueError:
            raise InvalidJobRequest(
                "days",
                _("%(part)s is not a day YYYY-MM-DD or a range YYYY-MM-DD..YYYY-MM-DD") % {"part": part[:40]},
            ) from None
        if end < start or (end - start).days >= get_settings().max_range_days:
            raise InvalidJobRequest("days", _("%(part)s is not a valid range of days") % {"part": part[:40]})
        days.update(start + dt.timedelta(days=n) for n in range((end - start).days + 1))
    if not days:
        raise InvalidJobRequest("days", _("Choose at least one day"))
    return tuple(sorted(days))


def sync_days_format(days: Sequence[dt.date]) -> str:
    """Days as `sync_days_parse` reads them, runs of consecutive days written as ranges."""
    parts: list[str] = []
    ordered = sorted(set(days))
    index = 0
    while index < len(ordered):
        end = index
        while end + 1 < len(ordered) and ordered[end + 1] - ordered[end] == dt.timedelta(days=1):
            end += 1
        first, last = ordered[index], ordered[end]
        parts.append(first.isoformat() if first == last else f"{first.isoformat()}..{last.isoformat()}")
        index = end + 1
    return ",".join(parts)


# Names a source option may have (a source's own keyword arguments): never `self`, never odd.
OPTION_NAME = re.compile(r"^[a-z][a-z0-9_]{0,49}$")


def sync_request_build(
    *,
    start_date: dt.date | None = None,
    end_date: dt.date | None = None,
    latest: bool = False,
    lookback_days: int | None = None,
    now: dt.datetime | None = None,
    source: str | None = None,
    source_options: Mapping[str, Any] | None = None,
    path: str | None = None,
    force: bool = False,
    reprocess: str | None = None,
    parallelism: int | None = None,
    priority: int = 0,
    queue: bool = False,
    requested_by: str = "",
    confine_paths: bool = True,
    schedule_id: int | None = None,
) -> JobRequest:
    """Turn the parsed inputs of the command, the API or the admin into a validated `JobRequest`.

    The one place for the request rules: force and reprocess, the `path` shortcut, option names,
    and (through `sync_request_validate`) every bound. `confine_paths` keeps server paths under
    BATCHSYNC_FILE_ROOTS (the API and the admin); the command line, run by a local operator,
    passes False. `latest` computes the range instead (`services.latest.latest_range` at `now`,
    default the current time) and raises `SyncUpToDate` when there is nothing to load. Raises
    `InvalidJobRequest` naming the field.
    """
    if force and reprocess not in (None, Reprocess.ALL):
        raise InvalidJobRequest(
            "force", _("force means reprocess=all; do not combine it with another reprocess")
        )
    source = source or get_settings().default_source
    options = source_options_build(source, source_options, path=path, confine_paths=confine_paths)
    if latest:
        start_date, end_date, force = latest_dates(source, start_date, end_date, lookback_days, now, force)
        reprocess = Reprocess.ALL if force else reprocess
    if start_date is None or end_date is None:
        raise InvalidJobRequest(
            "start_date" if start_date is None else "end_date", _("required, a date in YYYY-MM-DD form")
        )
    request = JobRequest(
        start_date=start_date,
        end_date=end_date,
        source=source,
        source_options=options,
        reprocess=reprocess or (Reprocess.ALL if force else Reprocess.FAILED),
        parallelism=parallelism,
        priority=priority,
        queue=queue,
        requested_by=requested_by,
        schedule_id=schedule_id,
    )
    sync_request_validate(request)
    return request


def source_options_build(
    source: str, source_options: Mapping[str, Any] | None, *, path: str | None, confine_paths: bool
) -> dict[str, Any]:
    """A request's source options: names checked, the `path` shortcut merged, paths confined."""
    options = dict(source_options or {})
    for name in options:
        if not OPTION_NAME.match(name) or name == "self":
            raise InvalidJobRequest(
                "source_options",
                _("Invalid option name %(name)s: use lower-case letters, digits and _") % {"name": name[:60]},
            )
    if path:
        if options.get("path", path) != path:
            raise InvalidJobRequest("path", _("path and source_options.path differ; send one of them"))
        options["path"] = path
    return source_options_confined(source, options) if confine_paths else options


def latest_dates(
    source: str,
    start_date: dt.date | None,
    end_date: dt.date | None,
    lookback_days: int | None,
    now: dt.datetime | None,
    force: bool,
) -> tuple[dt.date, dt.date, bool]:
    """The `latest` request's start, end and force; `SyncUpToDate` when nothing is to load."""
    if start_date is not None or end_date is not None:
        raise InvalidJobRequest("latest", _("latest computes the dates: do not give start or end dates"))
    if lookback_days is not None:
        bounds.LOOKBACK_DAYS.check(lookback_days)
    now = now or timezone.now()
    found = latest_range(source, now, lookback_days)
    if found is None:
        newest = newest_loaded_trading_day(source)
        raise SyncUpToDate(
            _("Up to date: %(source)s has loaded %(day)s, the latest trading day published by %(now)s")
            % {
                "source": source,
                "day": newest.isoformat() if newest else "-",
                "now": now.astimezone(exchange_timezone()).strftime("%Y-%m-%d %H:%M %Z"),
            }
        )
    return found.start_date, found.end_date, force or found.force


def sync_days_plan(
    start_date: dt.date,
    end_date: dt.date,
    reprocess: str,
    *,
    source: str | None = None,
    calendar: str | None = None,
) -> list[DayPlan]:
    """Decide for each day of the range: load it, or skip it and why. Reads only.

    "Already loaded" means loaded from `source`: a day another source loaded is skipped as
    `loaded_other_source`, loaded again only with force (reprocess=all). No `source`: any.
    """
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
    attempted = {row["date"] for row in history}
    loaded_from = loaded_day_sources(start_date, end_date)
    plan: list[DayPlan] = []
    day = start_date
    while day <= end_date:
        origin = loaded_from.get(day, "")
        other = bool(origin) and source is not None and origin != source
        if day not in sessions:
            plan.append(DayPlan(day, SyncDayStatus.SKIPPED, SkipReason.NON_TRADING, origin))
        elif reprocess != Reprocess.ALL and other:
            plan.append(DayPlan(day, SyncDayStatus.SKIPPED, SkipReason.LOADED_OTHER_SOURCE, origin))
        elif reprocess == Reprocess.FAILED and origin:
            plan.append(DayPlan(day, SyncDayStatus.SKIPPED, SkipReason.ALREADY_LOADED, origin))
        elif reprocess == Reprocess.NONE and day in attempted:
            reason = SkipReason.ALREADY_LOADED if origin else SkipReason.PREVIOUSLY_FAILED
            plan.append(DayPlan(day, SyncDayStatus.SKIPPED, reason, origin))
        else:
            plan.append(DayPlan(day, SyncDayStatus.PENDING, SkipReason.NONE, origin))
        day += dt.timedelta(days=1)
    return plan


def loaded_day_sources(start_date: dt.date, end_date: dt.date) -> dict[dt.date, str]:
    """The source whose rows each loaded day of the range holds.

    From `LoadedDay`; a day loaded before provenance was recorded (migration 0007) counts as
    loaded by the job that loaded it last.
    """
    legacy = (
        SyncDay.objects.filter(date__range=(start_date, end_date), status=SyncDayStatus.SUCCEEDED)
        .order_by("date", "finished_at")
        .values_list("date", "job__source")
    )
    sources = dict(legacy)
    recorded = LoadedDay.objects.filter(trade_date__range=(start_date, end_date))
    sources.update(recorded.values_list("trade_date", "source"))
    return sources


@dataclass(frozen=True)
class PlanSummary:
    """A plan's counts and the dry run's one-line message (command, API and admin show these)."""

    days: int
    to_load: int
    skipped: int
    other_source: int  # skipped because another source loaded them (force replaces them)
    message: str


def sync_days_plan_summary(plan: list[DayPlan]) -> PlanSummary:
    """How many days of the plan would load or be skipped, and the dry run's message."""
    to_load = sum(1 for day in plan if day.loads)
    skipped = len(plan) - to_load
    other_source = sum(1 for day in plan if day.skip_reason == SkipReason.LOADED_OTHER_SOURCE)
    message = _("Dry run: %(days)s days, %(load)s to load, %(skipped)s skipped; nothing was created") % {
        "days": len(plan),
        "load": to_load,
        "skipped": skipped,
    }
    if other_source:
        message += " " + other_source_note(other_source)
    return PlanSummary(
        days=len(plan), to_load=to_load, skipped=skipped, other_source=other_source, message=message
    )


def other_source_note(days: int) -> str:
    """The one sentence every view adds when days were skipped as loaded by another source."""
    return ngettext(
        "(%(days)s day loaded from another source was skipped; force replaces it)",
        "(%(days)s days loaded from another source were skipped; force replaces them)",
        days,
    ) % {"days": days}


def skip_reason_label(day: DayPlan) -> str:
    """How the plan shows why a day is skipped: `loaded from demo`, or the reason's own label."""
    if day.skip_reason == SkipReason.LOADED_OTHER_SOURCE:
        return _("loaded from %(source)s") % {"source": day.loaded_from}
    return str(day.skip_reason)
