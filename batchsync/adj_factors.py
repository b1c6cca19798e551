"""COPY a day's adjustment factors into `adj_factor`, replacing the day's, on the bars' cursor.

Like `loader.replace_day` it knows nothing of jobs: the caller's transaction holds the bars and
the factors together, so a rollback takes both back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import psycopg

from batchsync import sql
from batchsync.exceptions import LoadError


def adj_factors_replace(cursor: Any, day: dt.date, factors: Sequence[Sequence[Any]], origin: str) -> int:
    """Replace `day`'s factors with `factors` (ts_code, trade_date, adj_factor); return the rows loaded."""
    cursor.execute(sql.ADJ_FACTORS_DELETE_DAY, [day])
    try:
        with cursor.copy(sql.adj_factors_copy(day)) as copy:
            for row in factors:
                copy.write_row(row)
    except (psycopg.DataError, psycopg.IntegrityError) as error:
        reason = (error.diag.message_primary or str(error)).strip()
        raise LoadError(f"{origin}: adj_factor: {reason}", file=origin, column="adj_factor") from error
    copied = int(cursor.rowcount)
    if copied != len(factors):
        raise LoadError(
            f"{origin}: adj_factor: {len(factors) - copied} row(s) have a trade_date other than "
            f"{day.isoformat()}",
            file=origin,
            column="trade_date",
        )
    return copied
