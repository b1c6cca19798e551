"""The service layer: every write to jobs, days and errors, and every status transition.

One module per concern, each named for what it decides:

- `planning`: the one request builder (every rule and bound of a request) and the plan
  (which days a job loads);
- `lifecycle`: the operator's transitions (create, retry, cancel, pause, resume) and the queue;
- `workers`: the worker protocol (join, claim, fence, heartbeat, abort, take-over);
- `progress`: a job's counts, rows and ETA, recomputed after every day;
- `completion`: when a job's run ends and which queued job gets the slot next;
- `recovery`: the reaper, and ending the database sessions of lost workers;
- `provenance`: which source, options and job loaded each day, and its checksum;
- `locks`: the start slot, job row locks and lease deadlines they all share.

Callers use this package's surface (`from batchsync import services; services.sync_job_create`).
"""

from batchsync.services.completion import sync_job_finish_if_done
from batchsync.services.lifecycle import (
    TRANSITIONS,
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
    "ClaimedDay",
    "DayOrigin",
    "DayPlan",
    "DayProvenance",
    "JobProgress",
    "JobRequest",
    "PlanSummary",
    "loaded_day_record",
    "other_source_note",
    "skip_reason_label",
    "source_options_fingerprint",
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
    "sync_worker_heartbeat",
    "sync_workers_abort",
]
