"""Loading a day's bars (loader), the tushare calls' rate limit, and the source-stop lock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from psycopg import sql

from batchsync.sql.tables import BAR_TABLE

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
