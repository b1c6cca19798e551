"""Queueing from the pages: the refused start's link to the blocking job, the retry's queue form,
and a queued job's place (what it waits behind, how many run before it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from batchsync import bounds, operations
from batchsync.exceptions import SyncAlreadyRunning
from batchsync.models import SyncJob
from batchsync.queue_selectors import sync_job_queue_place

if TYPE_CHECKING:
    from django.http import HttpRequest, QueryDict

QUEUE_SUBMIT = "_queue"  # the "queue behind it" button of the refused start form


class RetryQueueForm(forms.Form):
    """The retry button's options: queue behind the running job, with a priority."""

    queue = forms.BooleanField(required=False)
    priority = forms.IntegerField(label=gettext_lazy("priority"), required=False, **bounds.PRIORITY.limits)

    def retry_options(self) -> dict[str, Any]:
        """`queue` and `priority` for `services.sync_job_retry` (priority: the job's when left out)."""
        if not self.is_valid():
            return {}
        return {"queue": self.cleaned_data["queue"], "priority": self.cleaned_data["priority"]}


def job_url(job: SyncJob) -> str:
    return reverse("admin:batchsync_syncjob_change", args=[job.pk])


def start_data_with_queue(data: QueryDict) -> QueryDict:
    """The start form's data, with `queue` ticked when "queue behind it" was the button pressed."""
    if QUEUE_SUBMIT not in data:
        return data
    queued = data.copy()
    queued["queue"] = "on"
    return queued


def blocking_job(error: SyncAlreadyRunning) -> SyncJob | None:
    """The job a refused start waits for, when the refusal names it."""
    return SyncJob.objects.filter(pk=error.job_id).first() if error.job_id else None


def refusal_message(error: SyncAlreadyRunning) -> SafeString | str:
    """The refusal with the blocking job named and linked to its page."""
    holder = blocking_job(error)
    if holder is None:
        return error.message
    return format_html(
        '{} <a href="{}" class="bs-blocking-job">{}</a> ({}, {}%)',
        _("A sync job is already running:"),
        job_url(holder),
        holder.task_id,
        holder.get_status_display(),
        f"{holder.progress_percent:.1f}",
    )


def queue_context(job: SyncJob, request: HttpRequest) -> dict[str, Any]:
    """The job page's queue parts: its place when queued, the queued retry when another job runs."""
    place = sync_job_queue_place(job)
    holder = SyncJob.objects.active().exclude(pk=job.pk).first()  # asked always: one query per page
    if "retry" not in operations.operations_allowed(job, request.user):
        holder = None
    return {
        "queue_place": place,
        "queue_holder_url": reverse("admin:batchsync_syncjob_change", args=[place.holder_id])
        if place and place.holder_id
        else "",
        "retry_blocked_by": holder,
        "retry_blocked_by_url": job_url(holder) if holder else "",
        "retry_queue_form": RetryQueueForm(initial={"priority": job.priority}),
    }
