"""The data checks: every configured rule over one loaded day in one pass of SQL (docs/checks.md).

`data_checks_run` only reads: it returns what each check found, whatever its severity, and
fails nothing. The loader path (`services.day_checks_enforce`) fails the day on an error and
stores the warnings; `batch_sync verify --checks` re-runs it over days already loaded.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from batchsync import sql
from batchsync.check_models import CheckSeverity
from batchsync.conf import DATA_CHECK_DEFAULTS, DEFAULT_TS_CODE_PATTERN, get_settings

# What each check asks of a day's rows, in the active language (admin, API, docs).
CHECK_DESCRIPTIONS: dict[str, Promise] = {
    "ts_code_format": _("ts_code matches the configured pattern (default: A-share codes)"),
    "duplicate_ts_code": _("no ts_code appears twice (ignoring spaces and case)"),
    "high_low_range": _("high >= max(open, close) and low <= min(open, close)"),
    "price_positive": _("prices are numbers greater than 0"),
    "vol_amount_nonnegative": _("vol and amount are numbers of 0 or more"),
    "change_consistency": _("change = close - pre_close, within the tolerance"),
    "pct_chg_consistency": _("pct_chg = 100 x change / pre_close, within the tolerance"),
    "pre_close_continuity": _("pre_close equals the previous trading day's close (except on ex-rights days)"),
    "row_count_band": _("the day's row count is within the tolerance of the previous trading day's"),
    "implied_price_range": _("the average price amount x 1000 / (vol x 100) lies between low and high"),
}
# The column an error names, and the values its examples show.
CHECK_COLUMNS: dict[str, tuple[str, ...]] = {
    "ts_code_format": ("ts_code",),
    "duplicate_ts_code": ("ts_code",),
    "high_low_range": ("high", "open", "low", "close"),
    "price_positive": ("close", "open", "high", "low", "pre_close"),
    "vol_amount_nonnegative": ("vol", "amount"),
    "change_consistency": ("change", "close", "pre_close"),
    "pct_chg_consistency": ("pct_chg", "change", "pre_close"),
    "pre_close_continuity": ("pre_close", "previous_close"),
    "row_count_band": ("rows", "previous_rows", "previous_date"),
    "implied_price_range": ("amount", "vol", "low", "high"),
}
CHECK_NAMES = tuple(DATA_CHECK_DEFAULTS)
# The checks that compare a day with its previous trading day's rows.
PREVIOUS_DAY_CHECKS = frozenset({"pre_close_continuity", "row_count_band"})
# What the table's own constraints (`daily_bar_<column>_valid`) already guarantee for every row
# loaded since migration 0010: the loader path skips these (they find rows loaded before).
CONSTRAINED_CHECKS = frozenset({"price_positive", "vol_amount_nonnegative"})
EXAMPLES_KEPT = 5


@dataclass(frozen=True)
class CheckRule:
    """One check as configured: its severity and tolerance."""

    name: str
    severity: str
    tolerance: float


@dataclass(frozen=True)
class CheckResult:
    """What one check found on a day: the rows it flagged and up to 5 of them (ts_code and values)."""

    name: str
    severity: str
    count: int
    examples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def is_error(self) -> bool:
        return self.severity == CheckSeverity.ERROR


@dataclass(frozen=True)
class DayCheck:
    """What the checks found on a day, and which rows of its previous trading day they compared with.

    `previous_checksum`: that day's recorded checksum ("" if its rows have no load record), or
    None when it had no rows to compare with (not loaded yet, or loading in a parallel worker's
    transaction) or no check that compares with it was on.
    """

    results: list[CheckResult]
    previous_checksum: str | None = None


def data_checks_run(day: dt.date, *, skip: Collection[str] = ()) -> list[CheckResult]:
    """What every check that is not off (nor in `skip`) finds on `day`'s rows (`data_checks_day`)."""
    return data_checks_day(day, skip=skip).results


def data_checks_day(day: dt.date, *, skip: Collection[str] = ()) -> DayCheck:
    """Run every check that is not off (nor in `skip`) over `day`'s rows, in the current transaction.

    Returns one result per check that flagged something (errors first, then by name); fails
    nothing and writes nothing. Two statements whatever the number of checks (the previous
    day, then whether any check may flag a row: a bare count, no JSON), and a third, every
    check with its examples, only when one may.
    """
    config = get_settings()
    rules = {
        name: CheckRule(name, CheckSeverity.OFF if name in skip else severity, tolerance)
        for name, (severity, tolerance) in config.checks.items()
    }
    if all(rule.severity == CheckSeverity.OFF for rule in rules.values()):
        return DayCheck([])
    params: dict[str, Any] = {
        "day": day,
        "calendar": config.calendar,
        "ts_code_pattern": config.ts_code_pattern,
        "ts_code_default": config.ts_code_pattern == DEFAULT_TS_CODE_PATTERN,
    }
    for name, rule in rules.items():
        params[f"on_{name}"] = rule.severity != CheckSeverity.OFF
        params[f"tolerance_{name}"] = rule.tolerance
    compares = any(rules[name].severity != CheckSeverity.OFF for name in PREVIOUS_DAY_CHECKS)
    # A transaction even when called outside one: the first statement's SET LOCAL (JIT off)
    # must still hold for the second.
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        cursor.execute(sql.DATA_CHECKS_PREVIOUS_DAY, params)
        params["previous"], params["previous_rows"], recorded = cursor.fetchone()
        # Compared with the previous day's rows only if there were some (this statement's
        # snapshot: a day committed after it counts as not compared, and is compared later).
        previous_checksum = (recorded or "") if compares and params["previous_rows"] else None
        cursor.execute(sql.DATA_CHECKS_SUSPECTS, params)
        if not cursor.fetchone()[0]:
            return DayCheck([], previous_checksum)  # a clean day
        cursor.execute(sql.DATA_CHECKS, params)
        found = cursor.fetchall()
    results = [
        CheckResult(name=name, severity=rules[name].severity, count=int(count), examples=list(examples))
        for name, count, examples in found
    ]
    results.sort(key=lambda result: (not result.is_error, result.name))
    return DayCheck(results, previous_checksum)


def example_text(name: str, example: dict[str, Any]) -> str:
    """One example row as `000001.SZ (high=9.0000, open=10.0000, ...)`, the check's values only."""
    values = ", ".join(
        f"{column}={example.get(column)}" for column in CHECK_COLUMNS[name] if column != "ts_code"
    )
    code = example.get("ts_code")
    if code is None:
        return values
    return f"{code!r}" if not values else f"{code!r} ({values})"
