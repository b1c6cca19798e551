"""Provenance of a loaded day (services.provenance) and verifying loaded days (batchsync.verify)."""

from __future__ import annotations

from batchsync.models import DailyBar
from batchsync.sources.base import BAR_COLUMNS
from batchsync.sql.tables import ADJ_FACTOR_TABLE, BAR_TABLE, LOADED_DAY_TABLE

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
    (trade_date, source, options_fingerprint, job_id, rows, checksum, loaded_at, previous_checksum)
SELECT %(day)s, %(source)s, %(fingerprint)s, %(job)s, count(*), {DAY_CHECKSUM}, %(now)s, %(previous_checksum)s
FROM {BAR_TABLE} bar WHERE bar.trade_date = %(day)s
ON CONFLICT (trade_date) DO UPDATE SET
    source = EXCLUDED.source, options_fingerprint = EXCLUDED.options_fingerprint,
    job_id = EXCLUDED.job_id, rows = EXCLUDED.rows, checksum = EXCLUDED.checksum,
    loaded_at = EXCLUDED.loaded_at, previous_checksum = EXCLUDED.previous_checksum
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
    for table in (BAR_TABLE, ADJ_FACTOR_TABLE)
)

SHADOW_DAY_CHECKSUM = (
    f"SELECT count(*), {DAY_CHECKSUM} FROM pg_temp.{BAR_TABLE} bar WHERE bar.trade_date = %s"
)
