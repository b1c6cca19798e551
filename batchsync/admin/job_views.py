"""The job pages: start form, live detail page and its fragments, control buttons, re-runs."""

from __future__ import annotations

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
)
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.translation import gettext as _

from batchsync import dispatch, operations, selectors, services
from batchsync.admin import job_page
from batchsync.admin.forms import SyncJobStartForm
from batchsync.admin.job_page import can_view_traceback
from batchsync.admin.queue_offer import (
    RetryQueueForm,
    blocking_job,
    refusal_message,
    start_data_with_queue,
)
from batchsync.exceptions import BatchSyncError, InvalidJobRequest, SyncAlreadyRunning, SyncUpToDate
from batchsync.models import (
    SyncJob,
)
from batchsync.templatetags.batchsync_display import (
    day_state,
    plan_months,
    state_legend,
)

if TYPE_CHECKING:  # django-stubs makes ModelAdmin generic; at run time it is not subscriptable
    SyncJobAdminBase = admin.ModelAdmin[SyncJob]
else:
    SyncJobAdminBase = admin.ModelAdmin

__all__ = ["SyncJobPagesAdmin", "can_view_traceback"]


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
            *(
                path(f"<path:object_id>/{name}/", wrap(view), name="{}_{}_{}".format(*info, name))
                for name, view in (
                    ("live", self.live_view),
                    ("month", self.month_view),
                    ("day", self.day_view),
                    ("rerun", self.rerun_view),
                    ("timeline", self.timeline_view),
                )
            ),
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
        """The job's page: progress, errors, the day grid (years, months on demand), operations."""
        if request.method not in ("GET", "HEAD"):
            return HttpResponseNotAllowed(["GET"])
        job = self._viewable_job(request, object_id)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Sync job %(task_id)s") % {"task_id": job.task_id},
            "subtitle": None,
            "opts": self.opts,
            "original": job,
            **job_page.job_page_context(request, job),
            "has_view_permission": True,
            "media": self.media,
            **(extra_context or {}),
        }
        return TemplateResponse(request, self.detail_template, context)

    def _viewable_job(self, request: HttpRequest, object_id: str) -> SyncJob:
        job = self._job_or_404(request, object_id)
        if not self.has_view_or_change_permission(request, job):
            raise PermissionDenied
        return job

    def live_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The page's one refresh: its live fragments (see `job_page.live_response`)."""
        return job_page.live_response(request, self._viewable_job(request, object_id))

    def month_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return job_page.month_response(request, self._viewable_job(request, object_id))

    def day_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return job_page.day_response(request, self._viewable_job(request, object_id))

    def rerun_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """POST: re-run chosen days of the job as a new job (change permission)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        job = self._job_or_404(request, object_id)
        if not job_page.can_rerun(request):
            raise PermissionDenied
        return job_page.rerun_response(request, job, self._job_url)

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
        job = self._viewable_job(request, object_id)
        context = {"job": job, "events": list(selectors.sync_job_events(job))}
        return TemplateResponse(request, "admin/batchsync/syncjob/_timeline_events.html", context)
