"""The job list's live rows: compact columns, and a fragment endpoint the list's script swaps in.

The list polls `rows/?ids=...` every few seconds while a listed job is active, and at once when
the every-job event stream (`api.streams`) reports a change; each cell comes back rendered by the
same column methods as the page itself, so no formatting is repeated in JavaScript.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy

from batchsync.models import ACTIVE_STATUSES, WORKING_STATUSES, SyncJob
from batchsync.templatetags.batchsync_display import format_duration, format_local, status_badge

if TYPE_CHECKING:
    SyncJobAdminBase = admin.ModelAdmin[SyncJob]
else:
    SyncJobAdminBase = admin.ModelAdmin

# The list's columns: the essentials first (a phone shows only task id, status and progress).
LIVE_LIST_DISPLAY = (
    "task_id",
    "live_status",
    "live_progress",
    "timing",
    "eta",
    "source",
    "kind",
    "requested_by",
)
LIVE_COLUMNS = ("live_status", "live_progress", "timing", "eta")  # what a running job changes
MAX_ROWS = 200  # a list page shows at most 50; a refresh asks for the rows it shows


class LiveJobListMixin(SyncJobAdminBase):
    """Compact, live columns for the job list, and the `rows/` fragment endpoint."""

    # Provided by the job admin (its progress bar and counts columns).
    progress: Callable[[SyncJob], SafeString]
    counts: Callable[[SyncJob], SafeString]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """The list, with its live scripts (the job page loads its own)."""
        response = super().changelist_view(request, extra_context)
        context = getattr(response, "context_data", None)
        if context is not None and "media" in context:
            context["media"] += forms.Media(
                css={"all": ["batchsync/live.css"]}, js=["batchsync/live_events.js", "batchsync/job_list.js"]
            )
        return response

    def get_urls(self) -> list[URLPattern]:
        rows = path(
            "rows/",
            self.admin_site.admin_view(self.rows_view),
            name=f"{self.opts.app_label}_{self.opts.model_name}_rows",
        )
        return [rows, *super().get_urls()]

    @admin.display(description=gettext_lazy("status"), ordering="status")
    def live_status(self, job: SyncJob) -> SafeString:
        """The status badge, marked for the list's script: the job's id and whether it is active."""
        return format_html(
            '<span class="bs-live-row" data-bs-job="{}" data-bs-active="{}" data-bs-rows-url="{}" '
            'data-bs-events-url="{}">{}</span>',
            job.pk,
            "1" if job.status in ACTIVE_STATUSES else "0",
            reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_rows"),
            reverse("sync-batch-events"),
            status_badge(job.status, job.get_status_display()),
        )

    @admin.display(description=gettext_lazy("progress"), ordering="processed_days")
    def live_progress(self, job: SyncJob) -> SafeString:
        """A compact bar, with the day counts (and the day in flight) on a small line below."""
        current = ""
        if job.status in WORKING_STATUSES and job.current_date:
            current = format_html(' · <span class="bs-list-current">{}</span>', job.current_date.isoformat())
        return format_html(
            '<div class="bs-list-progress">{}<div class="bs-list-counts">{}{}</div></div>',
            self.progress(job),
            self.counts(job),
            current,
        )

    @admin.display(description=gettext_lazy("started · duration"), ordering="started_at")
    def timing(self, job: SyncJob) -> SafeString:
        return format_html(
            '<span class="bs-list-started">{}</span><span class="bs-list-duration">{}</span>',
            format_local(job.started_at),
            format_duration(job.duration_seconds),
        )

    def rows_view(self, request: HttpRequest) -> HttpResponse:
        """JSON: for each asked job, its live cells as HTML (`td.field-<name>`) and whether it is active."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        ids = [int(part) for part in request.GET.get("ids", "").split(",") if part.strip().isdigit()]
        jobs = SyncJob.objects.filter(pk__in=ids[:MAX_ROWS])
        rows: dict[str, Any] = {
            str(job.pk): {
                "active": job.status in ACTIVE_STATUSES,
                "cells": {name: str(getattr(self, name)(job)) for name in LIVE_COLUMNS},
            }
            for job in jobs
        }
        return JsonResponse({"rows": rows})
