"""Push: job and day events over LISTEN/NOTIFY (services.notify, api.streams)."""

from __future__ import annotations

from batchsync.sql.tables import with_tables

# The one channel every job and day event goes to; listeners filter by the payload's task id.
EVENTS_CHANNEL = "batchsync_job_events"
EVENTS_LISTEN = f"LISTEN {EVENTS_CHANNEL}"
# One event of a job: its task id, status and counts as this transaction sees them, plus, for
# a day event (by the day's id), the day's date, status, rows and finish time; `sent_at` is
# when the event was made. NOTIFY sends it in the caller's transaction, so PostgreSQL delivers
# it on commit, never on rollback; an event stream reads it as the job's state when it opens.
JOB_EVENT_PAYLOAD = with_tables(
    """
SELECT json_build_object(
    'task_id', job.task_id,
    'kind', %(kind)s::text,
    'status', job.status,
    'total_days', job.total_days,
    'processed_days', job.processed_days,
    'success_days', job.success_days,
    'failed_days', job.failed_days,
    'skipped_days', job.skipped_days,
    'rows_loaded', job.rows_loaded,
    'date', day.date,
    'day_status', day.status,
    'day_rows', day.rows,
    'day_finished_at', day.finished_at,
    'sent_at', clock_timestamp()
)::text AS payload
FROM {job_table} job LEFT JOIN {day_table} day ON day.id = %(day)s::bigint
WHERE job.id = coalesce(%(job)s::bigint, (SELECT job_id FROM {day_table} WHERE id = %(day)s::bigint))
"""
)
JOB_EVENT_NOTIFY = f"SELECT pg_notify(%(channel)s, event.payload) FROM ({JOB_EVENT_PAYLOAD}) event"
