"""Reads of the data checks' findings (`DayFinding`): lists, per job, per day. Nothing here writes."""

from __future__ import annotations

import datetime as dt

from django.contrib.postgres.aggregates import ArrayAgg
from django.contrib.postgres.fields import ArrayField
from django.db.models import CharField, Count, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from batchsync.check_models import DayFinding
from batchsync.models import SyncDay, SyncJob


def day_finding_list(
    *,
    job: SyncJob | None = None,
    check: str | None = None,
    severity: str | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> QuerySet[DayFinding]:
    """Findings, newest trade date first, filtered by the job that loaded the day, check, severity, dates."""
    findings = DayFinding.objects.select_related("job").order_by("-trade_date", "check_name")
    if job is not None:
        findings = findings.filter(job=job)
    if check:
        findings = findings.filter(check_name=check)
    if severity:
        findings = findings.filter(severity=severity)
    if start is not None:
        findings = findings.filter(trade_date__gte=start)
    if end is not None:
        findings = findings.filter(trade_date__lte=end)
    return findings


def sync_job_findings(job: SyncJob) -> list[DayFinding]:
    """The findings on the days of the job's range, in date order (whichever job loaded them)."""
    return list(
        DayFinding.objects.filter(trade_date__range=(job.start_date, job.end_date)).order_by(
            "trade_date", "check_name"
        )
    )


def sync_days_with_findings(days: QuerySet[SyncDay]) -> QuerySet[SyncDay]:
    """`days`, each with `findings` (the checks that warned on its date) and `finding_checks` (names)."""
    on_day = DayFinding.objects.filter(trade_date=OuterRef("date")).order_by().values("trade_date")
    return days.annotate(
        findings=Coalesce(Subquery(on_day.annotate(n=Count("id")).values("n")), 0),
        finding_checks=Coalesce(
            Subquery(on_day.annotate(names=ArrayAgg("check_name", order_by="check_name")).values("names")),
            Value([]),
            output_field=ArrayField(CharField()),
        ),
    )


def finding_summaries(start: dt.date, end: dt.date) -> dict[dt.date, str]:
    """Per trade date of the range with findings: `check (rows), ...` (the admin's day grid)."""
    summaries: dict[dt.date, list[str]] = {}
    findings = DayFinding.objects.filter(trade_date__range=(start, end)).order_by("trade_date", "check_name")
    for trade_date, check, count in findings.values_list("trade_date", "check_name", "count"):
        summaries.setdefault(trade_date, []).append(f"{check} ({count})")
    return {trade_date: ", ".join(parts) for trade_date, parts in summaries.items()}
