"""The job page's day grid: one heat strip per year (a cell per day), months opened on demand.

A 20-year job has 7,300 days: the strip cells are built here as plain strings (one letter of
`DAY_STATE_CODES` as the class, no per-cell attributes), which keeps the page near 100 KB and
its render near 10 ms; a cell's date is its month's `data-m` plus its position.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field

from django.utils.safestring import SafeString, mark_safe

from batchsync.models import SyncDay, SyncDayStatus
from batchsync.templatetags.batchsync_display import DAY_STATE_CODES, day_state, day_tooltip

# A (date, status, skip reason) row of the job's days: what the strips need of a day.
DayRow = tuple[dt.date, str, str]
FAILED_CODE = DAY_STATE_CODES[str(SyncDayStatus.FAILED)]


@dataclass(frozen=True)
class StripMonth:
    key: str  # YYYY-MM
    length: int  # days in the calendar month
    cells: SafeString  # one <i> per calendar day; empty when the job has no day in the month
    failed: int


@dataclass(frozen=True)
class YearRow:
    year: int
    months: list[StripMonth]
    failed: int
    warned: int
    first: dt.date  # the job's first and last day in the year (selecting a whole year)
    last: dt.date


@dataclass(frozen=True)
class MonthCell:
    date: dt.date
    state: str
    tooltip: str
    warn: bool


@dataclass
class MonthPanel:
    key: str
    cells: list[MonthCell | None] = field(default_factory=list)  # Monday-first weeks, None: no day
    failed: int = 0

    @property
    def first(self) -> dt.date:
        return next(cell.date for cell in self.cells if cell is not None)

    @property
    def last(self) -> dt.date:
        return next(cell.date for cell in reversed(self.cells) if cell is not None)


def month_key(day: dt.date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def month_parse(key: str) -> tuple[int, int] | None:
    """`2025-10` as (2025, 10), None when it is not a month."""
    try:
        year, month = (int(part) for part in key.split("-"))
    except ValueError:
        return None
    return (year, month) if 1 <= year <= 9999 and 1 <= month <= 12 else None


def _strip_cells(year: int, month: int, codes: dict[int, str], warn: Collection[int]) -> SafeString:
    length = calendar.monthrange(year, month)[1]
    parts = []
    for day in range(1, length + 1):
        code = codes.get(day, "V")  # V: not a day of the job
        parts.append(f'<i class="{code}" data-warn></i>' if day in warn else f"<i class={code}></i>")
    return mark_safe("".join(parts))


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
        months = []
        for month in range(1, 13):
            codes = by_month.get((year, month), {})
            length = calendar.monthrange(year, month)[1]
            cells = (
                _strip_cells(year, month, codes, warned.get((year, month), ())) if codes else mark_safe("")
            )
            failed = sum(1 for code in codes.values() if code == FAILED_CODE)
            months.append(StripMonth(f"{year:04d}-{month:02d}", length, cells, failed))
        year_warned = sum(len(warned.get((year, month), ())) for month in range(1, 13))
        rows.append(
            YearRow(
                year, months, sum(m.failed for m in months), year_warned, bounds[year][0], bounds[year][1]
            )
        )
    return rows


def month_panel(key: str, days: Sequence[SyncDay], warn_days: Collection[dt.date] = ()) -> MonthPanel:
    """One month of the job as a Monday-first calendar of full cells (state, tooltip)."""
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
        panel.cells.append(MonthCell(date, state, day_tooltip(day), date in warn_days))
    return panel


def default_open_months(rows: Sequence[YearRow], *, limit: int = 3) -> list[str]:
    """Months shown open at first: all of a short job's (up to `limit`), none of a long one's."""
    keys = [month.key for row in rows for month in row.months if month.cells]
    return keys if len(keys) <= limit else []
