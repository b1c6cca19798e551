"""Raw SQL lives in the `batchsync/sql/` package alone, and names the models' tables."""

from __future__ import annotations

import ast

from batchsync import sql
from batchsync.models import DailyBar, SyncDay, SyncJob
from tests.conftest import PROJECT_DIR


def test_every_raw_statement_outside_the_sql_package_comes_from_it() -> None:
    sql_package = PROJECT_DIR / "batchsync" / "sql"
    strays = []
    for path in (PROJECT_DIR / "batchsync").rglob("*.py"):
        if "migrations" in path.parts or path.is_relative_to(sql_package):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            if node.func.attr not in ("execute", "copy", "raw") or not node.args:
                continue
            named_in_sql = ast.unparse(node.args[0]).startswith("sql.")
            if not named_in_sql:
                strays.append(f"{path.relative_to(PROJECT_DIR)}:{node.lineno}")
    assert strays == []


def test_statements_name_the_models_tables() -> None:
    assert SyncJob._meta.db_table in sql.CLAIM_LOCK_JOB
    assert SyncDay._meta.db_table in sql.CLAIM_DAY and SyncJob._meta.db_table in sql.CLAIM_DAY
    assert SyncDay._meta.db_table in sql.DAY_FENCE and SyncDay._meta.db_table in sql.LOCK_WAITS
    assert SyncJob._meta.db_table in sql.PROGRESS_REFRESH
    assert sql.BARS_DELETE_DAY.startswith(f"DELETE FROM {DailyBar._meta.db_table} ")
    assert "{" not in sql.CLAIM_DAY + sql.DAY_FENCE + sql.PROGRESS_REFRESH  # every table filled in
