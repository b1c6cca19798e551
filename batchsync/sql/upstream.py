"""The postgres source's statements, run on the upstream server (sources.postgres)."""

from __future__ import annotations

from psycopg import sql


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
