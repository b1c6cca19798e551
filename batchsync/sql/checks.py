"""Data checks over a loaded day (batchsync.checks)."""

from __future__ import annotations

from batchsync.sql.tables import ADJ_FACTOR_TABLE, BAR_TABLE, LOADED_DAY_TABLE, SESSION_TABLE
from batchsync.sql.verify import CHECKSUM_COLUMNS

# Each row check: its condition over one of the day's rows (`bar`, with `previous_close` and
# `ex_rights` from the previous trading day). Tolerances are `%(tolerance_<name>)s`.
DATA_CHECK_CONDITIONS: dict[str, str] = {
    "ts_code_format": "bar.ts_code !~ %(ts_code_pattern)s",
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
    # multiplied out by vol (> 0 here), no division.
    "implied_price_range": "bar.vol > 0 AND (bar.amount * 10"
    " NOT BETWEEN bar.vol * bar.low * (1 - %(tolerance_implied_price_range)s)"
    " AND bar.vol * bar.high * (1 + %(tolerance_implied_price_range)s))",
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

# The previous trading day (from the stored calendar, else the table's latest earlier day) and
# its row count (recorded at load, else counted), for the checks that compare with it. Also
# turns JIT off for the rest of the day's transaction (SET LOCAL): compiling the checks'
# expressions costs 60 ms, ten times what running them costs on 5,500 rows.
DATA_CHECKS_PREVIOUS_DAY = f"""
SELECT previous.day, CASE WHEN previous.day IS NOT NULL THEN coalesce(
    (SELECT rows FROM {LOADED_DAY_TABLE} WHERE trade_date = previous.day),
    (SELECT count(*) FROM {BAR_TABLE} WHERE trade_date = previous.day)
) END
FROM set_config('jit', 'off', true), (SELECT coalesce(
    (SELECT max(date) FROM {SESSION_TABLE} WHERE calendar = %(calendar)s AND date < %(day)s),
    (SELECT max(trade_date) FROM {BAR_TABLE} WHERE trade_date < %(day)s)
) AS day) previous
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
WHERE %(on_row_count_band)s AND %(previous_rows)s::bigint > 0
  AND abs(day.rows - %(previous_rows)s) > %(tolerance_row_count_band)s * %(previous_rows)s
"""
