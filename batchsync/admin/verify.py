"""Admin actions that start a verify job: over the ranges of selected jobs, or selected loaded days."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.db.models import Max, Min, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from batchsync import dispatch, services
from batchsync.exceptions import BatchSyncError
from batchsync.models import LoadedDay, SyncJob, VerifyMode
from batchsync.permissions import ADD_JOBS

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

AdminAction = Callable[[Any, HttpRequest, QuerySet[Any]], None]


def verify_start(model_admin: Any, request: HttpRequest, start: dt.date, end: dt.date, mode: str) -> None:
    """Create a verify job over start..end (queued behind a running job) and say so."""
    try:
        job_request = services.verify_request_build(
            start_date=start, end_date=end, mode=mode, queue=True, requested_by=request.user.get_username()
        )
        with dispatch.handoff() as handoff:
            job = services.verify_job_create(job_request)
    except BatchSyncError as error:
        model_admin.message_user(request, error.message, messages.ERROR)
        return
    if handoff.failure is not None:
        model_admin.message_user(request, handoff.failure.message, messages.WARNING)
        return
    model_admin.message_user(
        request,
        _("Verify job %(job)s (%(start)s .. %(end)s): %(message)s")
        % {"job": job.task_id, "start": start, "end": end, "message": job.message},
        messages.SUCCESS,
    )


def _jobs_action(mode: str, description: StrOrPromise) -> AdminAction:
    def action(model_admin: Any, request: HttpRequest, queryset: QuerySet[SyncJob]) -> None:
        span = queryset.aggregate(start=Min("start_date"), end=Max("end_date"))
        verify_start(model_admin, request, span["start"], span["end"], mode)

    action.__name__ = f"verify_jobs_{mode}"
    return admin.action(description=description, permissions=["verify"])(action)


def _days_action(mode: str, description: StrOrPromise) -> AdminAction:
    def action(model_admin: Any, request: HttpRequest, queryset: QuerySet[LoadedDay]) -> None:
        span = queryset.aggregate(start=Min("trade_date"), end=Max("trade_date"))
        verify_start(model_admin, request, span["start"], span["end"], mode)

    action.__name__ = f"verify_days_{mode}"
    return admin.action(description=description, permissions=["verify"])(action)


# On the job list: one verify job over the span of the selected jobs' ranges.
VERIFY_JOB_ACTIONS = [
    _jobs_action(VerifyMode.CHECKSUM, gettext_lazy("Verify the loaded days of the selected jobs' ranges")),
    _jobs_action(
        VerifyMode.AGAINST_SOURCE, gettext_lazy("Verify the selected jobs' ranges against their source")
    ),
    _jobs_action(VerifyMode.CHECKS, gettext_lazy("Run the data checks again over the selected jobs' ranges")),
]
# On the loaded days: one verify job from the first to the last selected day.
VERIFY_DAY_ACTIONS = [
    _days_action(VerifyMode.CHECKSUM, gettext_lazy("Verify the selected days (checksum)")),
    _days_action(VerifyMode.AGAINST_SOURCE, gettext_lazy("Verify the selected days against the source")),
    _days_action(VerifyMode.CHECKS, gettext_lazy("Run the data checks again over the selected days")),
]


def has_verify_permission(request: HttpRequest) -> bool:
    """Starting a verify job needs what starting a sync job needs."""
    return bool(request.user.has_perm(ADD_JOBS))
