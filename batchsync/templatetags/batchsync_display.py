"""Presentation helpers and template tags: durations, times, state labels, progress bar, calendar grid."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from batchsync import selectors, services
from batchsync.models import SkipReason, SyncDay, SyncDayStatus, SyncError, SyncJob, SyncJobEvent

register = template.Library()

# Calendar cell states: a day's status, with skipped days split by their reason.
DAY_STATE_LABELS: dict[str, Any] = {
    "succeeded": gettext_lazy("succeeded"),
    "failed": gettext_lazy("failed"),
    "skipped_non_trading": gettext_lazy("skipped: non-trading day"),
    "skipped_already_loaded": gettext_lazy("skipped: already loaded"),
    "skipped_loaded_other_source": gettext_lazy("skipped: loaded from another source"),
    "skipped_previously_failed": gettext_lazy("skipped: failed before"),
    "pending": gettext_lazy("pending"),
    "running": gettext_lazy("running"),
}
# One letter per state: the day grid's strip cells carry it as their class (admin/day_grid.py).
DAY_STATE_CODES: dict[str, str] = {
    "succeeded": "S",
    "failed": "F",
    "skipped_non_trading": "N",
    "skipped_already_loaded": "L",
    "skipped_loaded_other_source": "O",
    "skipped_previously_failed": "X",
    "pending": "P",
    "running": "R",
}
ERROR_TOOLTIP_CHARS = 300
# Longer error messages fold: the first ERROR_FOLD_CHARS show, the full text one click away.
ERROR_FOLD_CHARS = 300


def day_state(status: str, skip_reason: str) -> str:
    """The calendar state of a day: its status, or `skipped_<reason>`."""
    if status == SyncDayStatus.SKIPPED:
        return f"skipped_{skip_reason or SkipReason.NON_TRADING}"
    return str(status)


# The units of a duration, translated (2分22秒); the live job page fills in the same formats.
DURATION_FORMATS: dict[str, Any] = {
    "seconds": gettext_lazy("%(seconds)ss"),
    "minutes": gettext_lazy("%(minutes)sm %(seconds)ss"),
    "hours": gettext_lazy("%(hours)sh %(minutes)sm %(seconds)ss"),
}


def format_duration(seconds: float | None) -> str:
    """Seconds as `1h 02m 03s` / `2m 03s` / `3.2s` (`2分03秒` in Chinese); empty when unknown."""
    if seconds is None:
        return ""
    if seconds < 60:
        return str(DURATION_FORMATS["seconds"]) % {"seconds": f"{seconds:.1f}"}
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return str(DURATION_FORMATS["hours"]) % {
            "hours": hours,
            "minutes": f"{minutes:02d}",
            "seconds": f"{secs:02d}",
        }
    return str(DURATION_FORMATS["minutes"]) % {"minutes": minutes, "seconds": f"{secs:02d}"}


def format_local(value: dt.datetime | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    return timezone.localtime(value).strftime(fmt) if value else ""


def status_badge(status: str, label: str, *, element_id: str = "", field: str = "") -> SafeString:
    """A job's status as a coloured badge; `element_id`/`field` let the live pages find it."""
    return format_html(
        '<span{}{} class="bs-status bs-status--{}">{}</span>',
        _attribute("id", element_id),
        _attribute("data-field", field),
        status,
        label,
    )


def progress_bar(
    percent: float,
    status: str,
    *,
    large: bool = False,
    element_id: str = "",
    label_field: str = "",
    title: str = "",
) -> SafeString:
    """A progress bar coloured by the job's status; `element_id`/`label_field` for the live pages."""
    return format_html(
        '<div{}{} class="bs-progress{}" role="progressbar" aria-valuenow="{}" aria-valuemin="0" '
        'aria-valuemax="100"><div class="bs-progress__bar bs-progress__bar--{}" style="width: {}%">'
        '</div><span class="bs-progress__label"{}>{}%</span></div>',
        _attribute("id", element_id),
        _attribute("title", title),
        " bs-progress--large" if large else "",
        f"{percent:g}",  # 100, 35.9: as a script's Number would write it
        status,
        f"{percent:.1f}",
        _attribute("data-field", label_field),
        f"{percent:.1f}",
    )


def _attribute(name: str, value: str) -> SafeString | str:
    return format_html(' {}="{}"', name, value) if value else ""


def day_tooltip(day: SyncDay, warnings: str = "") -> str:
    """What a calendar cell shows on hover: date, state, rows, duration, attempts, error, warnings."""
    parts = [day.date.isoformat(), str(DAY_STATE_LABELS[day_state(day.status, day.skip_reason)])]
    if day.status in (SyncDayStatus.SUCCEEDED, SyncDayStatus.FAILED, SyncDayStatus.RUNNING) or day.attempts:
        parts.append(_("rows: %(rows)s") % {"rows": day.rows})
        if day.duration_seconds is not None:
            parts.append(_("duration: %(duration)s") % {"duration": format_duration(day.duration_seconds)})
        parts.append(_("attempts: %(attempts)s") % {"attempts": day.attempts})
    if day.last_error:
        parts.append(_("error: %(error)s") % {"error": day.last_error[:ERROR_TOOLTIP_CHARS]})
    if warnings:
        parts.append(_("warnings: %(checks)s") % {"checks": warnings})
    return " · ".join(parts)


@dataclass(frozen=True)
class CalendarCell:
    """A day's cell: the start preview's calendar and the job page's opened month (admin/day_grid.py)."""

    date: dt.date
    state: str
    tooltip: str
    warnings: str = ""  # the data checks' warnings on the day, `check (rows), ...` (marks the cell)

    @property
    def warn(self) -> bool:
        return bool(self.warnings)


@dataclass(frozen=True)
class CalendarMonth:
    label: str
    cells: list[CalendarCell | None]  # index 0..30 = day of month 1..31; None outside the range


def _calendar_rows(cells: Iterable[CalendarCell]) -> list[CalendarMonth]:
    months: list[CalendarMonth] = []
    current: CalendarMonth | None = None
    for cell in cells:
        label = cell.date.strftime("%Y-%m")
        if current is None or current.label != label:
            current = CalendarMonth(label=label, cells=[None] * 31)
            months.append(current)
        current.cells[cell.date.day - 1] = cell
    return months


def plan_months(plan: Sequence[services.DayPlan]) -> list[CalendarMonth]:
    """A dry run's plan in the same grid: the days that would load (pending) or be skipped."""
    cells = []
    for day in plan:
        state = day_state(day.status, day.skip_reason)
        cells.append(
            CalendarCell(
                date=day.date, state=state, tooltip=f"{day.date.isoformat()} · {DAY_STATE_LABELS[state]}"
            )
        )
    return _calendar_rows(cells)


def state_legend(states: Iterable[str]) -> list[tuple[str, Any, int]]:
    """(state, label, how many days) for every calendar state, in a fixed order."""
    counts: dict[str, int] = dict.fromkeys(DAY_STATE_LABELS, 0)
    for state in states:
        counts[state] += 1
    return [(key, label, counts[key]) for key, label in DAY_STATE_LABELS.items()]


# --- template tags: the same helpers for the admin, the dashboard and the job page -----------


@register.filter(name="duration")
def duration_filter(seconds: float | None) -> str:
    """`{{ job.duration_seconds|duration }}`: see `format_duration`."""
    return format_duration(seconds)


@register.filter(name="local_time")
def local_time_filter(value: dt.datetime | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    """`{{ job.started_at|local_time }}`: the server's local time, empty when unknown."""
    return format_local(value, fmt)


@register.filter(name="error_location")
def error_location(error: SyncError) -> str:
    """`file:line` of an error, or empty when its message already names the file (no path twice)."""
    if not error.file or error.file in error.error:
        return ""
    return f"{error.file}:{error.line}" if error.line else error.file


@register.filter(name="load_summary")
def load_summary_filter(job: SyncJob) -> str:
    """`{{ job|load_summary }}`: `loaded 11 of 4,681 to load · 2,621 skipped` (see the selector)."""
    return selectors.sync_job_load_summary(job)


@register.filter(name="event_text")
def event_text_filter(event: SyncJobEvent) -> str:
    """`{{ event|event_text }}`: a timeline event's facts, translated (see the selector)."""
    return selectors.sync_job_event_text(event)


@register.simple_tag(name="job_status")
def job_status_tag(job: SyncJob, element_id: str = "", field: str = "") -> SafeString:
    """`{% job_status job %}`: the job's status badge."""
    return status_badge(job.status, job.get_status_display(), element_id=element_id, field=field)


@register.simple_tag(name="job_progress")
def job_progress_tag(
    percent: float, status: str, large: bool = False, element_id: str = "", label_field: str = ""
) -> SafeString:
    """`{% job_progress percent status large=True %}`: the progress bar."""
    return progress_bar(percent, status, large=large, element_id=element_id, label_field=label_field)


@register.simple_tag(name="job_load_progress")
def job_load_progress_tag(job: SyncJob) -> SafeString:
    """`{% job_load_progress job %}`: days loaded of days to load, a bar and its headline (lists)."""
    summary = selectors.sync_job_load_summary(job)
    return format_html(
        '{}<span class="bs-load__line">{}</span>',
        progress_bar(job.load_percent, job.status, title=summary),
        summary,
    )
