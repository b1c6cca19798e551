"""Verify loaded days: does each still hold what was loaded, does its source still send it, and
do the data checks of today pass on it?

Reads only; nothing here writes `daily_bar` or `LoadedDay`. A day's rows are hashed with
`sql.DAY_CHECKSUM`, the expression its load recorded with, so the two are comparable. A
range is verified in chunks of a month, one grouped statement each (docs/verify.md has the
figures); `--against-source` fetches each day again and COPYs it into a temporary table that
hides the real one (`sql.SHADOW_TABLES`), in a transaction that is rolled back.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import shlex
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.db import connection, transaction
from django.utils.translation import gettext as _

from batchsync import calendars, loader, sources, sql
from batchsync.checks import CheckResult, data_checks_run
from batchsync.conf import get_settings
from batchsync.exceptions import BatchSyncError
from batchsync.models import LoadedDay, SkipReason, SyncDayStatus, SyncJob
from batchsync.services.findings import day_check_error
from batchsync.services.planning import DayPlan
from batchsync.sources.base import Source

# Calendar days per grouped statement: about 22 trading days, 120,000 rows, a fraction of a second.
CHUNK_DAYS = 31

# The command's flag of each source option (the inverse of `Arguments.source_options`): how a
# repair command names the options of the job that loaded a day.
OPTION_FLAGS = {
    "path": "--path",
    "source_url": "--source-url",
    "table": "--table",
    "query": "--query",
    "columns": "--columns",
    "with_adj_factor": "--with-adj-factor",
}


@dataclasses.dataclass(frozen=True)
class DayVerdict:
    """One day: what its load recorded, what the database holds now and (optionally) the source."""

    date: dt.date
    recorded_rows: int | None  # None: no load record for the day
    recorded_checksum: str | None
    source: str | None  # the source that loaded it (recorded)
    job_id: int | None  # the job that loaded it
    rows_now: int
    checksum_now: str
    source_rows: int | None = None  # --against-source: what the source sends now
    source_checksum: str | None = None
    source_problem: str = ""  # --against-source: why the source could not be compared
    findings: tuple[CheckResult, ...] = ()  # --checks: what the data checks find on the rows now

    @property
    def check_errors(self) -> list[CheckResult]:
        """Findings of error severity: a load of these rows today would fail."""
        return [finding for finding in self.findings if finding.is_error]

    @property
    def check_warnings(self) -> list[CheckResult]:
        return [finding for finding in self.findings if not finding.is_error]

    @property
    def database_matches(self) -> bool:
        """The database holds the rows the load recorded."""
        return (self.recorded_rows, self.recorded_checksum) == (self.rows_now, self.checksum_now)

    @property
    def matches(self) -> bool:
        """Nothing differs: the database (and the source, when it was asked) agree with the record."""
        if not self.database_matches or self.source_problem or self.check_errors:
            return False
        if self.source_checksum is None:
            return True
        return (self.source_rows, self.source_checksum) == (self.recorded_rows, self.recorded_checksum)

    def describe(self) -> str:
        """One line saying what differs (or that nothing does)."""
        facts = {
            "day": self.date.isoformat(),
            "recorded": f"{self.recorded_rows or 0:,}",
            "now": f"{self.rows_now:,}",
            "source": self.source or "-",
        }
        if self.recorded_rows is None:
            return _("%(day)s: no load record, %(now)s rows now (loaded outside batchsync)") % facts
        if not self.database_matches:
            if self.rows_now == 0:
                return _("%(day)s: %(recorded)s rows recorded, none now (rows removed)") % facts
            if self.rows_now > self.recorded_rows:
                return _("%(day)s: %(recorded)s rows recorded, %(now)s now (rows added)") % facts
            if self.rows_now < self.recorded_rows:
                return _("%(day)s: %(recorded)s rows recorded, %(now)s now (rows removed)") % facts
            return (
                _("%(day)s: %(recorded)s rows recorded, %(now)s now, checksum differs (rows changed)") % facts
            )
        if self.check_errors:
            return day_check_error(self.check_errors, origin=facts["day"], line_of=None).message
        if self.source_problem:
            return _("%(day)s: cannot compare with the source %(source)s: %(problem)s") % {
                **facts,
                "problem": self.source_problem,
            }
        if not self.matches:
            return _(
                "%(day)s: the source %(source)s sends %(sent)s rows now (%(recorded)s recorded), "
                "checksum differs: its data changed since loading"
            ) % {**facts, "sent": f"{self.source_rows or 0:,}"}
        return _("%(day)s: %(now)s rows, checksum matches") % facts


def chunks(start: dt.date, end: dt.date, days: int = CHUNK_DAYS) -> list[tuple[dt.date, dt.date]]:
    """The range cut into spans of `days` calendar days (the last one shorter)."""
    spans: list[tuple[dt.date, dt.date]] = []
    first = start
    while first <= end:
        last = min(first + dt.timedelta(days=days - 1), end)
        spans.append((first, last))
        first = last + dt.timedelta(days=1)
    return spans


def days_verify(start: dt.date, end: dt.date) -> list[DayVerdict]:
    """Every day of the range with rows or a load record, compared in one grouped statement."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql.VERIFY_JIT_OFF)
        cursor.execute(sql.DAYS_VERIFY, {"start": start, "end": end})
        return [DayVerdict(*row) for row in cursor.fetchall()]


def day_verify(day: dt.date) -> DayVerdict | None:
    """One day compared with its record; None when it has neither rows nor a record."""
    found = days_verify(day, day)
    return found[0] if found else None


class _Sources:
    """The sources of a span's days, built once per (name, options) and closed together."""

    def __init__(self) -> None:
        self.built: dict[str, Source] = {}
        self.options: dict[int, dict[str, Any]] = {}

    def get(self, name: str, job_id: int | None) -> Source:
        options = self.options.get(job_id, {}) if job_id is not None else {}
        key = json.dumps([name, options], sort_keys=True, default=str)
        if key not in self.built:
            self.built[key] = sources.source_get(name, options)
        return self.built[key]

    def close(self) -> None:
        for source in self.built.values():
            source.close()


def _job_options(job_ids: Iterable[int | None]) -> dict[int, dict[str, Any]]:
    """The source options of the jobs that loaded the days (secrets come from the environment)."""
    ids = [job_id for job_id in job_ids if job_id is not None]
    return dict(SyncJob.objects.filter(pk__in=ids).values_list("pk", "source_options")) if ids else {}


def with_checks(verdicts: Sequence[DayVerdict]) -> list[DayVerdict]:
    """The verdicts with the data checks run again over each day's rows (reads only)."""
    return [
        dataclasses.replace(verdict, findings=tuple(data_checks_run(verdict.date)))
        if verdict.rows_now
        else verdict
        for verdict in verdicts
    ]


def warnings_line(verdict: DayVerdict) -> str:
    """`2025-10-09: warnings: pre_close_continuity (1), ...`, the day's warn findings in one line."""
    listed = ", ".join(f"{finding.name} ({finding.count})" for finding in verdict.check_warnings)
    return _("%(day)s: warnings: %(checks)s") % {"day": verdict.date.isoformat(), "checks": listed}


def against_source(verdicts: Sequence[DayVerdict]) -> list[DayVerdict]:
    """The verdicts with each recorded day's source fetched again and compared, loading nothing.

    A day whose database rows already differ is left as it is (repair it first); a day with
    no record has no source to ask.
    """
    built = _Sources()
    built.options = _job_options(verdict.job_id for verdict in verdicts)
    try:
        return [
            _source_compared(verdict, built) if verdict.database_matches and verdict.source else verdict
            for verdict in verdicts
        ]
    finally:
        built.close()


def day_against_source(verdict: DayVerdict) -> DayVerdict:
    """One day's verdict compared with its source (see `against_source`)."""
    return against_source([verdict])[0]


def _source_compared(verdict: DayVerdict, built: _Sources) -> DayVerdict:
    assert verdict.source is not None
    try:
        payload = built.get(verdict.source, verdict.job_id).fetch_day(verdict.date)
        rows, checksum = shadow_checksum(verdict.date, payload)
    except BatchSyncError as error:
        return dataclasses.replace(verdict, source_problem=error.message)
    return dataclasses.replace(verdict, source_rows=rows, source_checksum=checksum)


def shadow_checksum(day: dt.date, payload: sources.DayPayload) -> tuple[int, str]:
    """Rows and checksum of `payload` as the loader would store it, in a rolled-back transaction."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql.SHADOW_TABLES)
        loader.replace_day(cursor, day, payload)
        cursor.execute(sql.SHADOW_DAY_CHECKSUM, [day])
        rows, checksum = cursor.fetchone()
        transaction.set_rollback(True)  # drops the temporary tables; nothing was written
    return int(rows), str(checksum)


def range_verify(
    start: dt.date,
    end: dt.date,
    *,
    compare_source: bool = False,
    run_checks: bool = False,
    parallelism: int = 1,
    on_chunk: Callable[[int, int], None] | None = None,
) -> list[DayVerdict]:
    """Every day of the range with rows or a record, in date order; `parallelism` chunks at once.

    Each thread has its own database session (closed when its chunk is done); one thread
    (`parallelism` 1) works in the caller's session. `on_chunk(done, total)` after each chunk.
    """
    spans = chunks(start, end)

    def verify_span(span: tuple[dt.date, dt.date]) -> list[DayVerdict]:
        verdicts = days_verify(*span)
        if run_checks:
            verdicts = with_checks(verdicts)
        return against_source(verdicts) if compare_source else verdicts

    def verify_span_in_thread(span: tuple[dt.date, dt.date]) -> list[DayVerdict]:
        try:
            return verify_span(span)
        finally:
            connection.close()

    found: list[DayVerdict] = []
    if parallelism <= 1 or len(spans) == 1:
        for done, span in enumerate(spans, 1):
            found.extend(verify_span(span))
            if on_chunk is not None:
                on_chunk(done, len(spans))
    else:
        with ThreadPoolExecutor(max_workers=parallelism, thread_name_prefix="batchsync-verify") as pool:
            for done, verdicts in enumerate(pool.map(verify_span_in_thread, spans), 1):
                found.extend(verdicts)
                if on_chunk is not None:
                    on_chunk(done, len(spans))
    return found


def repair_commands(mismatches: Sequence[DayVerdict]) -> list[str]:
    """The `batch_sync run --force` commands that reload the days, one per source and options.

    Each covers its days from the first to the last: the trading days between them load again
    too (from the same source). A day with no record names no source (the default one).
    """
    options = _job_options(verdict.job_id for verdict in mismatches)
    groups: dict[str, list[dt.date]] = {}
    flags_of: dict[str, list[str]] = {}
    for verdict in mismatches:
        flags = _source_flags(verdict.source or "", options.get(verdict.job_id or 0, {}))
        key = json.dumps(flags)
        groups.setdefault(key, []).append(verdict.date)
        flags_of[key] = flags
    return [
        shlex.join(
            [
                "python",
                "manage.py",
                "batch_sync",
                "run",
                "--start",
                min(days).isoformat(),
                "--end",
                max(days).isoformat(),
                "--force",
                *flags_of[key],
            ]
        )
        for key, days in sorted(groups.items(), key=lambda item: min(item[1]))
    ]


def _source_flags(source: str, options: dict[str, Any]) -> list[str]:
    flags = ["--source", source] if source else []
    for name, value in sorted(options.items()):
        flag = OPTION_FLAGS.get(name)
        if flag is None or value is None or value is False:
            continue
        flags.extend([flag] if value is True else [flag, str(value)])
    return flags


def repair_hint(mismatches: Sequence[DayVerdict]) -> str:
    """The one sentence saying how to repair the days: reload them from their source."""
    commands = repair_commands(mismatches)
    return _("Repair: reload with %(commands)s") % {"commands": "; ".join(commands)}


def verify_days_plan(start: dt.date, end: dt.date, *, calendar: str | None = None) -> list[DayPlan]:
    """A verify job's plan: each day with rows or a load record is verified, the others skipped."""
    sessions = calendars.trading_days(calendar or get_settings().calendar, start, end)
    with connection.cursor() as cursor:
        cursor.execute(sql.BAR_DAYS, {"start": start, "end": end})
        with_rows = {row[0] for row in cursor.fetchall()}
    loaded = LoadedDay.objects.filter(trade_date__range=(start, end))
    recorded = dict(loaded.values_list("trade_date", "source"))
    plan: list[DayPlan] = []
    day = start
    while day <= end:
        if day in with_rows or day in recorded:
            plan.append(DayPlan(day, SyncDayStatus.PENDING, SkipReason.NONE, recorded.get(day, "")))
        else:
            reason = SkipReason.NOT_LOADED if day in sessions else SkipReason.NON_TRADING
            plan.append(DayPlan(day, SyncDayStatus.SKIPPED, reason))
        day += dt.timedelta(days=1)
    return plan
