"""The models' tables, as the statements name them."""

from __future__ import annotations

from batchsync.models import AdjFactor, DailyBar, LoadedDay, SyncDay, SyncJob, TradingSession

JOB_TABLE = SyncJob._meta.db_table
DAY_TABLE = SyncDay._meta.db_table
BAR_TABLE = DailyBar._meta.db_table
LOADED_DAY_TABLE = LoadedDay._meta.db_table
ADJ_FACTOR_TABLE = AdjFactor._meta.db_table
SESSION_TABLE = TradingSession._meta.db_table


def with_tables(statement: str) -> str:
    """`statement` with `{job_table}` and `{day_table}` replaced by the models' tables."""
    return statement.replace("{job_table}", JOB_TABLE).replace("{day_table}", DAY_TABLE)
