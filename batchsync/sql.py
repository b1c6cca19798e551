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

from batchsync.models import AdjFactor, DailyBar, LoadedDay, SyncDay, SyncJob, TradingSession
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


def bar_value_at_scale(column: str) -> str:
    """`bar.<column>`, numerics cast to their model scale (the columns are plain `numeric`).

    A value loaded as `10.1` or `10.10000` is stored as sent (`batchsync.db_fields`) but reads
    and counts as `10.1000`, as it did when the columns were `numeric(14,4)`: checksums recorded
    before and after that change agree, and readers see one scale per column.
    """
    field = DailyBar._meta.get_field(column)
    places = getattr(field, "decimal_places", None)
    return f"bar.{column}::numeric({field.max_digits}, {places})" if places is not None else f"bar.{column}"  # type: ignore[union-attr]


# Each value as its type prints it (at its model's scale), NULL as empty: the text that
# `concat(a, ',', b, ...)` makes (checksums recorded with that form stay valid:
# tests/test_verify.py), spelled with `||` and `::text`, which PostgreSQL evaluates about a
# quarter faster than concat's variadic "any".
_CHECKSUM_ROW = " || ',' || ".join(
    f"coalesce(({bar_value_at_scale(column)})::text, '')" for column in CHECKSUM_COLUMNS
)

# The checksum of the rows of one day (aggregated over `bar`, rows of `daily_bar`): load and
# verify use this one expression, so a checksum recorded at load is comparable with one now.
DAY_CHECKSUM = f"md5(coalesce(string_agg({_CHECKSUM_ROW}, E'\\n' ORDER BY bar.ts_code), ''))"

# Each row as `ts_code,open,...,amount` (numerics as PostgreSQL prints them, at their model's
# scale; NULL as empty), in key order, joined and hashed: the same rows give the same checksum
# whatever order they were loaded in, and one changed value another. Run in the day's
# transaction right after its COPY, with the source and job that loaded it (one round trip).
# About 10 ms for 5,500 rows (docs/benchmarks.md): mostly turning numerics into text.
LOADED_DAY_RECORD = f"""
INSERT INTO {LOADED_DAY_TABLE} AS loaded
    (trade_date, source, options_fingerprint, job_id, rows, checksum, loaded_at)
SELECT %(day)s, %(source)s, %(fingerprint)s, %(job)s, count(*), {DAY_CHECKSUM}, %(now)s
FROM {BAR_TABLE} bar WHERE bar.trade_date = %(day)s
ON CONFLICT (trade_date) DO UPDATE SET
    source = EXCLUDED.source, options_fingerprint = EXCLUDED.options_fingerprint,
    job_id = EXCLUDED.job_id, rows = EXCLUDED.rows, checksum = EXCLUDED.checksum,
    loaded_at = EXCLUDED.loaded_at
RETURNING loaded.rows, loaded.checksum
"""

# --- verifying loaded days (batchsync.verify) --------------------------------------------------------

# Each day of a range with rows or a load record: what was recorded at load (rows, checksum,
# source, job; NULLs: no record) and what the day holds now (rows and DAY_CHECKSUM, that of
# no rows when it has none), in date order. One statement, one snapshot: a day loaded
# meanwhile is seen before or after its transaction, never half. The caller turns JIT off
# first (`VERIFY_JIT_OFF`): compiling the expressions costs more than it saves on a month.
DAYS_VERIFY = f"""
WITH now AS (
    SELECT bar.trade_date, count(*) AS rows, {DAY_CHECKSUM} AS checksum
    FROM {BAR_TABLE} bar
    WHERE bar.trade_date BETWEEN %(start)s AND %(end)s
    GROUP BY bar.trade_date
), recorded AS (
    SELECT trade_date, rows, checksum, source, job_id FROM {LOADED_DAY_TABLE}
    WHERE trade_date BETWEEN %(start)s AND %(end)s
)
SELECT coalesce(now.trade_date, recorded.trade_date), recorded.rows, recorded.checksum,
       recorded.source, recorded.job_id, coalesce(now.rows, 0), coalesce(now.checksum, md5(''))
FROM now FULL JOIN recorded ON recorded.trade_date = now.trade_date
ORDER BY 1
"""
VERIFY_JIT_OFF = "SET LOCAL jit = off"

# The dates of a range that hold bars: one index probe per day (a loose index scan), not a
# read of every row's key.
BAR_DAYS = f"""
WITH RECURSIVE day AS (
    (SELECT trade_date FROM {BAR_TABLE}
     WHERE trade_date BETWEEN %(start)s AND %(end)s ORDER BY trade_date LIMIT 1)
    UNION ALL
    SELECT (SELECT bar.trade_date FROM {BAR_TABLE} bar
            WHERE bar.trade_date > day.trade_date AND bar.trade_date <= %(end)s
            ORDER BY bar.trade_date LIMIT 1)
    FROM day WHERE day.trade_date IS NOT NULL
)
SELECT trade_date FROM day WHERE trade_date IS NOT NULL
"""


# Temporary tables named like the bars and factors tables, dropped with the transaction. A
# temporary table hides the real one of the same name from unqualified names, so the loader
# (and whatever it runs) COPYs a day fetched again into the copy, with the same columns,
# constraints and key, and `SHADOW_DAY_CHECKSUM` reads it back: the real tables are never
# written. The caller rolls the transaction back, which drops them.
SHADOW_TABLES = "; ".join(
    f"CREATE TEMPORARY TABLE {table} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
    "INCLUDING INDEXES) ON COMMIT DROP"
    for table in (BAR_TABLE, AdjFactor._meta.db_table)
)

SHADOW_DAY_CHECKSUM = (
    f"SELECT count(*), {DAY_CHECKSUM} FROM pg_temp.{BAR_TABLE} bar WHERE bar.trade_date = %s"
)

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
_RAW_PRICES = ", ".join(bar_value_at_scale(column) for column in ("open", "high", "low", "close"))
ADJUSTED_BARS = f"""
SELECT bar.trade_date, {_RAW_PRICES}, factor.adj_factor,
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


# --- data checks over a loaded day (batchsync.checks) ---------------------------------------------

SESSION_TABLE = TradingSession._meta.db_table

# Each row check: its condition over one of the day's rows (`bar`, with `previous_close` and
# `ex_rights` from the previous trading day). Tolerances are `%(tolerance_<name>)s`.
# The default pattern `^[0-9]{6}\.(SH|SZ|BJ)$` as string functions (digits stripped from the
# left leave `.SH`, `.SZ` or `.BJ`, in 9 bytes): exactly the codes it matches, at a third of a
# regular expression's cost (which converts every code to wide characters first).
# `%(ts_code_default)s`: the pattern is the default (`conf.DEFAULT_TS_CODE_PATTERN`).
_TS_CODE_BAD = (
    "CASE WHEN %(ts_code_default)s THEN NOT (octet_length(bar.ts_code) = 9"
    " AND ltrim(bar.ts_code, '0123456789') IN ('.SH', '.SZ', '.BJ'))"
    " ELSE bar.ts_code !~ %(ts_code_pattern)s END"
)
DATA_CHECK_CONDITIONS: dict[str, str] = {
    "ts_code_format": _TS_CODE_BAD,
    # Another row of the day has the same code once trimmed and upper-cased (the key itself
    # refuses exact repeats at COPY). Looked up only for the rare code that is not normalized.
    "duplicate_ts_code": f"""CASE WHEN bar.ts_code <> upper(btrim(bar.ts_code)) THEN EXISTS (
        SELECT 1 FROM {BAR_TABLE} other
        WHERE other.trade_date = bar.trade_date AND other.ts_code <> bar.ts_code
          AND upper(btrim(other.ts_code)) = upper(btrim(bar.ts_code))
    ) ELSE false END""",
    "high_low_range": "bar.high < greatest(bar.open, bar.close) OR bar.low > least(bar.open, bar.close)",
    # The table's constraints refuse these at load; here for days loaded before them.
    "price_positive": "least(bar.open, bar.high, bar.low, bar.close, bar.pre_close) <= 0"
    " OR 'NaN'::numeric IN (bar.open, bar.high, bar.low, bar.close, bar.pre_close)",
    "vol_amount_nonnegative": "least(bar.vol, bar.amount) < 0 OR 'NaN'::numeric IN (bar.vol, bar.amount)",
    "change_consistency": "abs(bar.change - (bar.close - bar.pre_close)) > %(tolerance_change_consistency)s",
    # |pct_chg - 100 x change / pre_close| > tolerance, multiplied out by pre_close (> 0 by
    # its constraint): numeric division costs several times a multiplication.
    "pct_chg_consistency": "abs(bar.pct_chg * bar.pre_close - 100 * bar.change)"
    " > %(tolerance_pct_chg_consistency)s * bar.pre_close",
    "pre_close_continuity": "NOT bar.ex_rights"
    " AND abs(bar.pre_close - bar.previous_close) > %(tolerance_pre_close_continuity)s",
    # amount (thousand yuan) x 1000 / (vol (lots) x 100): the day's average price, within
    # [low, high] widened by the tolerance (a fraction) for the rounding of amount and vol;
    # multiplied out by vol (> 0 here), no division; amount x 10 < vol x low x (1 - t) written
    # amount < vol x low x ((1 - t) x 0.1), exactly the same in numeric, where the constant
    # folds and `NOT BETWEEN` would compute amount x 10 twice: 4 multiplications a row, not 6.
    "implied_price_range": "bar.vol > 0"
    " AND (bar.amount < bar.vol * bar.low * ((1 - %(tolerance_implied_price_range)s) * 0.1)"
    " OR bar.amount > bar.vol * bar.high * ((1 + %(tolerance_implied_price_range)s) * 0.1))",
}
# Checks over the whole day rather than its rows.
DATA_CHECK_DAY_RULES = ("row_count_band",)

_EXAMPLE_ROW = (
    "json_build_object('ts_code', bar.ts_code, "
    + ", ".join(f"'{column}', bar.{column}::text" for column in CHECKSUM_COLUMNS if column != "ts_code")
    + ", 'previous_close', bar.previous_close::text)"
)


_DATA_CHECK_FLAGS = ",\n        ".join(
    f"%(on_{name})s AND coalesce(({condition}), false) AS {name}"
    for name, condition in DATA_CHECK_CONDITIONS.items()
)
_DATA_CHECK_ANY = " OR ".join(f"bar.{name}" for name in DATA_CHECK_CONDITIONS)
# A flagged row as JSON: its values and the names of the checks it failed (built for flagged rows only).
_DATA_CHECK_HIT = (
    "json_build_object('row', "
    + _EXAMPLE_ROW
    + ", 'checks', array_remove(ARRAY["
    + ", ".join(f"CASE WHEN bar.{name} THEN '{name}' END" for name in DATA_CHECK_CONDITIONS)
    + "], NULL))"
)

# Whether any check that is on may flag a row of the day, in one pass over its rows: a plain
# count of the rows any condition holds for (no flags kept, no JSON, no examples), plus 1 when
# the day's row count is out of its band. 0 (a clean day, the usual case) is the answer;
# otherwise `DATA_CHECKS` finds what each check flagged. Each condition here holds for every
# row its check flags (so nothing is missed), cheap tests first:
# - duplicate_ts_code: only a code that is not trimmed and upper-case can be one, and none
#   that passes the default format (so with that check on, its test covers this one);
# - change_consistency and pre_close_continuity: equal values (the usual case) need no
#   arithmetic; pre_close_continuity's ex-rights exception is looked up for the few rows that
#   differ only, two key lookups each, not over both days' factors.
_DATA_CHECK_MAY_FLAG = {
    **DATA_CHECK_CONDITIONS,
    "duplicate_ts_code": "NOT (%(on_ts_code_format)s AND %(ts_code_default)s)"
    " AND bar.ts_code <> upper(btrim(bar.ts_code))",
    "change_consistency": "bar.change <> bar.close - bar.pre_close AND "
    + DATA_CHECK_CONDITIONS["change_consistency"],
    "pre_close_continuity": f"""bar.pre_close <> yesterday.close
        AND abs(bar.pre_close - yesterday.close) > %(tolerance_pre_close_continuity)s
        -- ex-rights: both days have a factor and they differ (two key lookups, no join: this
        -- statement is planned with nested loops off)
        AND NOT coalesce(
            (SELECT adj_factor FROM {ADJ_FACTOR_TABLE}
             WHERE trade_date = %(day)s AND ts_code = bar.ts_code)
            <> (SELECT adj_factor FROM {ADJ_FACTOR_TABLE}
                WHERE trade_date = %(previous)s AND ts_code = bar.ts_code),
            false
        )""",
}
_ROW_COUNT_OUT_OF_BAND = (
    "%(on_row_count_band)s AND %(previous_rows)s::bigint > 0"
    " AND abs({rows} - %(previous_rows)s) > %(tolerance_row_count_band)s * %(previous_rows)s"
)
# The previous day's closes are joined straight from the table, hashed: `DATA_CHECKS_PREVIOUS_DAY`
# turned nested loops and merge joins off for the transaction (misled by a new day's row
# estimate, the planner probes yesterday's rows through the index 5,500 times: 20 ms, not 3),
# and this statement, once planned, turns them back to their defaults (`set_config(..., NULL,
# true)`: SET LOCAL ... TO DEFAULT). Cheaper than DATA_CHECKS's MATERIALIZED CTE (about 2 ms).
_DATA_CHECK_MAY_FLAG_ANY = " OR ".join(
    f"(%(on_{name})s AND ({condition}))" for name, condition in _DATA_CHECK_MAY_FLAG.items()
)
DATA_CHECKS_SUSPECTS = f"""
SELECT count(*) FILTER (WHERE {_DATA_CHECK_MAY_FLAG_ANY})
    + CASE WHEN {_ROW_COUNT_OUT_OF_BAND.format(rows="count(*)")} THEN 1 ELSE 0 END,
    set_config('enable_nestloop', NULL, true), set_config('enable_mergejoin', NULL, true)
FROM {BAR_TABLE} bar LEFT JOIN {BAR_TABLE} yesterday
    ON %(on_pre_close_continuity)s AND yesterday.trade_date = %(previous)s AND yesterday.ts_code = bar.ts_code
WHERE bar.trade_date = %(day)s
"""

# The previous trading day (from the stored calendar, else the table's latest earlier day) and
# its row count (recorded at load, else counted), for the checks that compare with it. Also
# turns JIT off for the rest of the day's transaction (SET LOCAL): compiling the checks'
# expressions costs 60 ms, ten times what running them costs on 5,500 rows; and nested loops
# and merge joins for the next statement (`DATA_CHECKS_SUSPECTS`, which turns them back).
# OFFSET 0: the previous day is found once, not copied into each of its four uses (planning
# took 1.5 ms, more than running it).
DATA_CHECKS_PREVIOUS_DAY = f"""
SELECT previous.day, CASE WHEN previous.day IS NOT NULL THEN coalesce(
    (SELECT rows FROM {LOADED_DAY_TABLE} WHERE trade_date = previous.day),
    (SELECT count(*) FROM {BAR_TABLE} WHERE trade_date = previous.day)
) END
FROM set_config('jit', 'off', true), set_config('enable_nestloop', 'off', true) nestloop,
    set_config('enable_mergejoin', 'off', true) mergejoin, (SELECT coalesce(
    (SELECT max(date) FROM {SESSION_TABLE} WHERE calendar = %(calendar)s AND date < %(day)s),
    (SELECT max(trade_date) FROM {BAR_TABLE} WHERE trade_date < %(day)s)
) AS day OFFSET 0) previous
"""

# Every check over the day's rows in ONE statement, one pass: a row per check that found
# something (name, rows flagged, up to 5 examples as JSON, in ts_code order). Run in the
# day's transaction after its COPY, after `DATA_CHECKS_PREVIOUS_DAY`, whose answers come in
# as `%(previous)s` (a constant the planner sees) and `%(previous_rows)s`. The previous day's
# closes and both days' adjustment factors are read only when `pre_close_continuity` is on
# (`%(on_...)s` folds their scans away).
DATA_CHECKS = f"""
WITH yesterday AS MATERIALIZED (
    -- MATERIALIZED: hashed once, never probed through the index row by row (a nested loop of
    -- 5,500 index lookups, which the planner picks when its estimate of the new day is low).
    SELECT ts_code, close FROM {BAR_TABLE}
    WHERE %(on_pre_close_continuity)s AND trade_date = %(previous)s
), ex_rights AS MATERIALIZED (
    -- Stocks whose adjustment factor differs between the two days.
    SELECT ts_code FROM {ADJ_FACTOR_TABLE}
    WHERE %(on_pre_close_continuity)s AND trade_date IN (%(day)s, %(previous)s)
    GROUP BY ts_code HAVING count(*) = 2 AND min(adj_factor) <> max(adj_factor)
), bar AS (
    SELECT today.*, yesterday.close AS previous_close, ex_rights.ts_code IS NOT NULL AS ex_rights
    FROM {BAR_TABLE} today
    LEFT JOIN yesterday ON yesterday.ts_code = today.ts_code
    LEFT JOIN ex_rights ON ex_rights.ts_code = today.ts_code
    WHERE today.trade_date = %(day)s
), flagged AS (
    -- Each condition once per row; OFFSET 0 keeps the planner from copying them into the
    -- two aggregates that read each flag.
    SELECT bar.*,
        {_DATA_CHECK_FLAGS}
    FROM bar OFFSET 0
), day AS (
    -- One pass, two aggregates: the day's rows, and its flagged rows (usually none) as JSON.
    SELECT count(*) AS rows,
           coalesce(json_agg({_DATA_CHECK_HIT} ORDER BY bar.ts_code) FILTER (WHERE {_DATA_CHECK_ANY}), '[]')
               AS hits
    FROM flagged bar
), hits AS (
    SELECT check_name, hit.value -> 'row' AS example, hit.n,
           row_number() OVER (PARTITION BY check_name ORDER BY hit.n) AS position
    FROM day, json_array_elements(day.hits) WITH ORDINALITY AS hit(value, n),
         json_array_elements_text(hit.value -> 'checks') AS check_name
)
SELECT check_name, count(*), json_agg(example ORDER BY n) FILTER (WHERE position <= 5)
FROM hits GROUP BY check_name
UNION ALL
SELECT 'row_count_band', abs(day.rows - %(previous_rows)s), json_build_array(json_build_object(
    'rows', day.rows, 'previous_rows', %(previous_rows)s::bigint, 'previous_date', %(previous)s::date))
FROM day
WHERE {_ROW_COUNT_OUT_OF_BAND.format(rows="day.rows")}
"""
# --- push: job and day events over LISTEN/NOTIFY (services.notify, api.streams) ------------------

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
