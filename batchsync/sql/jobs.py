"""Claims, fences and progress of jobs and days (services.workers, services.progress)."""

from __future__ import annotations

from batchsync.sql.tables import with_tables

# The claim's two statements (raw SQL: they run twice per day, and the ORM's compile time was
# most of the claim's cost). First the job row is locked and the transaction set to commit
# without a WAL flush (`set_config(..., true)` is SET LOCAL; see `commit_without_flush`).
# The second statement runs after the lock is granted, so its snapshot sees every claim
# committed before: the in-flight count is taken under the lock, as `parallelism` needs.
CLAIM_LOCK_JOB = with_tables(
    """
SELECT job.parallelism, job.started_at, job.active_seconds, job.running_since, job.estimated_completion
FROM {job_table} job, set_config('synchronous_commit', 'off', true)
WHERE job.id = %(job)s AND job.status = %(job_running)s AND job.fence = %(fence)s
FOR NO KEY UPDATE OF job
"""
)
# Pick the earliest claimable day (SKIP LOCKED) when fewer than `parallelism` are in flight,
# take it unless it has used up its attempts, and note it on the job. Returns the picked
# day's id, and its new date/fence/attempts only if it was taken (NULLs: the caller fails it).
CLAIM_DAY = with_tables(
    """
WITH candidate AS (
    SELECT id FROM {day_table}
    WHERE job_id = %(job)s
      AND (status = %(pending)s OR (status = %(running)s AND lease_expires_at < %(now)s))
      AND (
          SELECT count(*) FROM {day_table}
          WHERE job_id = %(job)s AND status = %(running)s AND lease_expires_at >= %(now)s
      ) < %(parallelism)s
    ORDER BY date
    LIMIT 1
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE {day_table} day
    SET status = %(running)s, worker_id = %(worker)s, lease_expires_at = %(until)s,
        fence = day.fence + 1, attempts = day.attempts + 1, started_at = %(now)s
    FROM candidate
    WHERE day.id = candidate.id AND day.attempts < %(max_attempts)s
    RETURNING day.id, day.date, day.fence, day.attempts
), job AS (
    UPDATE {job_table}
    SET "current_date" = claimed.date, worker_id = %(worker)s, lease_expires_at = %(until)s
    FROM claimed
    WHERE {job_table}.id = %(job)s
)
SELECT candidate.id, claimed.date, claimed.fence, claimed.attempts
FROM candidate LEFT JOIN claimed ON claimed.id = candidate.id
"""
)


# The fence, checked inside the day's transaction: the day row is locked only if this worker
# still holds it (same fence, lease not run out) and the job is still working on the same run.
# OF day: locking the joined job row too would serialize every parallel worker's day on it.
# FOR KEY SHARE: enough to keep claims and releases (FOR UPDATE SKIP LOCKED) off the day until
# it commits, while the worker's heartbeat, from its own connection, can still renew the
# day's lease (an update of a non-key column does not wait for KEY SHARE).
DAY_FENCE = with_tables(
    """
SELECT day.id
FROM {day_table} day JOIN {job_table} job ON job.id = day.job_id
WHERE day.id = %(day)s AND day.status = %(running)s AND day.fence = %(fence)s
  AND day.worker_id = %(worker)s AND day.lease_expires_at >= %(now)s
  AND job.fence = %(job_fence)s AND job.status = ANY(%(working)s)
FOR KEY SHARE OF day
"""
)


# Counts, rows and ETA recomputed from the days and written in one statement (it runs after
# every day). `elapsed` is the job's active seconds, `eta` the caller's value (kept when there
# is nothing to estimate from yet).
PROGRESS_REFRESH = with_tables(
    """
UPDATE {job_table} job SET
    success_days = stats.success,
    failed_days = stats.failed,
    skipped_days = stats.skipped,
    processed_days = stats.success + stats.failed + stats.skipped,
    rows_loaded = stats.rows,
    -- The ETA: now + the days remaining x the seconds per attempted day so far, while the job
    -- works and a day was attempted; none once it stops or nothing remains; otherwise (no day
    -- attempted yet) the caller's ETA, unchanged.
    estimated_completion = CASE
        WHEN %(working)s AND stats.success + stats.failed > 0
             AND %(elapsed)s::float8 IS NOT NULL AND stats.remaining > 0
        THEN %(now)s::timestamptz + make_interval(
            secs => stats.remaining * (%(elapsed)s::float8 / (stats.success + stats.failed))
        )
        WHEN NOT %(working)s OR stats.remaining = 0 THEN NULL
        ELSE %(eta)s::timestamptz
    END
FROM (
    SELECT
        count(*) FILTER (WHERE status = %(succeeded)s) AS success,
        count(*) FILTER (WHERE status = %(failed)s) AS failed,
        count(*) FILTER (WHERE status = %(skipped)s) AS skipped,
        coalesce(sum(rows) FILTER (WHERE status = %(succeeded)s), 0) AS rows,
        count(*) FILTER (WHERE status IN (%(pending)s, %(running)s)) AS remaining
    FROM {day_table} WHERE job_id = %(job)s
) stats
WHERE job.id = %(job)s
RETURNING job.success_days, job.failed_days, job.skipped_days, job.rows_loaded, job.estimated_completion
"""
)


# Sessions of running days' workers that wait on a lock, what they wait for and since when
# (`waitstart`, PostgreSQL 14+), and who blocks them (`pg_blocking_pids`). `clock_timestamp`:
# `now()` would be the start of a surrounding transaction.
LOCK_WAITS = with_tables(
    """
SELECT day.date, day.worker_id, activity.pid,
       extract(epoch FROM clock_timestamp() - coalesce(wanted.waitstart, activity.state_change)),
       coalesce(
           wanted.mode || ' on ' || coalesce(wanted.relation::regclass::text, wanted.locktype), 'a lock'
       ),
       coalesce((
           SELECT json_agg(json_build_object(
               'pid', blocker.pid, 'application_name', blocker.application_name,
               'state', blocker.state,
               'transaction_seconds', extract(epoch FROM clock_timestamp() - blocker.xact_start)
           ) ORDER BY blocker.pid)
           FROM pg_stat_activity blocker WHERE blocker.pid = ANY(pg_blocking_pids(activity.pid))
       ), '[]')
FROM {day_table} day
JOIN pg_stat_activity activity
  ON activity.datname = current_database() AND activity.application_name = left(day.worker_id, 63)
LEFT JOIN LATERAL (
    SELECT mode, relation, locktype, waitstart FROM pg_locks
    WHERE pg_locks.pid = activity.pid AND NOT granted LIMIT 1
) wanted ON true
WHERE day.status = %(running)s AND day.worker_id <> '' AND activity.wait_event_type = 'Lock'
  AND {scope}
ORDER BY day.date, activity.pid
"""
)


# Within a transaction PostgreSQL answers from the activity snapshot it took at the first read.
FRESH_STATS = "SELECT pg_stat_clear_snapshot()"


# Lets this transaction commit without waiting for its WAL flush (see `progress.commit_without_flush`).
COMMIT_WITHOUT_FLUSH = "SET LOCAL synchronous_commit TO OFF"
