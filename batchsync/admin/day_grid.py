"""The job page's day grid: one heat strip per year (a cell per day), months opened on demand.

A 20-year job has 7,300 days: the strip cells are built here as plain strings (`<i></i>` a
loaded day, `<b></b>` a non-trading one, else one letter of `DAY_STATE_CODES` as the class; no
per-cell attributes), which keeps the page near 100 KB and its render fast; a cell's date is
its month's `data-m` plus its position.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from django.utils.safestring import SafeString, mark_safe

from batchsync.models import SyncDay, SyncDayStatus
from batchsync.templatetags.batchsync_display import DAY_STATE_CODES, CalendarCell, day_state, day_tooltip

# A (date, status, skip reason) row of the job's days: what the strips need of a day.
DayRow = tuple[dt.date, str, str]
FAILED_CODE = DAY_STATE_CODES[str(SyncDayStatus.FAILED)]
SHORT_CELLS = {DAY_STATE_CODES["succeeded"]: "<i></i>", DAY_STATE_CODES["skipped_non_trading"]: "<b></b>"}


@dataclass(frozen=True)
class YearRow:
    year: int
    strip: SafeString  # twelve month segments; a month of the job has one <i> per calendar day
    failed: int
    warned: int
    first: dt.date  # the job's first and last day in the year (selecting a whole year)
    last: dt.date


@dataclass
class MonthPanel:
    key: str
    cells: list[CalendarCell | None] = field(default_factory=list)  # Monday-first weeks, None: no day
    failed: int = 0

    @property
    def first(self) -> dt.date:
        return next(cell.date for cell in self.cells if cell is not None)

    @property
    def last(self) -> dt.date:
        return next(cell.date for cell in reversed(self.cells) if cell is not None)


def month_parse(key: str) -> tuple[int, int] | None:
    """`2025-10` as (2025, 10), None when it is not a month."""
    try:
        year, month = (int(part) for part in key.split("-"))
    except ValueError:
        return None
    return (year, month) if 1 <= year <= 9999 and 1 <= month <= 12 else None


def _strip_month(year: int, month: int, codes: dict[int, str], warn: Collection[int]) -> str:
    """One month's segment: a link opening the month, one <i> per calendar day (or empty)."""
    length = calendar.monthrange(year, month)[1]
    if not codes:
        return f'<span class="m v" style="flex:{length}"></span>'
    key = f"{year:04d}-{month:02d}"
    parts = [f'<a class=m data-m={key} href="?open={key}#bs-open-{year}" style="flex:{length}" title={key}>']
    for day in range(1, length + 1):
        code = codes.get(day, "V")  # V: not a day of the job
        if day in warn:
            parts.append(f'<i class="{code}" data-warn></i>')
        else:  # the two most common states in the fewest bytes: 7,300 of these make a 20-year page
            parts.append(SHORT_CELLS.get(code) or f"<i class={code}></i>")
    parts.append("</a>")
    return "".join(parts)


def year_rows(days: Iterable[DayRow], warn_days: Collection[dt.date] = ()) -> list[YearRow]:
    """The job's days as one row per year, twelve month segments each (for the heat strips)."""
    by_month: dict[tuple[int, int], dict[int, str]] = {}
    bounds: dict[int, tuple[dt.date, dt.date]] = {}
    for date, status, skip_reason in days:
        by_month.setdefault((date.year, date.month), {})[date.day] = DAY_STATE_CODES[
            day_state(status, skip_reason)
        ]
        first, last = bounds.get(date.year, (date, date))
        bounds[date.year] = (min(first, date), max(last, date))
    warned: dict[tuple[int, int], set[int]] = {}
    for day in warn_days:
        warned.setdefault((day.year, day.month), set()).add(day.day)
    rows = []
    for year in sorted(bounds):
        months = [by_month.get((year, month), {}) for month in range(1, 13)]
        strip = "".join(
            _strip_month(year, month, codes, warned.get((year, month), ()))
            for month, codes in enumerate(months, start=1)
        )
        failed = sum(1 for codes in months for code in codes.values() if code == FAILED_CODE)
        year_warned = sum(len(warned.get((year, month), ())) for month in range(1, 13))
        first, last = bounds[year]
        # Fixed letters, digits and dates only: no user text in the strip.
        rows.append(YearRow(year, mark_safe(strip), failed, year_warned, first, last))
    return rows


def month_panel(
    key: str, days: Sequence[SyncDay], warn_days: Mapping[dt.date, str] | None = None
) -> MonthPanel:
    """One month of the job as a Monday-first calendar of full cells (state, tooltip, warnings)."""
    warn_days = warn_days or {}
    parsed = month_parse(key)
    assert parsed is not None
    year, month = parsed
    panel = MonthPanel(key=key)
    by_date = {day.date: day for day in days}
    leading = dt.date(year, month, 1).weekday()
    panel.cells.extend([None] * leading)
    for number in range(1, calendar.monthrange(year, month)[1] + 1):
        date = dt.date(year, month, number)
        day = by_date.get(date)
        if day is None:
            panel.cells.append(None)
            continue
        state = day_state(day.status, day.skip_reason)
        panel.failed += state == SyncDayStatus.FAILED
        warnings = warn_days.get(date, "")
        panel.cells.append(CalendarCell(date, state, day_tooltip(day, warnings), warnings))
    return panel


def default_open_months(rows: Sequence[YearRow], *, limit: int = 3) -> list[str]:
    """Months shown open at first: all of a short job's (up to `limit`), none of a long one's."""
    keys = [key for row in rows for key in re.findall(r"data-m=([\d-]+)", row.strip)]
    return keys if len(keys) <= limit else []
