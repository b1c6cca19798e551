"""The job list: columns, search and the operator actions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.dateparse import parse_date
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from batchsync.admin.filters import CoversDateListFilter, SourceListFilter
from batchsync.admin.job_list import LIVE_LIST_DISPLAY, LiveJobListMixin
from batchsync.admin.job_views import SyncJobPagesAdmin
from batchsync.admin.queue_offer import refusal_message
from batchsync.admin.verify import VERIFY_JOB_ACTIONS, has_verify_permission
from batchsync.exceptions import BatchSyncError, SyncAlreadyRunning
from batchsync.models import SyncJob
from batchsync.operations import OPERATIONS, Operation
from batchsync.templatetags.batchsync_display import format_local, job_load_progress_tag


def _action_name(operation: Operation) -> str:
    return f"{operation.name}_jobs"


def _operation_action(
    operation: Operation,
) -> Callable[[SyncJobAdmin, HttpRequest, QuerySet[SyncJob]], HttpResponse | None]:
    """The list's action of an operation: `cancel_jobs`, ... (shown as the operation's action label)."""

    def action(
        model_admin: SyncJobAdmin, request: HttpRequest, queryset: QuerySet[SyncJob]
    ) -> HttpResponse | None:
        return model_admin.run_operation(request, queryset, operation)

    action.__name__ = _action_name(operation)
    return admin.action(description=operation.action_label)(action)


@admin.register(SyncJob)
class SyncJobAdmin(LiveJobListMixin, SyncJobPagesAdmin):
    """Jobs: list, live detail page, start form and operator actions; nothing is edited by hand."""

    list_display = LIVE_LIST_DISPLAY  # compact and live: admin/job_list.py
    list_display_links = ("task_id",)
    list_filter = ("status", "kind", SourceListFilter, "created_at", CoversDateListFilter)
    date_hierarchy = "created_at"
    search_fields = ("task_id",)
    search_help_text = gettext_lazy("Task id (or part of it), or a day YYYY-MM-DD the range covers.")
    ordering = ("-created_at", "-id")
    list_per_page = 50
    actions = [*(_operation_action(operation) for operation in OPERATIONS.values()), *VERIFY_JOB_ACTIONS]

    class Media:
        css = {"all": ("batchsync/batchsync.css",)}

    # No hand edits: jobs are created by the start form (services.sync_job_create), changed
    # only by operator actions (services), and never deleted from the admin.
    def has_delete_permission(self, request: HttpRequest, obj: SyncJob | None = None) -> bool:
        return False

    def has_verify_permission(self, request: HttpRequest) -> bool:
        return has_verify_permission(request)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[SyncJob], search_term: str
    ) -> tuple[QuerySet[SyncJob], bool]:
        day = parse_date(search_term.strip()) if search_term else None
        if day is not None:
            covered = queryset.filter(Q(start_date__lte=day, end_date__gte=day) | Q(task_id__icontains=day))
            return covered, False
        return super().get_search_results(request, queryset, search_term)

    # --- list columns ---

    @admin.display(description=gettext_lazy("loaded"), ordering="success_days")
    def progress(self, job: SyncJob) -> SafeString:
        return job_load_progress_tag(job)

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

    @admin.display(description=gettext_lazy("ETA"), ordering="estimated_completion")
    def eta(self, job: SyncJob) -> str:
        return format_local(job.estimated_completion)

    # --- actions: each calls a service; a refused transition is reported, the others go on ---

    def run_operation(
        self, request: HttpRequest, jobs: QuerySet[SyncJob], operation: Operation
    ) -> HttpResponse | None:
        """Apply the operation to each selected job, oldest first (after a confirmation if it asks one)."""
        if operation.needs_confirmation and not request.POST.get("confirmed"):
            return self._confirm_action(request, jobs, operation)
        done: list[str] = []
        for job in jobs.order_by("created_at", "id"):
            try:
                result = operation.run(job, requested_by=request.user.get_username())
            except SyncAlreadyRunning as error:  # a retry: name and link the running job
                self.message_user(request, refusal_message(error), messages.ERROR)
                continue
            except BatchSyncError as error:
                self.message_user(request, error.message, messages.ERROR)
                continue
            done.append(result.task_id)
        if done:
            self.message_user(
                request,
                _("%(operation)s: %(jobs)s") % {"operation": operation.label, "jobs": ", ".join(done)},
                messages.SUCCESS,
            )
        return None

    def _confirm_action(
        self, request: HttpRequest, jobs: QuerySet[SyncJob], operation: Operation
    ) -> TemplateResponse:
        """The list's confirmation page: the selected jobs, and the same action again, confirmed."""
        selected = list(jobs.order_by("created_at", "id"))
        context = {
            **self.admin_site.each_context(request),
            "title": _("Are you sure?"),
            "subtitle": None,
            "opts": self.opts,
            "operation": operation,
            "action_name": _action_name(operation),
            "jobs": selected,
            "questions": [str(operation.confirm_question) % {"task_id": job.task_id} for job in selected],
            "confirm_label": _("Yes, %(operation)s") % {"operation": operation.label},
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "has_view_permission": True,
        }
        return TemplateResponse(request, "admin/batchsync/syncjob/confirm_action.html", context)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        """The operations' actions, each only for users holding the operation's permissions."""
        actions = super().get_actions(request)
        for operation in OPERATIONS.values():
            if not operation.permitted(request.user):
                actions.pop(_action_name(operation), None)
        return actions
