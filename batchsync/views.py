"""The /sync/ dashboard: the running (or last) job and the last 20 jobs, live, for logged-in users."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache

from batchsync import calendars, selectors
from batchsync.conf import get_settings
from batchsync.models import ACTIVE_STATUSES, SyncError, SyncJob, SyncJobStatus
from batchsync.permissions import VIEW_JOBS
from batchsync.templatetags.batchsync_display import format_local

RECENT_JOBS = 20
LOGIN_URL = "sync-login"  # a URL name; login_required and LogoutView resolve it

# The seed's text block starts with an emoji for the state of the job.
STATUS_EMOJI: dict[str, str] = {
    SyncJobStatus.PENDING: "🔄",
    SyncJobStatus.QUEUED: "⏳",
    SyncJobStatus.RUNNING: "🔄",
    SyncJobStatus.PAUSING: "⏸️",
    SyncJobStatus.PAUSED: "⏸️",
    SyncJobStatus.CANCELLING: "⏹️",
    SyncJobStatus.CANCELLED: "⏹️",
    SyncJobStatus.SUCCEEDED: "✅",
    SyncJobStatus.FAILED: "❌",
}


def _eta_text(job: SyncJob) -> str:
    """The ETA as the seed shows it (a time of day), with the date when it is not today."""
    if job.estimated_completion is None:
        return ""
    local = timezone.localtime(job.estimated_completion)
    if local.date() == timezone.localdate():
        return local.strftime("%H:%M:%S")
    return local.strftime("%Y-%m-%d %H:%M:%S")


def seed_status_block(job: SyncJob, errors: list[SyncError]) -> str:
    """The seed's text block: message, progress, counts, ETA and recent errors, one per line."""
    lines = [
        f"{STATUS_EMOJI.get(job.status, '')} {job.message}".strip(),
        _("Progress: %(current)s/%(total)s (%(percent)s%%)")
        % {"current": job.processed_days, "total": job.total_days, "percent": f"{job.progress_percent:.1f}"},
        _("Succeeded: %(success)s, failed: %(failed)s, skipped: %(skipped)s")
        % {"success": job.success_days, "failed": job.failed_days, "skipped": job.skipped_days},
    ]
    eta = _eta_text(job)
    if eta:
        lines.append(_("Estimated completion: %(time)s") % {"time": eta})
    if errors:
        lines += ["", "⚠️ " + _("Recent errors:")]
        lines += [f"  {error.date.isoformat() if error.date else '-'}: {error.error}" for error in errors]
    return "\n".join(lines)


def _dashboard_context(request: HttpRequest) -> dict[str, Any]:
    job = selectors.sync_job_current()
    errors = selectors.sync_job_recent_errors(job) if job is not None else []
    jobs = selectors.sync_job_list_recent(RECENT_JOBS)
    return {
        "job": job,
        "active": job is not None and job.status in ACTIVE_STATUSES,
        "seed_block": seed_status_block(job, errors) if job is not None else "",
        "errors": errors,
        "jobs": jobs,
        "show_admin_links": request.user.is_staff,
        "updated": format_local(timezone.now(), "%H:%M:%S"),
    }


def _require_view_permission(request: HttpRequest) -> None:
    if not request.user.has_perm(VIEW_JOBS):
        raise PermissionDenied


@never_cache
@login_required(login_url=LOGIN_URL)
def sync_dashboard(request: HttpRequest) -> HttpResponse:
    """The page: follows the running job (or the last one) and lists the last 20 jobs."""
    _require_view_permission(request)
    # On the page, not the polled panel: the calendar changes with a deploy, not by the second.
    calendar_warning = calendars.calendar_end_warning(get_settings().calendar, timezone.localdate())
    context = {**_dashboard_context(request), "calendar_warning": calendar_warning}
    return render(request, "batchsync/dashboard.html", context)


@never_cache
def sync_dashboard_panel(request: HttpRequest) -> HttpResponse:
    """The live part of the page as an HTML fragment; the page's script swaps it in."""
    if not request.user.is_authenticated:
        return HttpResponse(status=401)
    _require_view_permission(request)
    return render(request, "batchsync/_dashboard_panel.html", _dashboard_context(request))


class SyncLoginView(auth_views.LoginView):
    """Login for people who only follow progress (the admin's login admits staff only)."""

    template_name = "batchsync/login.html"
    redirect_authenticated_user = True
    next_page = "sync-dashboard"


class SyncLogoutView(auth_views.LogoutView):
    next_page = LOGIN_URL
