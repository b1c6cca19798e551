"""API routes: the seed's two paths exactly, plus control, history, days and errors."""

from __future__ import annotations

from django.urls import path, re_path, register_converter

from batchsync.api import alerts, bars, events, findings, rerun, schedules, streams, verify, views


class TaskIdConverter:
    """A job's task id (`2025-10-01_2025-10-09_1697587200`, optionally `_2`) or numeric id."""

    regex = views.TASK_ID_REGEX

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(TaskIdConverter, "taskid")


class ScheduleNameConverter(TaskIdConverter):
    """A schedule's name."""

    regex = schedules.NAME_REGEX


register_converter(ScheduleNameConverter, "schedule")

BATCH = "v1/sync-status/sync/batch"
SCHEDULES = "v1/sync-schedules"

urlpatterns = [
    path(BATCH, views.SyncJobBatchApi.as_view(), name="sync-batch"),
    path(
        f"{BATCH}/progress/<taskid:task_id>", views.SyncJobProgressApi.as_view(), name="sync-batch-progress"
    ),
    path(
        f"{BATCH}/progress/<taskid:task_id>/events",
        streams.sync_job_events_view,
        name="sync-batch-progress-events",
    ),
    path(f"{BATCH}/events", streams.sync_jobs_events_view, name="sync-batch-events"),
    path(f"{BATCH}/<taskid:task_id>/cancel", views.sync_job_cancel_view, name="sync-batch-cancel"),
    path(f"{BATCH}/<taskid:task_id>/pause", views.sync_job_pause_view, name="sync-batch-pause"),
    path(f"{BATCH}/<taskid:task_id>/resume", views.sync_job_resume_view, name="sync-batch-resume"),
    path(f"{BATCH}/<taskid:task_id>/retry", views.SyncJobRetryApi.as_view(), name="sync-batch-retry"),
    path(f"{BATCH}/<taskid:task_id>/rerun", rerun.SyncJobRerunApi.as_view(), name="sync-batch-rerun"),
    path(f"{BATCH}/<taskid:task_id>/days", views.SyncJobDaysApi.as_view(), name="sync-batch-days"),
    path(f"{BATCH}/<taskid:task_id>/errors", views.SyncJobErrorsApi.as_view(), name="sync-batch-errors"),
    path(f"{BATCH}/<taskid:task_id>/timeline", events.SyncJobEventsApi.as_view(), name="sync-batch-timeline"),
    path("v1/bars/adjusted", bars.AdjustedBarsApi.as_view(), name="bars-adjusted"),
    path("v1/sync-status/verify/batch", verify.VerifyJobBatchApi.as_view(), name="verify-batch"),
    path("v1/findings", findings.DayFindingListApi.as_view(), name="findings"),
    # Sync schedules (docs/schedules.md).
    path(SCHEDULES, schedules.SyncScheduleListApi.as_view(), name="sync-schedules"),
    path(f"{SCHEDULES}/<schedule:name>", schedules.SyncScheduleDetailApi.as_view(), name="sync-schedule"),
    path(
        f"{SCHEDULES}/<schedule:name>/pause", schedules.sync_schedule_pause_view, name="sync-schedule-pause"
    ),
    path(
        f"{SCHEDULES}/<schedule:name>/resume",
        schedules.sync_schedule_resume_view,
        name="sync-schedule-resume",
    ),
    path(
        f"{SCHEDULES}/<schedule:name>/run-now",
        schedules.sync_schedule_run_now_view,
        name="sync-schedule-run-now",
    ),
    path("v1/alerts", alerts.AlertListApi.as_view(), name="alerts"),
]
# Mounted last by the project's urls: every other /api/... URL is a 404 in the envelope.
not_found_urlpatterns = [re_path(r"^(?P<path>[\s\S]*)$", views.api_not_found)]
