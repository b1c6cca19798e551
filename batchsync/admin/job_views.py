"""The job pages: start form, live detail page, control buttons and the calendar endpoint."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
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
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from batchsync import dispatch, finding_selectors, operations, selectors, services
from batchsync.admin.forms import SyncJobStartForm
from batchsync.admin.queue_offer import (
    RetryQueueForm,
    blocking_job,
    queue_context,
    refusal_message,
    start_data_with_queue,
)
from batchsync.conf import get_settings
from batchsync.exceptions import BatchSyncError, InvalidJobRequest, SyncAlreadyRunning, SyncUpToDate
from batchsync.models import (
    ACTIVE_STATUSES,
    FINISHED_STATUSES,
    VIEW_TRACEBACK,
    WORKING_STATUSES,
    SyncDay,
    SyncDayStatus,
    SyncJob,
    SyncJobStatus,
)
from batchsync.templatetags.batchsync_display import (
    DAY_STATE_CODES,
    DAY_STATE_LABELS,
    DURATION_FORMATS,
    calendar_months,
    day_state,
    day_tooltip,
    format_duration,
    format_local,
    plan_months,
    state_legend,
)

if TYPE_CHECKING:  # django-stubs makes ModelAdmin generic; at run time it is not subscriptable
    SyncJobAdminBase = admin.ModelAdmin[SyncJob]
else:
    SyncJobAdminBase = admin.ModelAdmin

ERRORS_SHOWN = 50
# The live calendar asks for days that ran since its last poll; workers on other hosts stamp
# days with their own clocks, so a minute of overlap keeps a small clock skew from hiding one.
SINCE_MARGIN = dt.timedelta(seconds=60)


class SyncJobPagesAdmin(SyncJobAdminBase):
    """The job's own pages and endpoints, on top of the admin's list."""

    detail_template = "admin/batchsync/syncjob/detail.html"
    start_template = "admin/batchsync/syncjob/start.html"

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
            path("<path:object_id>/timeline/", wrap(self.timeline_view), name="{}_{}_timeline".format(*info)),
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
        form = SyncJobStartForm(start_data_with_queue(request.POST) or None)
        plan: list[services.DayPlan] | None = None
        blocker: SyncJob | None = None  # a refused start offers to queue behind it
        if request.method == "POST" and form.is_valid():
            try:
                job_request = form.job_request(requested_by=request.user.get_username())
            except InvalidJobRequest as error:
                form.add_error(error.field if error.field in form.fields else None, error.message)
                job_request = None
            except SyncUpToDate as done:
                self.message_user(request, done.message, messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:batchsync_syncjob_changelist"))
            if job_request is not None and "_preview" in request.POST:
                plan = services.sync_days_plan(
                    job_request.start_date,
                    job_request.end_date,
                    job_request.reprocess,
                    source=job_request.source,
                )
            elif job_request is not None:
                try:
                    with dispatch.handoff() as handoff:
                        job = services.sync_job_create(job_request)
                except SyncAlreadyRunning as error:
                    form.add_error(None, refusal_message(error))
                    blocker = blocking_job(error)
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
                "plan_message": services.sync_days_plan_summary(plan).message,
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
            "blocking_job": blocker,
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
        # The buttons of the operations this user may apply; those the status allows now are shown.
        allowed = operations.operations_allowed(job, request.user)
        buttons = [
            (op.name, op.label_for(job), op.name in allowed)
            for op in operations.operations_permitted(request.user)
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
            "pollMs": 1000,
            "durationFormats": {unit: str(text) for unit, text in DURATION_FORMATS.items()},
            # The same sentence as the page's own lock-wait note, for the live updates.
            "lockWaitText": _(
                "%(date)s has waited %(seconds)s s for a lock held by another database session "
                "(pid %(pids)s): %(lock)s."
            ),
        }
        warnings = finding_selectors.finding_summaries(job.start_date, job.end_date)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Sync job %(task_id)s") % {"task_id": job.task_id},
            "subtitle": None,
            "opts": self.opts,
            "original": job,
            "job": job,
            "progress": progress,
            "loaded_sources": selectors.loaded_day_source_counts(job.start_date, job.end_date),
            "errors": errors,
            "errors_total": job.errors.count(),
            "can_view_traceback": can_view_traceback(request),
            "errors_url": reverse("admin:batchsync_syncerror_changelist") + f"?job__id__exact={job.pk}",
            "months": calendar_months(days, warnings),
            "day_numbers": range(1, 32),
            "state_legend": state_legend(day_state(day.status, day.skip_reason) for day in days),
            "operation_buttons": buttons,
            "events": list(selectors.sync_job_events(job)),
            "live": live,
            **queue_context(job, request),
            "has_view_permission": True,
            "media": self.media,
            **(extra_context or {}),
        }
        return TemplateResponse(request, self.detail_template, context)

    def control_view(self, request: HttpRequest, object_id: str, operation: str) -> HttpResponse:
        """POST cancel / pause / resume / retry of one job (the detail page's buttons)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        action = operations.OPERATIONS.get(operation)
        if action is None:
            raise PermissionDenied
        job = self._job_or_404(request, object_id)
        if not action.permitted(request.user):
            raise PermissionDenied
        if action.needs_confirmation and not request.POST.get("confirmed"):
            return self._confirm_operation(request, job, action)
        target = job
        options = RetryQueueForm(request.POST).retry_options() if action.creates_job else {}
        try:
            target = action.run(job, requested_by=request.user.get_username(), **options)
        except SyncAlreadyRunning as error:
            self.message_user(request, refusal_message(error), messages.ERROR)
        except BatchSyncError as error:
            self.message_user(request, error.message, messages.ERROR)
        else:
            self.message_user(
                request,
                _("%(operation)s: %(job)s is now %(status)s")
                % {
                    "operation": action.label,
                    "job": target.task_id,
                    "status": target.get_status_display(),
                },
                messages.SUCCESS,
            )
        return HttpResponseRedirect(self._job_url(target))

    def _confirm_operation(
        self, request: HttpRequest, job: SyncJob, action: operations.Operation
    ) -> HttpResponse:
        """Ask before an operation that stops work (cancel): the same POST again, confirmed."""
        context = {
            **self.admin_site.each_context(request),
            "title": _("Are you sure?"),
            "subtitle": None,
            "opts": self.opts,
            "job": job,
            "operation": action,
            "question": str(action.confirm_question) % {"task_id": job.task_id},
            "confirm_label": _("Yes, %(operation)s") % {"operation": action.label},
            "load_summary": selectors.sync_job_load_summary(job),
            "has_view_permission": True,
        }
        return TemplateResponse(request, "admin/batchsync/syncjob/confirm_operation.html", context)

    def timeline_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The job page's timeline panel as an HTML fragment (htmx swaps it in while the job lives)."""
        job = self._job_or_404(request, object_id)
        if not self.has_view_or_change_permission(request, job):
            raise PermissionDenied
        context = {"job": job, "events": list(selectors.sync_job_events(job))}
        return TemplateResponse(request, "admin/batchsync/syncjob/_timeline_events.html", context)

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
        warnings = finding_selectors.finding_summaries(job.start_date, job.end_date) if changed else {}
        details = {
            day.date.isoformat(): {
                "state": day_state(day.status, day.skip_reason),
                "rows": day.rows,
                "duration": format_duration(day.duration_seconds),
                "attempts": day.attempts,
                "error": day.last_error,
                "warnings": warnings.get(day.date, ""),
                "tooltip": day_tooltip(day, warnings.get(day.date, "")),
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
                # What this user may do now: the page shows exactly these buttons.
                "operations": operations.operations_allowed(job, request.user),
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
