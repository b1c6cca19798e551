"""Every raw SQL statement of batchsync, in one place; table names come from the models.

Raw SQL earns its place only where the ORM cannot say it or costs too much per day: the
claim (SKIP LOCKED, one round trip, run twice per day), the fence (FOR KEY SHARE, which the
ORM's `select_for_update` cannot ask for), the progress refresh (one statement after every
day), COPY (`loader`), advisory locks, session names and ends, and the activity views. The
rest of batchsync uses the ORM.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from psycopg import sql

from batchsync.models import AdjFactor, DailyBar, LoadedDay, SyncDay, SyncJob
from batchsync.sources.base import BAR_COLUMNS

JOB_TABLE = SyncJob._meta.db_table
DAY_TABLE = SyncDay._meta.db_table
BAR_TABLE = DailyBar._meta.db_table
LOADED_DAY_TABLE = LoadedDay._meta.db_table


def _tables(statement: str) -> str:
    """`statement` with `{job_table}` and `{day_table}` replaced by the models' tables."""
    return statement.replace("{job_table}", JOB_TABLE).replace("{day_table}", DAY_TABLE)


# --- claims, fences and progress (services.workers, services.progress) ---------------------------

# The claim's two statements (raw SQL: they run twice per day, and the ORM's compile time was
# most of the claim's cost). First the job row is locked and the transaction set to commit
# without a WAL flush (`set_config(..., true)` is SET LOCAL; see `commit_without_flush`).
# The second statement runs after the lock is granted, so its snapshot sees every claim
# committed before: the in-flight count is taken under the lock, as `parallelism` needs.
CLAIM_LOCK_JOB = _tables(
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
CLAIM_DAY = _tables(
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
DAY_FENCE = _tables(
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
PROGRESS_REFRESH = _tables(
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
LOCK_WAITS = _tables(
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


# --- sessions: names, ends, activity (runner, services.recovery, sessions) -----------------------

# Is the connection back (after an outage)?
PING = "SELECT 1"
# A worker names its sessions after itself (`application_name`, 63 characters at most).
SESSION_NAME_SET = "SELECT set_config('application_name', %s, false)"
# End the other sessions of this database named after the given workers; waits up to 2 s
# for each to be gone. Returns how many ended.
SESSIONS_END = (
    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 2000)) FROM pg_stat_activity "
    "WHERE datname = current_database() AND pid <> pg_backend_pid() "
    "AND application_name = ANY(%s)"
)
SESSIONS_ALIVE = (
    "SELECT DISTINCT application_name FROM pg_stat_activity "
    "WHERE datname = current_database() AND application_name = ANY(%s)"
)


# --- advisory locks (calendars) ------------------------------------------------------------------

# A transaction-scoped lock on a name (`batchsync.calendar:XSHG`), released at commit.
ADVISORY_XACT_LOCK = "SELECT pg_advisory_xact_lock(hashtext(%s))"


# --- loading a day's bars (loader) ----------------------------------------------------------------

BARS_DELETE_DAY = f"DELETE FROM {BAR_TABLE} WHERE trade_date = %s"


def bars_copy(columns: Sequence[str], day: dt.date, options: str) -> sql.Composed:
    """COPY into the bars table; only rows of `day` pass (`WHERE trade_date`), others are counted out."""
    return sql.SQL("COPY {} ({}) FROM STDIN {} WHERE trade_date = {}").format(
        sql.Identifier(BAR_TABLE),
        sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.SQL(options),
        sql.Literal(day),
    )


# The tushare calls' shared rate limit (migration 0007): each call takes the next free slot,
# `spacing` seconds after the one before, and sleeps until it. The row lock of the upsert
# orders concurrent callers of every machine; the result is the wait in seconds (<= 0: now).
TUSHARE_CALL_SLOT_TAKE = """
INSERT INTO tushare_rate_limit AS slot (key, next_at)
VALUES (%(key)s, clock_timestamp() + make_interval(secs => %(spacing)s))
ON CONFLICT (key) DO UPDATE
SET next_at = greatest(slot.next_at, clock_timestamp()) + make_interval(secs => %(spacing)s)
RETURNING extract(epoch FROM slot.next_at - make_interval(secs => %(spacing)s) - clock_timestamp())::float8
"""

# Serializes the workers of one job that meet a job-stopping source error (services.source_stop).
SOURCE_STOP_LOCK = "SELECT pg_advisory_xact_lock(hashtext('batchsync.source_stop'), %s)"

# --- provenance of a loaded day (services.provenance) ----------------------------------------------

# The columns a day's checksum covers (all but trade_date, the same for every row of the day),
# named, not `bar::text`: a column added to the table later leaves earlier checksums valid.
CHECKSUM_COLUMNS = tuple(column for column in BAR_COLUMNS if column != "trade_date")
_CHECKSUM_ROW = ", ',', ".join(f"bar.{column}" for column in CHECKSUM_COLUMNS)

# Each row as `ts_code,open,...,amount` (numerics as PostgreSQL prints them, at their column's
# scale; NULL as empty), in key order, joined and hashed: the same rows give the same checksum
# whatever order they were loaded in, and one changed value another. Run in the day's
# transaction right after its COPY, with the source and job that loaded it (one round trip).
# About 10 ms for 5,500 rows (docs/benchmarks.md): mostly turning numerics into text.
LOADED_DAY_RECORD = f"""
INSERT INTO {LOADED_DAY_TABLE} AS loaded
    (trade_date, source, options_fingerprint, job_id, rows, checksum, loaded_at)
SELECT %(day)s, %(source)s, %(fingerprint)s, %(job)s, count(*),
       md5(coalesce(string_agg(concat({_CHECKSUM_ROW}), E'\\n' ORDER BY bar.ts_code), '')), %(now)s
FROM {BAR_TABLE} bar WHERE bar.trade_date = %(day)s
ON CONFLICT (trade_date) DO UPDATE SET
    source = EXCLUDED.source, options_fingerprint = EXCLUDED.options_fingerprint,
    job_id = EXCLUDED.job_id, rows = EXCLUDED.rows, checksum = EXCLUDED.checksum,
    loaded_at = EXCLUDED.loaded_at
RETURNING loaded.rows, loaded.checksum
"""

# --- adjustment factors (batchsync.adj_factors) ----------------------------------------------------

ADJ_FACTOR_TABLE = AdjFactor._meta.db_table
ADJ_FACTOR_COLUMNS = ("ts_code", "trade_date", "adj_factor")
ADJ_FACTORS_DELETE_DAY = f"DELETE FROM {ADJ_FACTOR_TABLE} WHERE trade_date = %s"


def adj_factors_copy(day: dt.date) -> sql.Composed:
    """COPY rows of `ADJ_FACTOR_COLUMNS` into the factors table; only rows of `day` pass."""
    return sql.SQL("COPY {} ({}) FROM STDIN WHERE trade_date = {}").format(
        sql.Identifier(ADJ_FACTOR_TABLE),
        sql.SQL(", ").join(map(sql.Identifier, ADJ_FACTOR_COLUMNS)),
        sql.Literal(day),
    )


# One stock's bars with their factor (NULL where none is loaded) and its latest loaded factor:
# hfq = price x factor, qfq = price x factor / latest factor, both at the prices' scale (4 places).
ADJUSTED_BARS = f"""
SELECT bar.trade_date, bar.open, bar.high, bar.low, bar.close, factor.adj_factor,
       round(bar.open * factor.adj_factor / %(divisor)s, 4),
       round(bar.high * factor.adj_factor / %(divisor)s, 4),
       round(bar.low * factor.adj_factor / %(divisor)s, 4),
       round(bar.close * factor.adj_factor / %(divisor)s, 4)
FROM {BAR_TABLE} bar
LEFT JOIN {ADJ_FACTOR_TABLE} factor USING (trade_date, ts_code)
WHERE bar.ts_code = %(ts_code)s AND bar.trade_date BETWEEN %(start)s AND %(end)s
ORDER BY bar.trade_date
"""

# The stock's factor on the latest day one is loaded for (qfq's divisor).
ADJ_FACTOR_LATEST = f"""
SELECT adj_factor FROM {ADJ_FACTOR_TABLE} WHERE ts_code = %s ORDER BY trade_date DESC LIMIT 1
"""


# --- the postgres source's statements, run on the upstream server (sources.postgres) ---------------


def upstream_table_day(table: str, trade_date: str) -> sql.Composed:
    """The day's rows of an upstream table, filtered on its trade_date column."""
    return sql.SQL("SELECT * FROM {} WHERE {} = %(trade_date)s").format(
        sql.Identifier(*table.split(".")), sql.Identifier(trade_date)
    )


def upstream_columns_probe(read: sql.Composable) -> sql.Composed:
    """No rows, only the column names of what the upstream would send."""
    return sql.SQL("SELECT * FROM {} AS upstream LIMIT 0").format(read)


def upstream_copy_out(selected: sql.Composable, day_select: sql.Composable) -> sql.Composed:
    """The day as CSV with our header, our column names, from the upstream's COPY TO STDOUT."""
    return sql.SQL("COPY (SELECT {} FROM ({}) AS upstream) TO STDOUT (FORMAT csv, HEADER true)").format(
        selected, day_select
    )


# --- push: job and day events over LISTEN/NOTIFY (services.events, api.events) ------------------

# The one channel every job and day event goes to; listeners filter by the payload's task id.
EVENTS_CHANNEL = "batchsync_job_events"
EVENTS_LISTEN = f"LISTEN {EVENTS_CHANNEL}"
# One event of a job: its task id, status and counts as this transaction sees them, plus, for
# a day event (by the day's id), the day's date, status, rows and finish time; `sent_at` is
# when the event was made. NOTIFY sends it in the caller's transaction, so PostgreSQL delivers
# it on commit, never on rollback; an event stream reads it as the job's state when it opens.
JOB_EVENT_PAYLOAD = _tables(
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
