"""Django admin for batchsync: see and steer jobs. Every write goes through `services`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q, QuerySet
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
    JsonResponse,
)
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy

from batchsync import bounds, dispatch, selectors, services, sources
from batchsync.conf import get_settings
from batchsync.exceptions import BatchSyncError, InvalidJobRequest
from batchsync.models import (
    ACTIVE_STATUSES,
    FINISHED_STATUSES,
    VIEW_TRACEBACK,
    WORKING_STATUSES,
    Reprocess,
    SkipReason,
    SyncDay,
    SyncDayStatus,
    SyncError,
    SyncJob,
    SyncJobStatus,
    TradingCalendar,
)

if TYPE_CHECKING:  # django-stubs makes ModelAdmin generic; at run time it is not subscriptable
    SyncJobAdminBase = admin.ModelAdmin[SyncJob]
    ReadOnlyAdminBase = admin.ModelAdmin[Any]
else:
    SyncJobAdminBase = ReadOnlyAdminBase = admin.ModelAdmin

# The admin's "View site" opens the progress dashboard; the header names the project.
admin.site.site_url = "/sync/"
admin.site.site_header = gettext_lazy("batchsync administration")
admin.site.site_title = gettext_lazy("batchsync admin")

# --- presentation helpers (pure; shared by the list, the detail page and the dashboard) -------

# Calendar cell states: a day's status, with skipped days split by their reason.
DAY_STATE_LABELS: dict[str, Any] = {
    "succeeded": gettext_lazy("succeeded"),
    "failed": gettext_lazy("failed"),
    "skipped_non_trading": gettext_lazy("skipped: non-trading day"),
    "skipped_already_loaded": gettext_lazy("skipped: already loaded"),
    "skipped_previously_failed": gettext_lazy("skipped: failed before"),
    "pending": gettext_lazy("pending"),
    "running": gettext_lazy("running"),
}
# One letter per state: the live calendar endpoint sends the states of all days as one string.
DAY_STATE_CODES: dict[str, str] = {
    "succeeded": "S",
    "failed": "F",
    "skipped_non_trading": "N",
    "skipped_already_loaded": "L",
    "skipped_previously_failed": "X",
    "pending": "P",
    "running": "R",
}
ERRORS_SHOWN = 50
# The live calendar asks for days that ran since its last poll; workers on other hosts stamp
# days with their own clocks, so a minute of overlap keeps a small clock skew from hiding one.
SINCE_MARGIN = dt.timedelta(seconds=60)
ERROR_TOOLTIP_CHARS = 300


def day_state(status: str, skip_reason: str) -> str:
    """The calendar state of a day: its status, or `skipped_<reason>`."""
    if status == SyncDayStatus.SKIPPED:
        return f"skipped_{skip_reason or SkipReason.NON_TRADING}"
    return str(status)


def format_duration(seconds: float | None) -> str:
    """Seconds as `1h 02m 03s` / `2m 03s` / `3.2s`; empty when unknown."""
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    return f"{minutes}m {secs:02d}s"


def format_local(value: dt.datetime | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    return timezone.localtime(value).strftime(fmt) if value else ""


def status_badge(status: str, label: str) -> SafeString:
    return format_html('<span class="bs-status bs-status--{}">{}</span>', status, label)


def progress_bar(percent: float, status: str) -> SafeString:
    return format_html(
        '<div class="bs-progress" role="progressbar" aria-valuenow="{}" aria-valuemin="0" '
        'aria-valuemax="100"><div class="bs-progress__bar bs-progress__bar--{}" style="width: {}%">'
        '</div><span class="bs-progress__label">{}%</span></div>',
        percent,
        status,
        percent,
        f"{percent:.1f}",
    )


def day_tooltip(day: SyncDay) -> str:
    """What a calendar cell shows on hover: date, state, rows, duration, attempts, error."""
    parts = [day.date.isoformat(), str(DAY_STATE_LABELS[day_state(day.status, day.skip_reason)])]
    if day.status in (SyncDayStatus.SUCCEEDED, SyncDayStatus.FAILED, SyncDayStatus.RUNNING) or day.attempts:
        parts.append(_("rows: %(rows)s") % {"rows": day.rows})
        if day.duration_seconds is not None:
            parts.append(_("duration: %(duration)s") % {"duration": format_duration(day.duration_seconds)})
        parts.append(_("attempts: %(attempts)s") % {"attempts": day.attempts})
    if day.last_error:
        parts.append(_("error: %(error)s") % {"error": day.last_error[:ERROR_TOOLTIP_CHARS]})
    return " · ".join(parts)


@dataclass(frozen=True)
class CalendarCell:
    date: dt.date
    state: str
    tooltip: str


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


def calendar_months(days: Sequence[SyncDay]) -> list[CalendarMonth]:
    """The job's days as one row per month, 31 columns (day of month)."""
    return _calendar_rows(
        CalendarCell(date=day.date, state=day_state(day.status, day.skip_reason), tooltip=day_tooltip(day))
        for day in days
    )


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


OPERATION_LABELS: dict[str, Any] = {
    "cancel": gettext_lazy("Cancel"),
    "pause": gettext_lazy("Pause"),
    "resume": gettext_lazy("Resume"),
    "retry": gettext_lazy("Retry failed days"),
}


def _operation_run(job: SyncJob, operation: str, user: str) -> SyncJob:
    """Call the service behind an operator operation; retry returns the new job."""
    if operation == "cancel":
        return services.sync_job_cancel(job)
    if operation == "pause":
        return services.sync_job_pause(job)
    if operation == "resume":
        return services.sync_job_resume(job)
    if operation == "retry":
        return services.sync_job_retry(job, requested_by=user)
    raise PermissionDenied(f"unknown operation {operation}")


# --- the start form ---------------------------------------------------------------------------


DATE_INPUT = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class SyncJobStartForm(forms.Form):
    """The start options as a form; the request is built and checked by `services.sync_request_build`."""

    start_date = forms.DateField(label=gettext_lazy("start date"), widget=DATE_INPUT)
    end_date = forms.DateField(label=gettext_lazy("end date"), widget=DATE_INPUT)
    source = forms.ChoiceField(label=gettext_lazy("source"))
    path = forms.CharField(
        label=gettext_lazy("path"),
        required=False,
        help_text=gettext_lazy("Directory of one CSV file per day (csv source only)."),
        widget=forms.TextInput(attrs={"size": 60}),
    )
    reprocess = forms.ChoiceField(
        label=gettext_lazy("reprocess"),
        choices=Reprocess.choices,
        initial=Reprocess.FAILED,
        help_text=gettext_lazy("Which days load again when a day of the range was loaded or tried before."),
    )
    force = forms.BooleanField(
        label=gettext_lazy("force reload"),
        required=False,
        help_text=gettext_lazy("Reload days that are already loaded (the same as reprocess = all days)."),
    )
    parallelism = forms.IntegerField(
        label=gettext_lazy("parallelism"),
        **bounds.PARALLELISM.limits,
        help_text=gettext_lazy("Days loaded at once (workers on the cluster)."),
    )
    priority = forms.IntegerField(
        label=gettext_lazy("priority"),
        initial=0,
        **bounds.PRIORITY.limits,
        help_text=gettext_lazy("A higher number runs first."),
    )
    queue = forms.BooleanField(
        label=gettext_lazy("queue"),
        required=False,
        help_text=gettext_lazy("Queue behind a running job instead of refusing to start."),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        names = sources.source_names()
        source_field = self.fields["source"]
        assert isinstance(source_field, forms.ChoiceField)
        source_field.choices = [(name, name) for name in names]
        source_field.initial = get_settings().default_source
        self.fields["parallelism"].initial = get_settings().default_parallelism

    def job_request(self, *, requested_by: str) -> services.JobRequest:
        """The validated request of the cleaned form; `InvalidJobRequest` names the field."""
        data = self.cleaned_data
        # The reprocess menu always has a value: left at its default, "force" decides alone.
        forced_default = data["force"] and data["reprocess"] == Reprocess.FAILED
        return services.sync_request_build(
            start_date=data["start_date"],
            end_date=data["end_date"],
            source=data["source"],
            path=data.get("path") or None,
            force=data["force"],
            reprocess=None if forced_default else data["reprocess"],
            parallelism=data["parallelism"],
            priority=data["priority"],
            queue=data["queue"],
            requested_by=requested_by,
        )


# --- filters ----------------------------------------------------------------------------------


class SourceListFilter(admin.SimpleListFilter):
    title = gettext_lazy("source")
    parameter_name = "source"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]) -> list[tuple[str, str]]:
        return [(name, name) for name in sources.source_names()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return queryset.filter(source=value) if value else queryset


class CoversDateListFilter(admin.SimpleListFilter):
    """Jobs whose range contains a day: this year, last year, ... (or ?covers=YYYY-MM-DD)."""

    title = gettext_lazy("range covers")
    parameter_name = "covers"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]) -> list[tuple[str, str]]:
        today = timezone.localdate()
        choices = [(today.isoformat(), str(_("today")))]
        choices += [(str(year), str(year)) for year in range(today.year, today.year - 5, -1)]
        return choices

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if not value:
            return queryset
        if value.isdigit() and len(value) == 4:
            year = int(value)
            return queryset.filter(start_date__lte=dt.date(year, 12, 31), end_date__gte=dt.date(year, 1, 1))
        day = parse_date(value)
        if day is None:
            return queryset.none()
        return queryset.filter(start_date__lte=day, end_date__gte=day)


# --- admins -----------------------------------------------------------------------------------


@admin.register(SyncJob)
class SyncJobAdmin(SyncJobAdminBase):
    """Jobs: list, live detail page, start form and operator actions; nothing is edited by hand."""

    list_display = (
        "task_id",
        "status_colored",
        "progress",
        "counts",
        "current_day",
        "started",
        "duration",
        "eta",
        "source",
        "requested_by",
    )
    list_display_links = ("task_id",)
    list_filter = ("status", SourceListFilter, "created_at", CoversDateListFilter)
    date_hierarchy = "created_at"
    search_fields = ("task_id",)
    search_help_text = gettext_lazy("Task id (or part of it), or a day YYYY-MM-DD the range covers.")
    ordering = ("-created_at", "-id")
    list_per_page = 50
    actions = ("cancel_jobs", "pause_jobs", "resume_jobs", "retry_jobs")
    detail_template = "admin/batchsync/syncjob/detail.html"
    start_template = "admin/batchsync/syncjob/start.html"

    class Media:
        css = {"all": ("batchsync/batchsync.css",)}

    # No hand edits: jobs are created by the start form (services.sync_job_create), changed
    # only by operator actions (services), and never deleted from the admin.
    def has_delete_permission(self, request: HttpRequest, obj: SyncJob | None = None) -> bool:
        return False

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[SyncJob], search_term: str
    ) -> tuple[QuerySet[SyncJob], bool]:
        day = parse_date(search_term.strip()) if search_term else None
        if day is not None:
            covered = queryset.filter(Q(start_date__lte=day, end_date__gte=day) | Q(task_id__icontains=day))
            return covered, False
        return super().get_search_results(request, queryset, search_term)

    # --- list columns ---

    @admin.display(description=gettext_lazy("status"), ordering="status")
    def status_colored(self, job: SyncJob) -> SafeString:
        return status_badge(job.status, job.get_status_display())

    @admin.display(description=gettext_lazy("progress"), ordering="processed_days")
    def progress(self, job: SyncJob) -> SafeString:
        return progress_bar(job.progress_percent, job.status)

    @admin.display(description=gettext_lazy("succeeded / failed / skipped"))
    def counts(self, job: SyncJob) -> SafeString:
        return format_html(
            '<span class="bs-count bs-count--succeeded" title="{}">{}</span> / '
            '<span class="bs-count bs-count--failed" title="{}">{}</span> / '
            '<span class="bs-count bs-count--skipped" title="{}">{}</span>',
            _("succeeded"),
            job.success_days,
            _("failed"),
            job.failed_days,
            _("skipped"),
            job.skipped_days,
        )

    @admin.display(description=gettext_lazy("current date"), ordering="current_date")
    def current_day(self, job: SyncJob) -> str:
        return job.current_date.isoformat() if job.current_date else ""

    @admin.display(description=gettext_lazy("started"), ordering="started_at")
    def started(self, job: SyncJob) -> str:
        return format_local(job.started_at)

    @admin.display(description=gettext_lazy("duration"))
    def duration(self, job: SyncJob) -> str:
        return format_duration(job.duration_seconds)

    @admin.display(description=gettext_lazy("ETA"), ordering="estimated_completion")
    def eta(self, job: SyncJob) -> str:
        return format_local(job.estimated_completion)

    # --- actions: each calls a service; a refused transition is reported, the others go on ---

    def _run_action(self, request: HttpRequest, jobs: QuerySet[SyncJob], operation: str) -> None:
        done: list[str] = []
        for job in jobs.order_by("created_at", "id"):
            try:
                result = _operation_run(job, operation, request.user.get_username())
            except BatchSyncError as error:
                self.message_user(request, error.message, messages.ERROR)
                continue
            done.append(result.task_id)
        if done:
            self.message_user(
                request,
                _("%(operation)s: %(jobs)s")
                % {"operation": OPERATION_LABELS[operation], "jobs": ", ".join(done)},
                messages.SUCCESS,
            )

    @admin.action(description=gettext_lazy("Cancel selected jobs"), permissions=["change"])
    def cancel_jobs(self, request: HttpRequest, queryset: QuerySet[SyncJob]) -> None:
        self._run_action(request, queryset, "cancel")

    @admin.action(description=gettext_lazy("Pause selected jobs"), permissions=["change"])
    def pause_jobs(self, request: HttpRequest, queryset: QuerySet[SyncJob]) -> None:
        self._run_action(request, queryset, "pause")

    @admin.action(description=gettext_lazy("Resume selected jobs"), permissions=["change"])
    def resume_jobs(self, request: HttpRequest, queryset: QuerySet[SyncJob]) -> None:
        self._run_action(request, queryset, "resume")

    @admin.action(description=gettext_lazy("Retry failed days of selected jobs"), permissions=["add"])
    def retry_jobs(self, request: HttpRequest, queryset: QuerySet[SyncJob]) -> None:
        self._run_action(request, queryset, "retry")

    # --- urls and views ---

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        return super().changelist_view(request, {"title": _("Sync jobs"), **(extra_context or {})})

    def get_urls(self) -> list[URLPattern]:
        info = self.opts.app_label, self.opts.model_name
        wrap: Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]
        wrap = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/control/<str:operation>/",
                wrap(self.control_view),
                name="{}_{}_control".format(*info),
            ),
            path("<path:object_id>/calendar/", wrap(self.calendar_view), name="{}_{}_calendar".format(*info)),
            *super().get_urls(),
        ]

    def _job_or_404(self, request: HttpRequest, object_id: str) -> SyncJob:
        job = self.get_object(request, unquote(object_id))
        if job is None:
            raise Http404(_("No sync job with id %(id)s") % {"id": object_id})
        return job

    def _job_url(self, job: SyncJob) -> str:
        return reverse("admin:batchsync_syncjob_change", args=[job.pk], current_app=self.admin_site.name)

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """Start a sync: the start form, `services.sync_request_build`, `services.sync_job_create`."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = SyncJobStartForm(request.POST or None)
        plan: list[services.DayPlan] | None = None
        if request.method == "POST" and form.is_valid():
            try:
                job_request = form.job_request(requested_by=request.user.get_username())
            except InvalidJobRequest as error:
                form.add_error(error.field if error.field in form.fields else None, error.message)
                job_request = None
            if job_request is not None and "_preview" in request.POST:
                plan = services.sync_days_plan(
                    job_request.start_date, job_request.end_date, job_request.reprocess
                )
            elif job_request is not None:
                try:
                    with dispatch.handoff() as handoff:
                        job = services.sync_job_create(job_request)
                except BatchSyncError as error:
                    form.add_error(None, error.message)
                else:
                    if handoff.failure is not None:  # saved, pending: starts when the broker is back
                        self.message_user(request, handoff.failure.message, messages.WARNING)
                    else:
                        self.message_user(request, job.message, messages.SUCCESS)
                    return HttpResponseRedirect(self._job_url(job))
        plan_context: dict[str, Any] = {}
        if plan is not None:
            plan_context = {
                "plan_message": services.sync_days_plan_summary(plan)[1],
                "months": plan_months(plan),
                "state_legend": state_legend(day_state(day.status, day.skip_reason) for day in plan),
                "day_numbers": range(1, 32),
            }
        context = {
            **self.admin_site.each_context(request),
            "title": _("Start a sync"),
            "subtitle": None,
            "opts": self.opts,
            "form": form,
            "plan": plan,
            **plan_context,
            "has_view_permission": self.has_view_permission(request),
            "media": self.media + form.media,
            **(extra_context or {}),
        }
        return TemplateResponse(request, self.start_template, context)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        """The job's page: read-only progress, calendar, errors, and the allowed operations."""
        if request.method not in ("GET", "HEAD"):
            return HttpResponseNotAllowed(["GET"])
        job = self._job_or_404(request, object_id)
        if not self.has_view_or_change_permission(request, job):
            raise PermissionDenied
        errors = list(selectors.sync_error_list(job)[:ERRORS_SHOWN])
        progress = selectors.sync_job_progress(job, errors=errors[: get_settings().recent_errors])
        days = selectors.sync_job_calendar_days(job)
        can_change = self.has_change_permission(request, job)
        can_add = self.has_add_permission(request)
        operations = [
            op
            for op in services.sync_job_allowed_operations(job)
            if (can_add if op == "retry" else can_change)
        ]
        info = self.opts.app_label, self.opts.model_name
        live = {
            "taskId": job.task_id,
            "progressUrl": progress_api_url(job.task_id),
            "calendarUrl": reverse("admin:{}_{}_calendar".format(*info), args=[job.pk]),
            "startDate": job.start_date.isoformat(),
            "status": job.status,
            "activeStatuses": [str(s) for s in ACTIVE_STATUSES],
            "workingStatuses": [str(s) for s in WORKING_STATUSES],
            "finishedStatuses": [str(s) for s in FINISHED_STATUSES],
            "statusLabels": {str(value): str(label) for value, label in SyncJobStatus.choices},
            "stateLabels": {key: str(label) for key, label in DAY_STATE_LABELS.items()},
            "stateCodes": {code: key for key, code in DAY_STATE_CODES.items()},
            "transitions": {op: list(table) for op, table in services.TRANSITIONS.items()},
            "canChange": can_change,
            "canAdd": can_add,
            "pollMs": 1000,
            # The same sentence as the page's own lock-wait note, for the live updates.
            "lockWaitText": _(
                "%(date)s has waited %(seconds)s s for a lock held by another database session "
                "(pid %(pids)s): %(lock)s."
            ),
        }
        context = {
            **self.admin_site.each_context(request),
            "title": _("Sync job %(task_id)s") % {"task_id": job.task_id},
            "subtitle": None,
            "opts": self.opts,
            "original": job,
            "job": job,
            "progress": progress,
            "errors": errors,
            "errors_total": job.errors.count(),
            "can_view_traceback": can_view_traceback(request),
            "errors_url": reverse("admin:batchsync_syncerror_changelist") + f"?job__id__exact={job.pk}",
            "months": calendar_months(days),
            "day_numbers": range(1, 32),
            "state_legend": state_legend(day_state(day.status, day.skip_reason) for day in days),
            "all_operations": [(op, OPERATION_LABELS[op], op in operations) for op in OPERATION_LABELS],
            "can_operate": can_change or can_add,
            "duration": format_duration(job.duration_seconds),
            "eta": format_local(job.estimated_completion),
            "started": format_local(job.started_at),
            "finished": format_local(job.finished_at),
            "created": format_local(job.created_at),
            "live": live,
            "has_view_permission": True,
            "media": self.media,
            **(extra_context or {}),
        }
        return TemplateResponse(request, self.detail_template, context)

    def control_view(self, request: HttpRequest, object_id: str, operation: str) -> HttpResponse:
        """POST cancel / pause / resume / retry of one job (the detail page's buttons)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if operation not in OPERATION_LABELS:
            raise PermissionDenied
        job = self._job_or_404(request, object_id)
        allowed = (
            self.has_add_permission(request)
            if operation == "retry"
            else self.has_change_permission(request, job)
        )
        if not allowed:
            raise PermissionDenied
        target = job
        try:
            target = _operation_run(job, operation, request.user.get_username())
        except BatchSyncError as error:
            self.message_user(request, error.message, messages.ERROR)
        else:
            self.message_user(
                request,
                _("%(operation)s: %(job)s is now %(status)s")
                % {
                    "operation": OPERATION_LABELS[operation],
                    "job": target.task_id,
                    "status": target.get_status_display(),
                },
                messages.SUCCESS,
            )
        return HttpResponseRedirect(self._job_url(target))

    def calendar_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """JSON for the live page: every day's state (one letter each), details of changed days, errors.

        `since` (an ISO time the previous answer gave) limits the details to days that ran
        since then, so a page following a 20-year job does not reload 7,300 days every second.
        """
        job = self._job_or_404(request, object_id)
        if not self.has_view_or_change_permission(request, job):
            raise PermissionDenied
        now = timezone.now()
        since = parse_datetime(request.GET.get("since", "") or "")
        days = selectors.sync_job_calendar_days(job)
        states = "".join(DAY_STATE_CODES[day_state(day.status, day.skip_reason)] for day in days)
        changed = [day for day in days if _day_changed_since(day, since)]
        details = {
            day.date.isoformat(): {
                "state": day_state(day.status, day.skip_reason),
                "rows": day.rows,
                "duration": format_duration(day.duration_seconds),
                "attempts": day.attempts,
                "error": day.last_error,
                "tooltip": day_tooltip(day),
            }
            for day in changed
        }
        recent_errors = list(selectors.sync_error_list(job)[:ERRORS_SHOWN])
        errors = [
            {
                "id": error.pk,
                "date": error.date.isoformat() if error.date else None,
                "time": format_local(error.created_at),
                "error": error.error,
                "file": error.file,
                "line": error.line,
                "attempt": error.attempt,
                **({"traceback": error.traceback} if can_view_traceback(request) else {}),
            }
            for error in recent_errors
        ]
        return JsonResponse(
            {
                "status": job.status,
                "start_date": job.start_date.isoformat(),
                "states": states,
                "details": details,
                "errors": errors,
                "errors_total": job.errors.count(),
                "operations": services.sync_job_allowed_operations(job),
                "since": (now - SINCE_MARGIN).isoformat(),
            }
        )


def _day_changed_since(day: SyncDay, since: dt.datetime | None) -> bool:
    """Whether the live page needs the day's details: it ran (since `since`), or runs now."""
    if day.status == SyncDayStatus.RUNNING:
        return True
    if since is None:
        return bool(day.attempts) or day.status in (SyncDayStatus.SUCCEEDED, SyncDayStatus.FAILED)
    return any(moment is not None and moment >= since for moment in (day.started_at, day.finished_at))


def can_view_traceback(request: HttpRequest) -> bool:
    """Tracebacks show the server's code and paths: only for holders of `view_traceback`."""
    return request.user.has_perm(VIEW_TRACEBACK)


def progress_api_url(task_id: str) -> str:
    """The REST API's progress URL of a job (the live pages poll it)."""
    return reverse("sync-batch-progress", kwargs={"task_id": task_id})


class _ReadOnlyAdmin(ReadOnlyAdminBase):
    """Shown, never written by hand: rows change only through the services."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(SyncDay)
class SyncDayAdmin(_ReadOnlyAdmin):
    list_display = (
        "date",
        "job",
        "status",
        "skip_reason",
        "rows",
        "duration_seconds",
        "attempts",
        "short_error",
    )
    list_filter = ("status", "skip_reason")
    list_select_related = ("job",)
    search_fields = ("job__task_id",)
    date_hierarchy = "date"
    raw_id_fields = ("job",)
    exclude = ("worker_id", "lease_expires_at", "fence")

    @admin.display(description=pgettext_lazy("column", "error"))
    def short_error(self, day: SyncDay) -> str:
        return day.last_error[:120]


@admin.register(SyncError)
class SyncErrorAdmin(_ReadOnlyAdmin):
    list_display = ("created_at", "job", "date", "attempt", "error", "file", "line")
    list_filter = ("created_at",)
    list_select_related = ("job",)
    search_fields = ("job__task_id", "error")
    raw_id_fields = ("job", "day")
    fields = ("job", "day", "date", "attempt", "created_at", "error", "file", "line", "traceback_block")
    readonly_fields = ("traceback_block",)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = super().get_fields(request, obj)
        return fields if can_view_traceback(request) else [f for f in fields if f != "traceback_block"]

    @admin.display(description=gettext_lazy("traceback"))
    def traceback_block(self, error: SyncError) -> SafeString:
        return format_html('<pre class="bs-traceback">{}</pre>', error.traceback or "-")


@admin.register(TradingCalendar)
class TradingCalendarAdmin(_ReadOnlyAdmin):
    """Which exchange calendars are stored, from which exchange_calendars, and up to when."""

    list_display = ("name", "first_session", "last_session", "session_count", "source_version", "stored_at")

    def get_queryset(self, request: HttpRequest) -> QuerySet[TradingCalendar]:
        calendars: QuerySet[TradingCalendar] = super().get_queryset(request)
        return calendars.annotate(session_count=Count("sessions"))

    @admin.display(description=gettext_lazy("trading sessions"), ordering="session_count")
    def session_count(self, calendar: TradingCalendar) -> int:
        return int(getattr(calendar, "session_count", 0))
