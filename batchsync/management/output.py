"""Plain-text output of `batch_sync`: aligned tables and values shown to a person."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.utils import timezone

from batchsync import finding_selectors, selectors, services
from batchsync.adjusted import AdjustedBar
from batchsync.checks import example_text
from batchsync.models import DayFinding, SyncJob

NOTHING = "-"


def shown(value: Any) -> str:
    """A value as the command prints it: `-` for nothing (None or empty), never `None`."""
    return NOTHING if value is None or value == "" else str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, numeric: Sequence[int] = ()) -> list[str]:
    """Lines of a table: a header, then the rows; columns two spaces apart, numbers right-aligned."""
    cells = [list(headers), *([shown(value) for value in row] for row in rows)]
    widths = [max(len(line[column]) for line in cells) for column in range(len(headers))]
    lines = []
    for line in cells:
        fields = [
            cell.rjust(width) if column in numeric else cell.ljust(width)
            for column, (cell, width) in enumerate(zip(line, widths, strict=True))
        ]
        lines.append("  ".join(fields).rstrip())
    return lines


def job_list_lines(jobs: Iterable[SyncJob]) -> list[str]:
    """`batch_sync list`: one row per job under a header."""
    headers = ("task id", "status", "range", "days", "loaded", "to_load", "failed", "skipped", "progress")
    rows = [
        (
            job.task_id,
            job.status,
            f"{job.start_date}..{job.end_date}",
            job.total_days,
            job.days_loaded,
            job.days_to_load,
            job.failed_days,
            job.skipped_days,
            f"{job.load_percent:.1f}%",
        )
        for job in jobs
    ]
    return table(headers, rows, numeric=range(3, len(headers)))


def job_status_lines(job: SyncJob) -> list[str]:
    """`batch_sync status`: every progress field, the days, the worker, what can be done, errors."""
    lines = [
        f"{name:22} {shown(value)}"
        for name, value in selectors.sync_job_progress(job).items()
        if name not in ("errors", "lock_waits")  # both have lines of their own below
    ]
    days = ", ".join(f"{status} {count}" for status, count in selectors.sync_job_day_counts(job).items())
    lines.append(f"{'days':22} {days}")
    loaded = selectors.loaded_day_source_counts(job.start_date, job.end_date)
    lines.append(f"{'sources':22} {', '.join(f'{name} {n}' for name, n in loaded.items()) or '-'}")
    worker = f"{'worker':22} {shown(job.worker_id)}"
    if job.lease_expires_at:
        worker += f" (lease until {timezone.localtime(job.lease_expires_at).isoformat()})"
    lines.append(worker)
    lines.extend(f"{'lock wait':22} {wait.describe()}" for wait in selectors.sync_job_lock_waits(job))
    lines.append(f"{'recoveries':22} {job.recoveries}")
    lines.append(f"{'operations':22} {', '.join(services.sync_job_allowed_operations(job)) or 'none'}")
    lines.extend(finding_lines(finding_selectors.sync_job_findings(job)))
    errors = selectors.sync_job_recent_errors(job)
    if errors:
        lines.append("recent errors:")
        lines.extend(f"  {error.date}: {error.error}" for error in errors)
    lines.extend(job_event_lines(job))
    return lines


def job_event_lines(job: SyncJob) -> list[str]:
    """The job's timeline under `status`: time, event, who, its facts; oldest first."""
    events = list(selectors.sync_job_events(job))
    if not events:
        return []
    lines = ["events:"]
    for event in events:
        when = timezone.localtime(event.created_at).strftime("%Y-%m-%d %H:%M:%S")
        who = f" by {event.actor}" if event.actor else ""
        text = selectors.sync_job_event_text(event)
        facts = f" ({text})" if text else ""
        lines.append(f"  {when}  {event.get_kind_display()}{who}{facts}")
    return lines


def finding_lines(findings: Sequence[DayFinding]) -> list[str]:
    """The data checks' findings on the days shown: a line per day and check, with an example."""
    if not findings:
        return []
    days = len({finding.trade_date for finding in findings})
    lines = [f"{'findings':22} {days} day(s) with warnings (docs/checks.md)"]
    for finding in findings:
        example = example_text(finding.check_name, finding.examples[0]) if finding.examples else ""
        lines.append(
            f"  {finding.trade_date}: {finding.check_name} ({finding.severity}) "
            + f"{finding.count} row(s)"
            + (f", e.g. {example}" if example else "")
        )
    return lines


def adjusted_bar_lines(bars: Sequence[AdjustedBar]) -> list[str]:
    """`batch_sync bars`: one row per day, the prices as asked, the raw close and the factor."""
    headers = ("trade_date", "open", "high", "low", "close", "raw close", "adj_factor")
    rows = [
        (bar.trade_date, bar.open, bar.high, bar.low, bar.close, bar.raw_close, bar.adj_factor)
        for bar in bars
    ]
    return table(headers, rows, numeric=range(1, len(headers)))
