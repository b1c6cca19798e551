"""Data checks over a loaded day (batchsync.checks)."""

from __future__ import annotations

from batchsync.sql.tables import ADJ_FACTOR_TABLE, BAR_TABLE, LOADED_DAY_TABLE, SESSION_TABLE
from batchsync.sql.verify import CHECKSUM_COLUMNS

# The default pattern `^[0-9]{6}\.(SH|SZ|BJ)$` as byte functions: 9 bytes whose leading digits,
# stripped, leave `.SH`, `.SZ` or `.BJ`: exactly the codes it matches (a test compares them), at
# a seventh of a regular expression's cost (which converts every code to wide characters
# first) and half of `ltrim` on text (which handles multibyte characters). `textsend` gives the
# code's bytes as this UTF8 client reads them; a non-ASCII byte is never a digit nor `.SH`.
# `%(ts_code_default)s`: the pattern is the default (`conf.DEFAULT_TS_CODE_PATTERN`).
_TS_CODE_BAD = (
    "CASE WHEN %(ts_code_default)s THEN NOT (octet_length(bar.ts_code) = 9"
    " AND ltrim(textsend(bar.ts_code), '0123456789'::bytea) IN ('.SH'::bytea, '.SZ'::bytea, '.BJ'::bytea))"
    " ELSE bar.ts_code !~ %(ts_code_pattern)s END"
)
# Each row check: its condition over one of the day's rows (`bar`, with `previous_close` and
# `ex_rights` from the previous trading day). Tolerances are `%(tolerance_<name>)s`.
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


def trading_day_next_to(day: str, *, after: bool) -> str:
    """SQL for the trading day before (or `after`) `day`: the stored calendar's, else the table's."""
    pick, compare = ("min", ">") if after else ("max", "<")
    return (
        f"coalesce((SELECT {pick}(date) FROM {SESSION_TABLE}"
        f" WHERE calendar = %(calendar)s AND date {compare} {day}),"
        f" (SELECT {pick}(trade_date) FROM {BAR_TABLE} WHERE trade_date {compare} {day}))"
    )


# The previous trading day (from the stored calendar, else the table's latest earlier day), its
# row count (recorded at load, else counted) and its recorded checksum, for the checks that
# compare with it (and the record of what they compared with: `LoadedDay.previous_checksum`).
# Also turns JIT off for the rest of the day's transaction (SET LOCAL): compiling the checks'
# expressions costs 60 ms, ten times what running them costs on 5,500 rows; and nested loops
# and merge joins for the next statement (`DATA_CHECKS_SUSPECTS`, which turns them back).
# OFFSET 0: the previous day is found once, not copied into each of its uses (planning
# took 1.5 ms, more than running it).
DATA_CHECKS_PREVIOUS_DAY = f"""
SELECT previous.day, CASE WHEN previous.day IS NOT NULL THEN coalesce(
    recorded.rows, (SELECT count(*) FROM {BAR_TABLE} WHERE trade_date = previous.day)
) END, recorded.checksum
FROM set_config('jit', 'off', true), set_config('enable_nestloop', 'off', true) nestloop,
    set_config('enable_mergejoin', 'off', true) mergejoin,
    (SELECT {trading_day_next_to("%(day)s", after=False)} AS day OFFSET 0) previous
    LEFT JOIN {LOADED_DAY_TABLE} recorded ON recorded.trade_date = previous.day
"""

# After a day commits, what its previous-day checks still owe (`services.loaded_day_neighbours_check`):
# whether the day's own comparison is due (its checks ran while the previous trading day had no
# rows, as when a parallel worker was loading it, and that day has a load record now), and the
# next trading day when it is loaded and its checks compared another version of this day's rows
# or none. One row, or none when the day has no load record.
LOADED_DAY_NEIGHBOURS_DUE = f"""
SELECT here.previous_checksum IS NULL AND EXISTS (
        SELECT 1 FROM {LOADED_DAY_TABLE} earlier
        WHERE earlier.trade_date = {trading_day_next_to("here.trade_date", after=False)}),
    (SELECT upcoming.trade_date FROM {LOADED_DAY_TABLE} upcoming
     WHERE upcoming.trade_date = {trading_day_next_to("here.trade_date", after=True)}
        AND upcoming.previous_checksum IS DISTINCT FROM here.checksum)
FROM {LOADED_DAY_TABLE} here WHERE here.trade_date = %(day)s
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
