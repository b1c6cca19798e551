"""The postgres source against a real upstream: another database of the same server."""

from __future__ import annotations

import datetime as dt
import gc
import io
import logging
import tracemalloc
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.test import Client
from django.utils import translation
from psycopg import sql as pgsql

from batchsync import loader
from batchsync.exceptions import InvalidJobRequest, SourceError
from batchsync.models import LoadedDay, SyncError, SyncJob
from batchsync.sources.demo import demo_day_csv
from batchsync.sources.postgres import PostgresSource
from tests.test_api import BATCH, make_user, token_client

SEP_1, SEP_2 = dt.date(2025, 9, 1), dt.date(2025, 9, 2)
RANGE = ("--start", "2025-09-01", "--end", "2025-09-02")
SECRET = "s3cret-pw"
ADMIN_ADD = "/admin/batchsync/syncjob/add/"
BARS_TABLE = """CREATE TABLE bars (
    ts_code text, trade_date date, open float8, high float8, low float8, close float8,
    pre_close float8, change float8, pct_chg float8, vol float8, amount float8)"""
# Other names, no pre_close/change/pct_chg, and an extra column: mapped with `columns`.
QUOTES_TABLE = """CREATE TABLE market.quotes AS SELECT ts_code AS code, trade_date AS day,
    open AS o, high AS h, low AS l, close AS c, vol AS volume, amount AS turnover, 'x' AS note FROM bars"""
QUOTES_COLUMNS = "ts_code=code, trade_date=day, open=o, high=h, low=l, close=c, vol=volume, amount=turnover"


@pytest.fixture(autouse=True)
def english() -> Iterator[None]:
    """Messages are asserted in English (one in Chinese, the default language, below)."""
    with translation.override("en"):
        yield


def _server_url(dbname: str) -> str:
    settings = connection.settings_dict
    host, port = settings["HOST"] or "127.0.0.1", settings["PORT"] or 5432
    return f"postgresql://{settings['USER']}@{host}:{port}/{dbname}"


@pytest.fixture
def upstream(db: None) -> Iterator[str]:
    """A database `<test database>_upstream` with the demo's 2025-09-01/02 bars; its URL."""
    name = f"{connection.settings_dict['NAME']}_upstream"
    admin_url = _server_url("postgres")
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(pgsql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(pgsql.Identifier(name)))
        admin.execute(pgsql.SQL("CREATE DATABASE {}").format(pgsql.Identifier(name)))
    url = _server_url(name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(BARS_TABLE)
        for day in (SEP_1, SEP_2):
            with conn.cursor().copy("COPY bars FROM STDIN (FORMAT csv, HEADER true)") as copy:
                copy.write(demo_day_csv(day))
        conn.execute("CREATE SCHEMA market")
        conn.execute(QUOTES_TABLE)
    yield url
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(pgsql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(pgsql.Identifier(name)))


@pytest.fixture
def no_retries(settings: Any) -> None:
    settings.BATCHSYNC = {**settings.BATCHSYNC, "SOURCE_RETRIES": 0}


def _command(*args: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("batch_sync", *args, stdout=out, stderr=err)
    except SystemExit as exited:
        return int(exited.code or 0), out.getvalue() + err.getvalue()
    except CommandError as error:  # call_command's form of the command's one-line error
        return error.returncode, str(error)
    return 0, out.getvalue() + err.getvalue()


def _day_rows(day: dt.date, columns: str = "*") -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns} FROM daily_bar WHERE trade_date = %s ORDER BY ts_code", [day])
        return list(cursor.fetchall())


def _provenance() -> dict[dt.date, tuple[str, int, str]]:
    return {day.trade_date: (day.source, day.rows, day.checksum) for day in LoadedDay.objects.all()}


def _load(source: PostgresSource, day: dt.date) -> int:
    with transaction.atomic(), connection.cursor() as cursor:
        return loader.replace_day(cursor, day, source.fetch_day(day))


@pytest.mark.django_db(transaction=True)
def test_loads_the_same_rows_and_checksums_as_the_csv_source(upstream: str, csv_dir: Path) -> None:
    for day in (SEP_1, SEP_2):
        (csv_dir / f"{day}.csv").write_bytes(demo_day_csv(day))
    assert _command("run", *RANGE, "--source", "csv", "--path", str(csv_dir))[0] == 0
    from_csv = {day: _day_rows(day) for day in (SEP_1, SEP_2)}
    csv_provenance = _provenance()

    code, out = _command(
        "run", *RANGE, "--source", "postgres", "--source-url", upstream, "--table", "bars", "--force"
    )
    assert code == 0, out
    assert {day: _day_rows(day) for day in (SEP_1, SEP_2)} == from_csv
    assert len(from_csv[SEP_1]) == 5500
    from_postgres = _provenance()
    assert {day: source for day, (source, _, _) in from_postgres.items()} == {
        SEP_1: "postgres",
        SEP_2: "postgres",
    }
    assert {day: value[1:] for day, value in from_postgres.items()} == {
        day: value[1:] for day, value in csv_provenance.items()
    }


@pytest.mark.django_db(transaction=True)
def test_a_table_with_other_column_names_loads_through_the_mapping(upstream: str) -> None:
    source = PostgresSource(source_url=upstream, table="market.quotes", columns=QUOTES_COLUMNS)
    source.validate()
    assert _load(source, SEP_1) == 5500
    loaded = _day_rows(SEP_1, "ts_code, open, close, vol, amount, pre_close")
    expected = PostgresSource(source_url=upstream, table="bars")
    assert _load(expected, SEP_1) == 5500
    assert [row[:5] for row in _day_rows(SEP_1, "ts_code, open, close, vol, amount, pre_close")] == [
        row[:5] for row in loaded
    ]
    assert {row[5] for row in loaded} == {None}  # not mapped, not in the upstream: left empty


@pytest.mark.django_db(transaction=True)
def test_a_query_with_the_trade_date_parameter_selects_the_day(upstream: str) -> None:
    query = "SELECT * FROM market.quotes WHERE day = %(trade_date)s AND code LIKE '6%%'"
    source = PostgresSource(source_url=upstream, query=query, columns=QUOTES_COLUMNS)
    source.validate()
    loaded = _load(source, SEP_2)
    assert 0 < loaded < 5500
    assert all(code.startswith("6") for (code,) in _day_rows(SEP_2, "ts_code"))


@pytest.mark.django_db
def test_missing_required_columns_fail_the_day_naming_the_upstream(upstream: str) -> None:
    source = PostgresSource(source_url=upstream, table="market.quotes")
    with pytest.raises(SourceError) as failed:
        _load(source, SEP_1)
    assert "market.quotes 2025-09-01: missing column(s) ts_code, trade_date, open, high" in str(failed.value)
    assert not failed.value.transient
    with translation.override("zh-hans"), pytest.raises(SourceError, match="缺少列 ts_code, trade_date"):
        _load(source, SEP_1)


@pytest.mark.parametrize(
    ("options", "field", "reason"),
    [
        ({}, "source_url", "needs a connection URL"),
        ({"source_url": "postgresql://u@h/db"}, "table", "a table or a query"),
        ({"source_url": "postgresql://u@h/db", "table": "t", "query": "x"}, "table", "a table or a query"),
        ({"source_url": "postgresql://u@h/db", "table": "t; drop"}, "table", "Not a table name"),
        ({"source_url": "postgresql://u@h/db", "query": "SELECT 1"}, "query", "%(trade_date)s"),
        (
            {"source_url": "postgresql://u@h/db", "table": "t", "columns": "open"},
            "columns",
            "not ours=theirs",
        ),
        (
            {"source_url": "postgresql://u@h/db", "table": "t", "columns": "opn=o"},
            "columns",
            "not a daily_bar",
        ),
        ({"source_url": "postgresql://u@h/db", "table": "t", "columns": "open=a,open=b"}, "columns", "twice"),
        ({"source_url": "host=h dbname", "table": "t"}, "source_url", "Not a PostgreSQL URL"),
    ],
)
def test_unusable_options_are_refused_naming_the_option(
    options: dict[str, str], field: str, reason: str
) -> None:
    with pytest.raises(InvalidJobRequest) as refused:
        PostgresSource(**options).validate()
    assert refused.value.field == field and reason in refused.value.message


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://u:{SECRET}@h/db",
        f"postgresql://u@h/db?password={SECRET}",
        f"host=h dbname=db password={SECRET}",
    ],
)
@pytest.mark.django_db
def test_a_password_in_the_url_is_refused_by_command_and_api_and_never_shown(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    code, out = _command("run", *RANGE, "--source", "postgres", "--source-url", url, "--table", "bars")
    assert code == 2 and out.startswith("--source-url: Put no password in source_url") and SECRET not in out
    client = token_client(make_user("operator", "view_syncjob", "add_syncjob", "change_syncjob"))
    body = {"start_date": "2025-09-01", "end_date": "2025-09-02", "source": "postgres",
            "source_options": {"source_url": url, "table": "bars"}}  # fmt: skip
    response = client.post(BATCH, body, format="json")
    assert response.status_code == 400 and SECRET not in response.content.decode()
    assert response.json()["status"] == "error"
    assert not SyncJob.objects.exists()
    assert SECRET not in caplog.text


@pytest.mark.django_db(transaction=True)
def test_a_password_from_the_environment_stays_out_of_the_job_errors_and_logs(
    upstream: str, no_retries: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("PGPASSWORD", SECRET)
    caplog.set_level(logging.DEBUG)
    code, out = _command("run", *RANGE, "--source", "postgres", "--source-url", upstream, "--table", "bars")
    assert code == 0, out
    unreachable = upstream.replace(upstream.split("/")[3], "nosuchdb_pgsrc")  # the server refuses it
    code, out = _command(
        "run", *RANGE, "--source", "postgres", "--source-url", unreachable, "--table", "bars", "--force"
    )
    assert code == 1
    errors = list(SyncError.objects.values_list("error", "traceback", "file"))
    assert errors and all("nosuchdb_pgsrc" in error and "upstream failed" in error for error, _, _ in errors)
    jobs = list(SyncJob.objects.values_list("source_options", flat=True))
    client = token_client(make_user("viewer", "view_syncjob"))
    answers = [client.get(f"{BATCH}/{job.task_id}/errors").content.decode() for job in SyncJob.objects.all()]
    for shown in [out, caplog.text, repr(errors), repr(jobs), *answers]:
        assert SECRET not in shown


@pytest.mark.django_db(transaction=True)
def test_an_upstream_that_disconnects_mid_copy_fails_the_day_and_keeps_the_old_rows(
    upstream: str, no_retries: None
) -> None:
    assert (
        _command("run", *RANGE, "--source", "postgres", "--source-url", upstream, "--table", "bars")[0] == 0
    )
    before, rows_before = _provenance(), _day_rows(SEP_1)
    # The upstream backend kills itself after 5,000 rows: a real disconnect in the middle of its COPY.
    query = (
        "SELECT b.*, CASE WHEN row_number() OVER () = 5000 THEN pg_terminate_backend(pg_backend_pid()) END"
        " AS boom FROM bars b WHERE trade_date = %(trade_date)s"
    )
    code, out = _command(
        "run", "--start", "2025-09-01", "--end", "2025-09-01", "--source", "postgres",
        "--source-url", upstream, "--query", query, "--force",
    )  # fmt: skip
    assert code == 1, out
    error = SyncError.objects.get()
    assert error.date == SEP_1 and "upstream failed" in error.error
    shown_url = upstream.replace("postgresql://", "postgres://", 1)  # as the source names an upstream
    assert error.file == f"{shown_url} query 2025-09-01"
    assert error.error.startswith(error.file + ": upstream failed: ")
    assert "terminat" in error.error or "closed" in error.error
    assert _provenance() == before and _day_rows(SEP_1) == rows_before


@pytest.mark.django_db(transaction=True)
def test_memory_stays_flat_while_a_big_day_streams(upstream: str) -> None:
    with psycopg.connect(upstream, autocommit=True) as conn:  # 60,000 bars for one day: ~7 MB of CSV
        conn.execute(
            "INSERT INTO bars SELECT lpad(n::text, 6, '0') || '.SZ', '2025-09-03', 10, 11, 9, 10.5, 10,"
            " 0.5, 5, 1000, 10000 FROM generate_series(1, 60000) AS n"
        )
    source = PostgresSource(source_url=upstream, table="bars")
    tracemalloc.start()
    try:
        assert _load(source, dt.date(2025, 9, 3)) == 60000
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000, f"peak {peak} bytes"


@pytest.mark.django_db(transaction=True)
def test_the_admin_start_form_starts_a_postgres_job_and_refuses_a_password(
    upstream: str, admin_client: Client
) -> None:
    admin_client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    form = {"start_date": "2025-09-01", "end_date": "2025-09-02", "source": "postgres",
            "reprocess": "failed", "parallelism": "1", "priority": "0"}  # fmt: skip
    refused = admin_client.post(
        ADMIN_ADD, {**form, "source_url": f"postgresql://u:{SECRET}@h/db", "table": "bars"}
    )
    assert refused.status_code == 200 and "Put no password in source_url" in refused.content.decode()
    assert SECRET not in refused.content.decode() and not SyncJob.objects.exists()
    started = admin_client.post(
        ADMIN_ADD, {**form, "source_url": upstream, "table": "bars", "columns": "vol=vol"}
    )
    assert started.status_code == 302
    job = SyncJob.objects.get()
    assert (job.source, job.source_options) == (
        "postgres",
        {"source_url": upstream, "table": "bars", "columns": "vol=vol"},
    )


@pytest.mark.django_db(transaction=True)
def test_a_run_closes_its_upstream_sessions(upstream: str) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, out = _command(
            "run", *RANGE, "--source", "postgres", "--source-url", upstream, "--table", "bars"
        )
        gc.collect()
    assert code == 0, out
    assert not [str(warning.message) for warning in caught if issubclass(warning.category, ResourceWarning)]
