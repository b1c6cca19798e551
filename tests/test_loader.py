"""The COPY loader on real PostgreSQL: idempotent days, bad rows rejected whole with line and column."""

from __future__ import annotations

import datetime as dt
import gzip
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, transaction

from batchsync import loader, runner, services
from batchsync.exceptions import LoadError
from batchsync.models import DailyBar, SyncDayStatus, SyncError, SyncJobStatus
from batchsync.sources.base import BAR_COLUMNS, CsvPayload, RowsPayload
from batchsync.sources.demo import demo_day_csv
from tests.conftest import PROJECT_DIR

DAY = dt.date(2025, 10, 9)
EVE = dt.date(2025, 9, 30)
HEADER = ",".join(BAR_COLUMNS)


def bar(code: str, day: dt.date = DAY, *, low: str = "9.5", high: str = "10.5", **values: str) -> list[str]:
    row = {
        "ts_code": code,
        "trade_date": day.strftime("%Y%m%d"),
        "open": "10.0",
        "high": high,
        "low": low,
        "close": "10.2",
        "pre_close": "10.0",
        "change": "0.2",
        "pct_chg": "2.0",
        "vol": "1000.5",
        "amount": "1020.125",
    }
    row.update(values)
    return [row[column] for column in BAR_COLUMNS]


def csv_payload(text: str | bytes, origin: str = "bars.csv", *, chunk: int | None = None) -> CsvPayload:
    data = text.encode() if isinstance(text, str) else text
    chunks = [data] if chunk is None else [data[i : i + chunk] for i in range(0, len(data), chunk)]
    return CsvPayload(chunks=chunks, origin=origin)


def rows_text(*rows: list[str], header: str = HEADER, newline: str = "\n") -> str:
    return newline.join([header, *(",".join(row) for row in rows)]) + newline


def load(day: dt.date, payload: CsvPayload | RowsPayload) -> int:
    """Load in a savepoint, as the runner's day transaction does: a failure rolls the day back."""
    with transaction.atomic(), connection.cursor() as cursor:
        return loader.replace_day(cursor, day, payload)


def day_rows(day: dt.date) -> list[tuple[Any, ...]]:
    return list(DailyBar.objects.filter(trade_date=day).order_by("ts_code").values_list(*BAR_COLUMNS))


@pytest.fixture
def loaded_day(db: None) -> list[tuple[Any, ...]]:
    """DAY holds two bars and EVE one, before the test tries to replace DAY."""
    load(DAY, csv_payload(rows_text(bar("600000.SH"), bar("000001.SZ"))))
    load(EVE, csv_payload(rows_text(bar("600000.SH", EVE))))
    return day_rows(DAY)


# --- loading and reloading ----------------------------------------------------------------


@pytest.mark.django_db
def test_a_day_loaded_twice_has_the_same_rows_and_no_duplicates() -> None:
    assert load(DAY, CsvPayload(chunks=[demo_day_csv(DAY)], origin="demo")) == 5500
    first = day_rows(DAY)
    assert load(DAY, CsvPayload(chunks=[demo_day_csv(DAY)], origin="demo")) == 5500
    assert day_rows(DAY) == first
    assert DailyBar.objects.count() == 5500
    assert first[0][:3] == ("000001.SZ", DAY, first[0][2])


def test_reloading_a_day_replaces_its_rows_and_leaves_other_days_alone(loaded_day: list[Any]) -> None:
    eve = day_rows(EVE)
    assert load(DAY, csv_payload(rows_text(bar("600519.SH", close="1500.1234")))) == 1
    assert [row[0] for row in day_rows(DAY)] == ["600519.SH"]
    assert DailyBar.objects.get(ts_code="600519.SH").close == Decimal("1500.1234")
    assert day_rows(EVE) == eve


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("crlf", rows_text(bar("600000.SH"), bar("000001.SZ"), newline="\r\n").encode()),
        ("bom", b"\xef\xbb\xbf" + rows_text(bar("600000.SH"), bar("000001.SZ")).encode()),
        (
            "bom+crlf",
            b"\xef\xbb\xbf" + rows_text(bar("600000.SH"), bar("000001.SZ"), newline="\r\n").encode(),
        ),
        ("no final newline", rows_text(bar("600000.SH"), bar("000001.SZ")).rstrip("\n").encode()),
        ("trailing blank lines", (rows_text(bar("600000.SH"), bar("000001.SZ")) + "\n\n").encode()),
        ("iso trade_date", rows_text(bar("600000.SH", trade_date="2025-10-09"), bar("000001.SZ")).encode()),
        ("upper-case header", rows_text(bar("600000.SH"), bar("000001.SZ"), header=HEADER.upper()).encode()),
    ],
)
def test_csv_variants_load_the_same_two_rows(name: str, data: bytes) -> None:
    for chunk in (None, 7):  # whole, and split at awkward byte boundaries (mid-CRLF, mid-BOM)
        assert load(DAY, csv_payload(data, chunk=chunk)) == 2, name
        assert [row[0] for row in day_rows(DAY)] == ["000001.SZ", "600000.SH"]


@pytest.mark.django_db
def test_columns_in_any_order_and_optional_columns_missing() -> None:
    text = "amount,vol,close,low,high,open,trade_date,ts_code\n1.5,2.5,10,9,11,10,20251009,600000.SH\n"
    assert load(DAY, csv_payload(text)) == 1
    saved = DailyBar.objects.get(ts_code="600000.SH")
    assert (saved.amount, saved.vol, saved.high, saved.pre_close) == (
        Decimal("1.5"),
        Decimal("2.5"),
        Decimal("11"),
        None,
    )


@pytest.mark.django_db
def test_rows_payload_loads_python_values_and_is_idempotent() -> None:
    rows = [
        (
            "600000.SH",
            DAY,
            Decimal("10"),
            Decimal("11"),
            Decimal("9"),
            Decimal("10.5"),
            None,
            None,
            None,
            100,
            1050,
        ),
        ("000001.SZ", "20251009", "5", "5.5", "4.5", "5.2", "5", "0.2", "4", "10.25", "52.125"),
    ]
    for _ in range(2):
        assert load(DAY, RowsPayload(rows=iter(rows), origin="api")) == 2
    assert DailyBar.objects.count() == 2
    assert DailyBar.objects.get(ts_code="000001.SZ").amount == Decimal("52.125")


# --- bad data: the day fails whole, with origin, line, column and reason -------------------


BAD_CSV = [
    # (description, rows after the two good ones, line, column, words in the reason)
    ("not a number", [bar("600001.SH", open="abc")], 4, "open", "invalid input syntax"),
    ("low above high", [bar("600001.SH", low="12", high="11")], 4, "low", "low is greater than high"),
    ("negative volume", [bar("600001.SH", vol="-1")], 4, "vol", "must not be negative"),
    ("empty required", [bar("600001.SH", close="")], 4, "close", "close is empty"),
    ("duplicate code", [bar("600000.SH")], 4, "ts_code", "appears twice"),
    ("impossible date", [bar("600001.SH", trade_date="20251309")], 4, "trade_date", "out of range"),
    ("too big", [bar("600001.SH", open="99999999999")], 4, "open", "open is 99999999999: out of range"),
    ("code too long", [bar("600001.SH.EXTRA")], 4, "ts_code", "too long"),
]


@pytest.mark.parametrize(("what", "extra", "line", "column", "reason"), BAD_CSV, ids=[b[0] for b in BAD_CSV])
def test_a_bad_row_fails_the_day_whole_and_keeps_its_old_rows(
    loaded_day: list[Any], what: str, extra: list[list[str]], line: int, column: str, reason: str
) -> None:
    text = rows_text(bar("600000.SH", close="11"), bar("000002.SZ"), *extra)
    with pytest.raises(LoadError) as caught:
        load(DAY, csv_payload(text, origin="/data/2025-10-09.csv"))
    error = caught.value
    assert (error.file, error.line, error.column) == ("/data/2025-10-09.csv", line, column)
    assert error.message.startswith(f"/data/2025-10-09.csv: line {line}, column {column}: ")
    assert reason in error.message
    assert day_rows(DAY) == loaded_day


@pytest.mark.parametrize(
    ("what", "data", "line", "reason"),
    [
        ("missing value", rows_text(bar("600000.SH")) + "600001.SH,20251009,1,2\n", 3, "missing data"),
        ("extra value", rows_text(bar("600000.SH")).rstrip("\n") + ",1\n", 2, "extra data after last"),
        ("blank line inside", rows_text(bar("600000.SH")) + "\n" + ",".join(bar("600001.SH")), 3, "missing"),
        ("bad utf-8", (rows_text(bar("600000.SH")) + "600001.\xff").encode("latin-1"), 3, "UTF8"),
        (
            "mixed line ends",
            rows_text(bar("600000.SH"), bar("600001.SH"), bar("600002.SH")).replace("\n", "\r\n", 2),
            3,
            "LF or CRLF",
        ),
    ],
)
def test_malformed_lines_are_named(
    loaded_day: list[Any], what: str, data: str | bytes, line: int, reason: str
) -> None:
    with pytest.raises(LoadError) as caught:
        load(DAY, csv_payload(data, origin="f.csv"))
    assert caught.value.line == line, caught.value.message
    assert caught.value.message.startswith(f"f.csv: line {line}")
    assert reason in caught.value.message
    assert day_rows(DAY) == loaded_day


def test_rows_of_another_date_fail_the_day_and_never_touch_that_date(loaded_day: list[Any]) -> None:
    eve = day_rows(EVE)
    # 600000.SH on EVE already exists: the row must be refused as the wrong date, not as a duplicate.
    text = rows_text(bar("600001.SH"), bar("600000.SH", EVE), bar("600002.SH", EVE))
    with pytest.raises(LoadError) as caught:
        load(DAY, csv_payload(text, origin="2025-10-09.csv"))
    error = caught.value
    assert (error.line, error.column) == (3, "trade_date")
    assert error.message.startswith("2025-10-09.csv: line 3, column trade_date: 2 row(s)")
    assert "other than 2025-10-09" in error.message
    assert day_rows(DAY) == loaded_day
    assert day_rows(EVE) == eve


def test_wrong_date_in_a_file_is_found_by_reading_the_file_again(
    loaded_day: list[Any], tmp_path: Path
) -> None:
    path = tmp_path / "2025-10-09.csv"
    path.write_bytes(
        rows_text(bar("600001.SH"), bar("600002.SH"), bar("600003.SH", trade_date="20251010")).encode()
    )
    payload = CsvPayload(chunks=iter([path.read_bytes()]), origin=str(path), path=path)
    with pytest.raises(LoadError) as caught:
        load(DAY, payload)
    assert (caught.value.line, caught.value.column) == (4, "trade_date")
    assert day_rows(DAY) == loaded_day


@pytest.mark.parametrize(
    ("what", "data", "reason"),
    [
        ("empty file", "", "the file is empty"),
        ("blank first line", "\n" + ",".join(bar("600000.SH")) + "\n", "first line is blank"),
        ("no header", ",".join(bar("600000.SH")) + "\n", "no header"),
        ("missing column", rows_text(header=HEADER.replace(",amount", "")), "missing column(s) amount"),
        ("unknown column", rows_text(header=HEADER + ",turnover"), "unknown column(s) turnover"),
        ("repeated column", rows_text(header=HEADER + ",vol"), "repeated column(s) vol"),
        ("bare CR", rows_text(bar("600000.SH"), newline="\r"), "bare carriage return"),
    ],
)
def test_header_problems_fail_at_line_1(loaded_day: list[Any], what: str, data: str, reason: str) -> None:
    with pytest.raises(LoadError) as caught:
        load(DAY, csv_payload(data, origin="f.csv"))
    assert caught.value.line == 1
    assert caught.value.message.startswith("f.csv: line 1: ")
    assert reason in caught.value.message
    if "header" in caught.value.message:
        assert HEADER in caught.value.message  # says what it expected
    assert day_rows(DAY) == loaded_day


def test_a_file_with_only_a_header_fails_instead_of_emptying_the_day(loaded_day: list[Any]) -> None:
    with pytest.raises(LoadError, match=r"f.csv: line 2: no rows for 2025-10-09"):
        load(DAY, csv_payload(HEADER + "\r\n\r\n", origin="f.csv"))
    assert day_rows(DAY) == loaded_day


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (("600001.SH", DAY, 1, 2), "api: row 2: 4 values, expected 11"),
        (("600001.SH", "2025-10-08", 10, 11, 9, 10, None, None, None, 1, 1), "api: row 2, column trade_date"),
        (("600001.SH", "not a date", 10, 11, 9, 10, None, None, None, 1, 1), "api: row 2, column trade_date"),
        (
            ("600001.SH", DAY, "x", 11, 9, 10, None, None, None, 1, 1),
            "api: row 2, column open: invalid input",
        ),
        (
            ("600001.SH", DAY, 10, 11, 12, 10, None, None, None, 1, 1),
            "api: row 2, column low: low is greater",
        ),
    ],
)
def test_bad_rows_payload_names_the_row(loaded_day: list[Any], row: tuple[Any, ...], message: str) -> None:
    good = ("600000.SH", DAY, 10, 11, 9, 10, None, None, None, 1, 1)
    with pytest.raises(LoadError) as caught:
        load(DAY, RowsPayload(rows=[good, row], origin="api"))
    assert caught.value.message.startswith(message), caught.value.message
    assert caught.value.line == 2
    assert day_rows(DAY) == loaded_day


# --- through the runner: a bad file is a failed day with file and line, old bars intact ------


@pytest.mark.usefixtures("foreground")
@pytest.mark.django_db(transaction=True)
def test_bad_csv_row_fails_the_day_in_a_job_and_keeps_the_loaded_bars(csv_dir: Path) -> None:
    good = rows_text(bar("600000.SH"), bar("000001.SZ"))
    (csv_dir / "20251009.csv").write_text(good)
    first = services.sync_job_create(
        services.JobRequest(DAY, DAY, source="csv", source_options={"path": str(csv_dir)})
    )
    assert runner.sync_job_run(first.pk).job.status == SyncJobStatus.SUCCEEDED
    before = day_rows(DAY)

    (csv_dir / "20251009.csv").write_text(rows_text(bar("600000.SH"), bar("000001.SZ", high="oops")))
    again = services.sync_job_create(
        services.JobRequest(DAY, DAY, source="csv", source_options={"path": str(csv_dir)}, reprocess="all")
    )
    job = runner.sync_job_run(again.pk).job
    assert job.status == SyncJobStatus.FAILED
    day = job.days.get(date=DAY)
    assert day.status == SyncDayStatus.FAILED
    error = job.errors.get()
    assert (error.file, error.line) == (str(csv_dir / "20251009.csv"), 3)
    assert f"{csv_dir / '20251009.csv'}: line 3, column high: invalid input syntax" in error.error
    assert day.last_error == error.error
    assert day_rows(DAY) == before


# --- not text at all: compressed or binary files name the file and the reason ----------------


@pytest.mark.parametrize(
    ("what", "data", "line", "reason"),
    [
        ("gzip", gzip.compress(rows_text(bar("600000.SH")).encode()), None, "compressed file (gzip)"),
        ("random bytes", random.Random(11).randbytes(200_000), 1, "line 1: not UTF-8 text"),
        ("NUL in header", b"ts_code\x00,trade_date\n", 1, "line 1: not UTF-8 text (binary data"),
        ("GBK header", "代码,日期\n".encode("gbk"), 1, "line 1: not UTF-8 text (byte 0xb4"),
        ("GBK row", (rows_text(bar("600000.SH")) + ",".join(bar("浦发"))).encode("gbk"), 3, "not UTF-8 text"),
    ],
)
def test_compressed_or_binary_files_fail_with_file_and_reason(
    loaded_day: list[Any], what: str, data: bytes, line: int | None, reason: str
) -> None:
    with pytest.raises(LoadError) as caught:
        load(DAY, csv_payload(data, origin="/data/2025-10-09.csv", chunk=4096))
    error = caught.value
    assert (error.file, error.line) == ("/data/2025-10-09.csv", line), error.message
    assert error.message.startswith("/data/2025-10-09.csv: "), error.message
    assert reason in error.message, error.message
    assert day_rows(DAY) == loaded_day


@pytest.mark.usefixtures("foreground")
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("data", "line", "reason"),
    [
        (gzip.compress(demo_day_csv(DAY)), None, "compressed file (gzip), not CSV text"),
        (random.Random(7).randbytes(1 << 16), 1, "line 1: not UTF-8 text"),
    ],
    ids=["gzip", "binary"],
)
def test_a_gzip_or_binary_file_fails_the_day_in_a_job_with_file_and_reason(
    csv_dir: Path, data: bytes, line: int | None, reason: str
) -> None:
    path = csv_dir / "20251009.csv"
    path.write_text(rows_text(bar("600000.SH"), bar("000001.SZ")))
    request = services.JobRequest(DAY, DAY, source="csv", source_options={"path": str(csv_dir)})
    assert runner.sync_job_run(services.sync_job_create(request).pk).job.status == "succeeded"
    before = day_rows(DAY)

    path.write_bytes(data)
    again = services.sync_job_create(
        services.JobRequest(DAY, DAY, source="csv", source_options={"path": str(csv_dir)}, reprocess="all")
    )
    job = runner.sync_job_run(again.pk).job
    assert job.status == SyncJobStatus.FAILED
    error = job.errors.get()
    assert (error.file, error.line) == (str(path), line)
    assert error.error.startswith(f"{path}: ") and reason in error.error, error.error
    assert "Error" not in error.error  # no Python exception text
    assert day_rows(DAY) == before


# --- a wrong-date row in a big file: found by streaming the file, not by holding it ----------


def write_big_day(path: Path, rows: int, *, last_date: str) -> None:
    """A day file of `rows` distinct bars (67 bytes each); the last row dated `last_date`."""
    line = "{code:06d}.SZ,{date},10.0,10.5,9.5,10.2,10.0,0.2,2.0,1000.5,1020.125\n"
    date = DAY.strftime("%Y%m%d")
    with path.open("w") as handle:
        handle.write(HEADER + "\n")
        handle.writelines(line.format(code=n, date=date) for n in range(rows - 1))
        handle.write(line.format(code=rows, date=last_date))


def peak_rss_mb(args: list[str], env: dict[str, str]) -> tuple[int, str, float]:
    """Run `manage.py args`; return its exit status, output and peak resident memory (MB)."""
    with subprocess.Popen(
        [sys.executable, str(PROJECT_DIR / "manage.py"), *args],
        env=env,
        cwd=PROJECT_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    ) as process:
        assert process.stdout is not None
        output = process.stdout.read().decode(errors="replace")
        _pid, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, output, usage.ru_maxrss / 1024  # Linux: kilobytes


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_wrong_date_last_row_in_a_big_file_costs_no_more_memory_than_a_clean_file(
    csv_dir: Path, subprocess_env: dict[str, str]
) -> None:
    rows = 600_000  # 40 MB
    path = csv_dir / "20251009.csv"
    command = ["batch_sync", "--start", "2025-10-09", "--end", "2025-10-09", "--source", "csv"]
    command += ["--path", str(csv_dir), "--force", "--parallelism", "1"]
    write_big_day(path, rows, last_date=DAY.strftime("%Y%m%d"))
    code, output, clean_peak = peak_rss_mb(command, subprocess_env)
    assert code == 0, output
    assert DailyBar.objects.filter(trade_date=DAY).count() == rows

    write_big_day(path, rows, last_date="20251010")
    size_mb = path.stat().st_size / 2**20
    assert size_mb > 35
    code, output, wrong_peak = peak_rss_mb(command, subprocess_env)
    assert code == 1, output
    error = SyncError.objects.get()
    assert (error.file, error.line, error.date) == (str(path), rows + 1, DAY)
    assert error.error.startswith(f"{path}: line {rows + 1}, column trade_date: 1 row(s)"), error.error
    # Reading the file again whole cost about twice its size (its bytes, then its text).
    assert wrong_peak < clean_peak + size_mb / 4, (clean_peak, wrong_peak, size_mb)
    assert DailyBar.objects.filter(trade_date=DAY).count() == rows  # the old rows are intact


@pytest.mark.django_db
def test_a_streamed_payload_is_closed_when_its_day_fails(loaded_day: list[tuple[Any, ...]]) -> None:
    """A stream over a connection (the postgres source) is released when the COPY stops, not at GC."""
    closed: list[bool] = []

    def stream() -> Iterator[bytes]:
        try:
            yield b"code,day,price\n"  # not our header: the day fails before the rest is read
            yield (",".join(bar("600000.SH")) + "\n").encode()
        finally:
            closed.append(True)

    chunks = stream()
    with pytest.raises(LoadError):
        load(DAY, CsvPayload(chunks=chunks, origin="stream"))
    assert closed == [True] and day_rows(DAY) == loaded_day
