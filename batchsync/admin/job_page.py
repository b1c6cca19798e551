"""The job page's fragments: the day grid, a month, a day's detail, the live refresh, and re-runs.

Everything the page shows is rendered here, on the server; `job_detail.js` only fetches these
fragments and swaps them in by id (`live_view` is the one refresh entry point).
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.dates import MONTHS_3
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import pgettext_lazy

from batchsync import dispatch, finding_selectors, operations, selectors, services
from batchsync.admin.day_grid import (
    MonthPanel,
    YearRow,
    default_open_months,
    month_panel,
    month_parse,
    year_rows,
)
from batchsync.admin.queue_offer import queue_context
from batchsync.conf import get_settings
from batchsync.exceptions import BatchSyncError
from batchsync.models import FINISHED_STATUSES, VIEW_TRACEBACK, SyncError, SyncJob
from batchsync.permissions import CHANGE_JOBS
from batchsync.templatetags.batchsync_display import (
    DAY_STATE_LABELS,
    ERROR_FOLD_CHARS,
    day_state,
    state_legend,
)

ERRORS_SHOWN = 50
# The live refresh asks for days that ran since its last call; workers on other hosts stamp
# days with their own clocks, so a minute of overlap keeps a small clock skew from hiding one.
SINCE_MARGIN = dt.timedelta(seconds=60)
OPEN_MONTHS_MAX = 12  # months a page may keep open (the live refresh re-renders them)
# A month calendar's column heads, Monday first: two letters (one character in Chinese).
WEEKDAY_HEADS = [
    pgettext_lazy("weekday head", "Mo"),
    pgettext_lazy("weekday head", "Tu"),
    pgettext_lazy("weekday head", "We"),
    pgettext_lazy("weekday head", "Th"),
    pgettext_lazy("weekday head", "Fr"),
    pgettext_lazy("weekday head", "Sa"),
    pgettext_lazy("weekday head", "Su"),
]
MONTH_HEADS = [(capfirst(MONTHS_3[n]), calendar.monthrange(2001, n)[1]) for n in range(1, 13)]

# A job's month, and the months of the job a request asks to see open.
Months = list[tuple[int, int]]


def can_view_traceback(request: HttpRequest) -> bool:
    """Tracebacks show the server's code and paths: only for holders of `view_traceback`."""
    return request.user.has_perm(VIEW_TRACEBACK)


def can_rerun(request: HttpRequest) -> bool:
    """Re-running chosen days is a change of the job (Airflow's "clear")."""
    return request.user.has_perm(CHANGE_JOBS)


def page_urls(job: SyncJob) -> dict[str, str]:
    """The job page's fragment endpoints."""
    names = ("live", "month", "day", "rerun")
    return {name: reverse(f"admin:batchsync_syncjob_{name}", args=[job.pk]) for name in names}


def months_asked(text: str) -> Months:
    """`2025-10,2025-11` as months, at most OPEN_MONTHS_MAX, bad ones left out."""
    months = [parsed for key in text.split(",") if (parsed := month_parse(key.strip()))]
    return list(dict.fromkeys(months))[:OPEN_MONTHS_MAX]


def job_warn_days(job: SyncJob) -> dict[dt.date, str]:
    """Days of the job with warnings (the data checks' findings), each with its `check (rows), ...`.

    The one place the grid asks: marked `data-warn` in the strips and the "warnings only"
    filter, `bs-warned` with `data-warnings` in a month, listed in the day's detail.
    """
    return finding_selectors.finding_summaries(job.start_date, job.end_date)


def _panels(job: SyncJob, months: Months, warn_days: dict[dt.date, str] | None = None) -> list[MonthPanel]:
    panels = []
    for year, month in sorted(months):
        days = selectors.sync_job_month_days(job, year, month)
        if days:
            if warn_days is None:
                warn_days = job_warn_days(job)
            panels.append(month_panel(f"{year:04d}-{month:02d}", days, warn_days))
    return panels


def _errors_key(job: SyncJob, errors: list[SyncError], total: int) -> str:
    return f"{total}:{errors[0].pk if errors else 0}:{job.status}"


def errors_context(request: HttpRequest, job: SyncJob) -> dict[str, Any]:
    """The errors panel: the newest errors, their count and the key the live refresh compares."""
    errors = list(selectors.sync_error_list(job)[:ERRORS_SHOWN])
    total = job.errors.count()
    return {
        "errors": errors,
        "errors_total": total,
        "errors_key": _errors_key(job, errors, total),
        "errors_url": reverse("admin:batchsync_syncerror_changelist") + f"?job__id__exact={job.pk}",
    }


def summary_context(request: HttpRequest, job: SyncJob, errors: list[SyncError]) -> dict[str, Any]:
    """The headline, cards, buttons and fields of the job."""
    allowed = operations.operations_allowed(job, request.user)
    buttons = [
        (op.name, op.label_for(job), op.name in allowed)
        for op in operations.operations_permitted(request.user)
    ]
    return {
        "job": job,
        "progress": selectors.sync_job_progress(job, errors=errors[: get_settings().recent_errors]),
        "loaded_sources": selectors.loaded_day_source_counts(job.start_date, job.end_date),
        "operation_buttons": buttons,
    }


def legend_context(job: SyncJob) -> list[tuple[str, Any, int]]:
    counts = {
        day_state(status, reason): count for status, reason, count in selectors.sync_job_state_counts(job)
    }
    return [(state, label, count) for state, label, _ in state_legend(()) for count in [counts.get(state, 0)]]


def common_context(request: HttpRequest, job: SyncJob) -> dict[str, Any]:
    return {
        "job": job,
        "can_view_traceback": can_view_traceback(request),
        "can_rerun": can_rerun(request),
        "fold_chars": ERROR_FOLD_CHARS,
        "weekdays": WEEKDAY_HEADS,
        "rerun_url": page_urls(job)["rerun"],
        "since": (timezone.now() - SINCE_MARGIN).isoformat(),
    }


def job_page_context(request: HttpRequest, job: SyncJob) -> dict[str, Any]:
    """Everything the job page renders (`detail.html`): summary, errors, the grid, the fields."""
    warn_days = job_warn_days(job)
    rows = year_rows(selectors.sync_job_day_rows(job), warn_days)
    asked = months_asked(request.GET.get("open", ""))
    keys = [f"{y:04d}-{m:02d}" for y, m in asked] or default_open_months(rows)
    panels = _panels(job, [parsed for key in keys if (parsed := month_parse(key))], warn_days)
    grid: list[tuple[YearRow, list[MonthPanel]]] = [
        (row, [panel for panel in panels if panel.key.startswith(f"{row.year:04d}-")]) for row in rows
    ]
    errors = errors_context(request, job)
    return {
        **common_context(request, job),
        **errors,
        **summary_context(request, job, errors["errors"]),
        "grid": grid,
        "month_heads": MONTH_HEADS,
        "state_legend": legend_context(job),
        "page_urls": page_urls(job),
        "events": list(selectors.sync_job_events(job)),
        "live": push_config(job),
        **queue_context(job, request),
    }


def push_config(job: SyncJob) -> dict[str, Any]:
    """What `live_events.js` needs to follow the job's event stream (the API's `.../events`)."""
    return {
        "taskId": job.task_id,
        "status": job.status,
        "progressUrl": reverse("sync-batch-progress", kwargs={"task_id": job.task_id}),
        "finishedStatuses": [str(status) for status in FINISHED_STATUSES],
    }


def live_response(request: HttpRequest, job: SyncJob) -> HttpResponse:
    """The live refresh: summary, fields, legend, the years and open months changed since `since`,
    and the errors panel when its key differs from the page's."""
    since = parse_datetime(request.GET.get("since", "") or "")
    asked = months_asked(request.GET.get("open", ""))
    if request.GET.get("status", job.status) != job.status:
        # The job changed status since the page's last refresh (cancelled, paused, recovered):
        # days may have gone back to pending without a new timestamp, so every strip is sent.
        warn_days = job_warn_days(job)
        rows = year_rows(selectors.sync_job_day_rows(job), warn_days)
        open_months = asked
    else:
        changed = selectors.sync_job_days_changed_since(job, since) if since else set()
        years = sorted({day.year for day in changed})
        open_months = [(y, m) for y, m in asked if any(d.year == y and d.month == m for d in changed)]
        warn_days = job_warn_days(job) if years else {}
        rows = year_rows(selectors.sync_job_day_rows(job, years=years), warn_days) if years else []
    errors = errors_context(request, job)
    context = {
        **common_context(request, job),
        **errors,
        **summary_context(request, job, errors["errors"]),
        "changed_years": rows,
        "changed_months": _panels(job, open_months, warn_days),
        "errors_changed": errors["errors_key"] != request.GET.get("errors", ""),
        "state_legend": legend_context(job),
    }
    return render(request, "batchsync/_job_live.html", context)


def month_response(request: HttpRequest, job: SyncJob) -> HttpResponse:
    """One month of the job (`?month=YYYY-MM`), opened under its year's strip."""
    parsed = month_parse(request.GET.get("month", ""))
    panels = _panels(job, [parsed]) if parsed else []
    if not panels:
        return HttpResponseBadRequest(_("month: not a month of this job (YYYY-MM)"))
    return render(request, "batchsync/_month.html", {**common_context(request, job), "panel": panels[0]})


def day_response(request: HttpRequest, job: SyncJob) -> HttpResponse:
    """One day's detail (`?date=YYYY-MM-DD`): state, rows, attempts, its errors, re-run."""
    date = parse_date(request.GET.get("date", "") or "")
    day = selectors.sync_job_day(job, date) if date else None
    if day is None:
        return HttpResponseBadRequest(_("date: not a day of this job (YYYY-MM-DD)"))
    state = day_state(day.status, day.skip_reason)
    context = {
        **common_context(request, job),
        "day": day,
        "state": state,
        "state_label": DAY_STATE_LABELS[state],
        "errors": list(selectors.sync_day_errors(job, day.date)[:ERRORS_SHOWN]),
        "warnings": job_warn_days(job).get(day.date, ""),
    }
    return render(request, "batchsync/_day_detail.html", context)


def rerun_response(request: HttpRequest, job: SyncJob, job_url: Callable[[SyncJob], str]) -> HttpResponse:
    """POST `days` (`2025-10-09,2025-10-13..2025-10-17`) and `queue`: a new job for those days."""
    try:
        days = services.sync_days_parse(request.POST.get("days", ""))
        with dispatch.handoff() as handoff:
            new = services.sync_job_rerun_days(
                job, days, requested_by=request.user.get_username(), queue=request.POST.get("queue") == "1"
            )
    except BatchSyncError as error:
        messages.error(request, error.message)
        return HttpResponseRedirect(job_url(job))
    if handoff.failure is not None:
        messages.warning(request, handoff.failure.message)
    messages.success(
        request,
        _("Re-run of %(days)s from %(job)s: %(new)s is %(status)s")
        % {
            "days": services.sync_days_format(days),
            "job": job.task_id,
            "new": new.task_id,
            "status": new.get_status_display(),
        },
    )
    return HttpResponseRedirect(job_url(new))
