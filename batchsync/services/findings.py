"""The data checks on the loader path: fail the day on an error, store its warnings (`DayFinding`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from batchsync.check_models import CheckSeverity, DayFinding
from batchsync.checks import CHECK_COLUMNS, CONSTRAINED_CHECKS, CheckResult, data_checks_run, example_text
from batchsync.exceptions import DataCheckFailed

LineOf = Callable[[str], "int | None"]


def day_checks_enforce(
    day: dt.date,
    *,
    origin: str,
    job_id: int | None = None,
    sync_day_id: int | None = None,
    line_of: LineOf | None = None,
) -> list[CheckResult]:
    """Run the data checks over `day` (in its transaction, after its COPY); return its warnings.

    An error-severity finding raises `DataCheckFailed` (the caller rolls back, the old rows
    stay); otherwise the day's findings are replaced by its warnings. `line_of` finds the
    source line of a ts_code, for the error's file and line (a CSV read again, only then).
    """
    # Rows just copied passed the table's constraints: the checks of the same rules would find nothing.
    results = data_checks_run(day, skip=CONSTRAINED_CHECKS)
    errors = [result for result in results if result.is_error]
    if errors:
        raise day_check_error(errors, origin=origin, line_of=line_of)
    warnings = [result for result in results if result.severity == CheckSeverity.WARN]
    day_findings_replace(day, warnings, job_id=job_id, sync_day_id=sync_day_id)
    return warnings


def day_findings_replace(
    day: dt.date, results: list[CheckResult], *, job_id: int | None, sync_day_id: int | None
) -> None:
    """`day`'s findings become `results` (they describe the rows the table now holds)."""
    DayFinding.objects.filter(trade_date=day).delete()
    DayFinding.objects.bulk_create(
        DayFinding(
            job_id=job_id,
            day_id=sync_day_id,
            trade_date=day,
            check_name=result.name,
            severity=result.severity,
            count=result.count,
            examples=result.examples,
        )
        for result in results
    )


def day_check_error(errors: list[CheckResult], *, origin: str, line_of: LineOf | None) -> DataCheckFailed:
    """The first failed check, with its count and examples (the others named after it)."""
    first = errors[0]
    column = CHECK_COLUMNS[first.name][0]
    code = first.examples[0].get("ts_code") if first.examples else None
    line = line_of(code) if line_of is not None and isinstance(code, str) else None
    where = (
        origin + (f": line {line}" if line else "") + (f", column {column}" if column in _ROW_COLUMNS else "")
    )
    message = ngettext(
        "%(where)s: data check %(check)s failed on %(count)s row: %(examples)s",
        "%(where)s: data check %(check)s failed on %(count)s rows: %(examples)s",
        first.count,
    ) % {
        "where": where,
        "check": first.name,
        "count": first.count,
        "examples": "; ".join(example_text(first.name, example) for example in first.examples),
    }
    if len(errors) > 1:
        also = ", ".join(f"{error.name} ({error.count})" for error in errors[1:])
        message += " " + _("(also failed: %(checks)s)") % {"checks": also}
    return DataCheckFailed(
        message,
        check=first.name,
        count=first.count,
        examples=first.examples,
        file=origin,
        line=line,
        column=column if column in _ROW_COLUMNS else "",
    )


_ROW_COLUMNS = frozenset(
    {"ts_code", "open", "high", "low", "close", "pre_close", "change", "pct_chg", "vol", "amount"}
)
