"""Adjustment factors (batchsync.adj_factors) and adjusted bars (batchsync.adjusted)."""

from __future__ import annotations

import datetime as dt

from psycopg import sql

from batchsync.sql.tables import ADJ_FACTOR_TABLE, BAR_TABLE
from batchsync.sql.verify import bar_value_at_scale

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
