"""The data checks on the loader path: fail the day on an error, store its warnings (`DayFinding`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection

from django.db import connection, transaction
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from batchsync import sql
from batchsync.check_models import CheckSeverity, DayFinding
from batchsync.checks import (
    CHECK_COLUMNS,
    CHECK_NAMES,
    CONSTRAINED_CHECKS,
    PREVIOUS_DAY_CHECKS,
    CheckResult,
    DayCheck,
    data_checks_day,
    example_text,
)
from batchsync.conf import get_settings
from batchsync.exceptions import DataCheckFailed
from batchsync.models import LoadedDay, SyncDay, SyncJob
from batchsync.models.jobs import FINISHED_STATUSES

LineOf = Callable[[str], "int | None"]


def day_checks_enforce(
    day: dt.date,
    *,
    origin: str,
    job_id: int | None = None,
    sync_day_id: int | None = None,
    line_of: LineOf | None = None,
) -> DayCheck:
    """Run the data checks over `day` (in its transaction, after its COPY); return its warnings.

    An error-severity finding raises `DataCheckFailed` (the caller rolls back, the old rows
    stay); otherwise the day's findings are replaced by its warnings. `line_of` finds the
    source line of a ts_code, for the error's file and line (a CSV read again, only then).
    The result's `previous_checksum` goes into the day's load record (`loaded_day_record`).
    """
    # Rows just copied passed the table's constraints: the checks of the same rules would find nothing.
    checked = data_checks_day(day, skip=CONSTRAINED_CHECKS)
    errors = [result for result in checked.results if result.is_error]
    if errors:
        raise day_check_error(errors, origin=origin, line_of=line_of)
    warnings = [result for result in checked.results if result.severity == CheckSeverity.WARN]
    day_findings_replace(day, warnings, job_id=job_id, sync_day_id=sync_day_id)
    return DayCheck(warnings, checked.previous_checksum)


def loaded_day_neighbours_check(day: dt.date) -> list[dt.date]:
    """After `day` commits, compare the pairs of days its load left unpaired; the days compared.

    A day's previous-day checks (pre_close continuity, row count band) need the previous trading
    day's rows. When a parallel worker was loading that day in its own transaction, neither
    day saw the other, and when a day is loaded again, the next day was compared with its old
    rows. So once a day has committed, whichever of the two commits last compares the pair:
    this day with its previous one if it could not before, and the next day with this one if
    that day compared other rows (`LoadedDay.previous_checksum`). Each comparison runs in its
    own transaction, holding that day's load record, so two workers never write its findings
    at once; an error-severity rule can no longer fail a committed day, so what it finds is
    stored like a warning, with its severity.
    """
    if all(get_settings().checks[name][0] == CheckSeverity.OFF for name in PREVIOUS_DAY_CHECKS):
        return []
    with connection.cursor() as cursor:
        cursor.execute(sql.LOADED_DAY_NEIGHBOURS_DUE, {"day": day, "calendar": get_settings().calendar})
        due = cursor.fetchone()
    if due is None:
        return []
    own_due, upcoming = due
    targets = ([day] if own_due else []) + ([upcoming] if upcoming is not None else [])
    return [target for target in targets if _previous_day_compare(target)]


def _previous_day_compare(day: dt.date) -> bool:
    """Run `day`'s previous-day checks now and store what they find; False if there is nothing to compare."""
    with transaction.atomic():
        record = LoadedDay.objects.select_for_update().filter(trade_date=day).first()
        if record is None:
            return False
        checked = data_checks_day(day, skip=set(CHECK_NAMES) - PREVIOUS_DAY_CHECKS)
        if checked.previous_checksum is None or checked.previous_checksum == record.previous_checksum:
            return False  # the previous day has no rows yet, or another worker compared them
        sync_day_id = (
            SyncDay.objects.filter(job_id=record.job_id, date=day).values_list("pk", flat=True).first()
            if record.job_id
            else None
        )
        day_findings_replace(
            day, checked.results, job_id=record.job_id, sync_day_id=sync_day_id, checks=PREVIOUS_DAY_CHECKS
        )
        record.previous_checksum = checked.previous_checksum
        record.save(update_fields=["previous_checksum"])
        if record.job_id:
            # A job that already finished counted its days with warnings before this comparison.
            SyncJob.objects.filter(pk=record.job_id, status__in=FINISHED_STATUSES).update(
                warning_days=DayFinding.objects.of_job(record.job_id).warning_day_count()
            )
    return True


def day_findings_replace(
    day: dt.date,
    results: list[CheckResult],
    *,
    job_id: int | None,
    sync_day_id: int | None,
    checks: Collection[str] | None = None,
) -> None:
    """`day`'s findings (of `checks`; None: all) become `results`, those of the rows it now holds."""
    findings = DayFinding.objects.filter(trade_date=day)
    (findings if checks is None else findings.filter(check_name__in=checks)).delete()
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
