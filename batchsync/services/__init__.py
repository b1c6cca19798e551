"""The service layer: every write to jobs, days and errors, and every status transition.

One module per concern, each named for what it decides:

- `planning`: the one request builder (every rule and bound of a request) and the plan
  (which days a job loads);
- `lifecycle`: the operator's transitions (create, retry, cancel, pause, resume) and the queue;
- `workers`: the worker protocol (join, claim, fence, heartbeat, abort, take-over);
- `progress`: a job's counts, rows and ETA, recomputed after every day;
- `completion`: when a job's run ends and which queued job gets the slot next;
- `recovery`: the reaper, and ending the database sessions of lost workers;
- `events`: a job's timeline (who did what, when), recorded by the others;
- `provenance`: which source, options and job loaded each day, and its checksum;
- `findings`: the data checks on a loaded day: fail it on an error, keep its warnings;
- `verify`: verify jobs, whose days are compared with what was loaded instead of loaded;
- `latest`: the latest published and the newest loaded trading day, and the `--latest` range;
- `schedules`: sync schedules, and the tick that starts the due ones;
- `locks`: the start slot, job row locks and lease deadlines they all share;
- `alerts`, `alert_delivery`, `freshness`: alerts recorded once and grouped, their
  deliveries, and the freshness deadlines of schedules (docs/alerts.md).

Callers use this package's surface (`from batchsync import services; services.sync_job_create`).
"""

from batchsync.services.alert_delivery import alert_deliver, alert_deliveries_send_due
from batchsync.services.alerts import alert_channels, alert_test_record
from batchsync.services.completion import sync_job_finish_if_done
from batchsync.services.events import job_event_record
from batchsync.services.findings import day_checks_enforce, day_findings_replace, loaded_day_neighbours_check
from batchsync.services.freshness import AlertsCheck, DeadlineCheck, alerts_check
from batchsync.services.latest import (
    LatestRange,
    latest_published_trading_day,
    latest_range,
    newest_loaded_trading_day,
)
from batchsync.services.lifecycle import (
    TRANSITIONS,
    status_sentence,
    sync_job_allowed_operations,
    sync_job_cancel,
    sync_job_check_transition,
    sync_job_create,
    sync_job_day_list,
    sync_job_pause,
    sync_job_rerun_days,
    sync_job_rerun_request,
    sync_job_resume,
    sync_job_retry,
    sync_job_retry_request,
)
from batchsync.services.planning import (
    DayPlan,
    JobRequest,
    PlanSummary,
    other_source_note,
    skip_reason_label,
    sync_days_format,
    sync_days_parse,
    sync_days_plan,
    sync_days_plan_summary,
    sync_request_build,
    sync_request_validate,
)
from batchsync.services.progress import JobProgress, sync_job_progress_commit
from batchsync.services.provenance import (
    DayOrigin,
    DayProvenance,
    loaded_day_record,
    source_options_fingerprint,
)
from batchsync.services.recovery import sync_days_fence_expired, sync_jobs_recover_stalled
from batchsync.services.schedules import (
    ScheduleRun,
    ScheduleSpec,
    cron_next,
    cron_validate,
    schedule_get,
    schedule_spec_validate,
    sync_schedule_create,
    sync_schedule_delete,
    sync_schedule_pause,
    sync_schedule_resume,
    sync_schedule_run_now,
    sync_schedule_update,
    sync_schedules_tick,
)
from batchsync.services.verify import verify_claimed_day, verify_job_create, verify_request_build
from batchsync.services.workers import (
    ClaimedDay,
    sync_day_claim,
    sync_day_lock_for_commit,
    sync_day_mark_succeeded,
    sync_day_record_failure,
    sync_day_record_retry,
    sync_job_join,
    sync_job_take_over,
    sync_job_worth_waiting,
    sync_worker_heartbeat,
    sync_workers_abort,
)

__all__ = [
    "TRANSITIONS",
    "AlertsCheck",
    "ClaimedDay",
    "DayOrigin",
    "DayPlan",
    "DayProvenance",
    "DeadlineCheck",
    "JobProgress",
    "JobRequest",
    "LatestRange",
    "PlanSummary",
    "ScheduleRun",
    "ScheduleSpec",
    "alert_channels",
    "alert_deliver",
    "alert_deliveries_send_due",
    "alert_test_record",
    "alerts_check",
    "cron_next",
    "cron_validate",
    "day_checks_enforce",
    "day_findings_replace",
    "job_event_record",
    "latest_published_trading_day",
    "latest_range",
    "loaded_day_neighbours_check",
    "loaded_day_record",
    "newest_loaded_trading_day",
    "other_source_note",
    "schedule_get",
    "schedule_spec_validate",
    "skip_reason_label",
    "source_options_fingerprint",
    "status_sentence",
    "sync_day_claim",
    "sync_day_lock_for_commit",
    "sync_day_mark_succeeded",
    "sync_day_record_failure",
    "sync_day_record_retry",
    "sync_days_fence_expired",
    "sync_days_format",
    "sync_days_parse",
    "sync_days_plan",
    "sync_days_plan_summary",
    "sync_job_allowed_operations",
    "sync_job_cancel",
    "sync_job_check_transition",
    "sync_job_create",
    "sync_job_day_list",
    "sync_job_finish_if_done",
    "sync_job_join",
    "sync_job_pause",
    "sync_job_progress_commit",
    "sync_job_rerun_days",
    "sync_job_rerun_request",
    "sync_job_resume",
    "sync_job_retry",
    "sync_job_retry_request",
    "sync_job_take_over",
    "sync_job_worth_waiting",
    "sync_jobs_recover_stalled",
    "sync_request_build",
    "sync_request_validate",
    "sync_schedule_create",
    "sync_schedule_delete",
    "sync_schedule_pause",
    "sync_schedule_resume",
    "sync_schedule_run_now",
    "sync_schedule_update",
    "sync_schedules_tick",
    "sync_worker_heartbeat",
    "sync_workers_abort",
    "verify_claimed_day",
    "verify_job_create",
    "verify_request_build",
]
