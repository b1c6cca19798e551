"""The two built-in sources and the settings registry (csv on real files in a temp dir)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.utils import translation

from batchsync import runner, services, sources
from batchsync.conf import get_settings
from batchsync.exceptions import InvalidJobRequest, SourceError
from batchsync.models import DailyBar, SyncDayStatus, SyncJobStatus
from batchsync.sources.base import BAR_COLUMNS, CsvPayload, RowsPayload, Source
from batchsync.sources.csv import CsvDirectorySource
from batchsync.sources.demo import DemoSource, demo_day_csv
from batchsync.sources.latency import LatencySource

DAY = dt.date(2025, 10, 9)


@pytest.fixture(autouse=True)
def english() -> Any:
    """Messages are asserted in English (the default language is Chinese, checked once below)."""
    with translation.override("en"):
        yield


def payload_bytes(payload: CsvPayload | RowsPayload) -> bytes:
    assert isinstance(payload, CsvPayload)
    return b"".join(payload.chunks)


def parse(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode())))


# --- demo ----------------------------------------------------------------------------------


def test_demo_gives_the_same_bytes_for_a_date_on_every_call() -> None:
    first = payload_bytes(DemoSource().fetch_day(DAY))
    assert payload_bytes(DemoSource().fetch_day(DAY)) == first
    assert demo_day_csv(DAY) == first
    assert demo_day_csv(dt.date(2025, 10, 10)) != first


def test_demo_day_has_5500_plausible_bars_with_a_share_codes() -> None:
    rows = parse(demo_day_csv(DAY))
    assert list(rows[0]) == list(BAR_COLUMNS)
    codes = [row["ts_code"] for row in rows]
    assert len(codes) == len(set(codes)) == 5500
    assert {"600000.SH", "000001.SZ", "300001.SZ", "688000.SH"} <= set(codes)
    assert all(re.fullmatch(r"\d{6}\.(SH|SZ)", code) for code in codes)
    for row in rows:
        low, open_, close, high = (Decimal(row[name]) for name in ("low", "open", "close", "high"))
        assert Decimal(0) < low <= min(open_, close) <= max(open_, close) <= high, row
        assert Decimal(row["pre_close"]) + Decimal(row["change"]) == close, row
        assert Decimal(row["vol"]) >= 0 and Decimal(row["amount"]) >= 0
        assert row["trade_date"] == "20251009"


def test_demo_pre_close_is_the_previous_close() -> None:
    today = {row["ts_code"]: row for row in parse(demo_day_csv(DAY))}
    yesterday = {row["ts_code"]: row for row in parse(demo_day_csv(DAY - dt.timedelta(days=1)))}
    assert all(today[code]["pre_close"] == yesterday[code]["close"] for code in today)


# --- csv -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["2025-10-09.csv", "20251009.csv"])
def test_csv_reads_either_file_name(csv_dir: Path, name: str) -> None:
    (csv_dir / name).write_bytes(b"ts_code,trade_date\n")
    source = CsvDirectorySource(path=csv_dir)
    payload = source.fetch_day(DAY)
    assert isinstance(payload, CsvPayload)
    assert payload.path == csv_dir / name
    assert payload.origin == str(csv_dir / name)
    assert payload_bytes(payload) == b"ts_code,trade_date\n"


def test_csv_streams_big_files_in_chunks(csv_dir: Path) -> None:
    data = b"x" * (3 * (1 << 20) + 5)
    (csv_dir / "20251009.csv").write_bytes(data)
    payload = CsvDirectorySource(path=csv_dir).fetch_day(DAY)
    assert isinstance(payload, CsvPayload)
    chunks = list(payload.chunks)
    assert [len(chunk) for chunk in chunks] == [1 << 20] * 3 + [5]


def test_csv_missing_file_is_a_permanent_source_error(csv_dir: Path) -> None:
    (csv_dir / "2025-10-10.csv").write_text("other day\n")
    with pytest.raises(SourceError) as caught:
        CsvDirectorySource(path=csv_dir).fetch_day(DAY)
    assert caught.value.message.startswith(f"missing file: {csv_dir / '2025-10-09.csv'} (or 20251009.csv)")
    assert caught.value.transient is False
    assert caught.value.file == str(csv_dir / "2025-10-09.csv")


def test_csv_missing_file_speaks_the_active_language(csv_dir: Path) -> None:
    with translation.override("zh-hans"), pytest.raises(SourceError, match=r"^缺少文件: "):
        CsvDirectorySource(path=csv_dir).fetch_day(DAY)


def test_csv_refuses_two_files_for_one_day(csv_dir: Path) -> None:
    (csv_dir / "2025-10-09.csv").write_text("a\n")
    (csv_dir / "20251009.csv").write_text("b\n")
    with pytest.raises(SourceError, match="two files for 2025-10-09"):
        CsvDirectorySource(path=csv_dir).fetch_day(DAY)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "needs a directory path"),
        ({"path": "/nonexistent/bars"}, "Directory not found: /nonexistent/bars"),
    ],
)
def test_csv_validate_names_the_path_field(options: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidJobRequest) as caught:
        sources.source_get("csv", options).validate()
    assert caught.value.field == "path"
    assert message in caught.value.message


def test_csv_validate_refuses_a_file_as_directory(csv_dir: Path) -> None:
    (csv_dir / "f.csv").write_text("")
    with translation.override("en"), pytest.raises(InvalidJobRequest, match=r"^Not a directory: .*f\.csv$"):
        CsvDirectorySource(path=csv_dir / "f.csv").validate()
    with translation.override("en"), pytest.raises(InvalidJobRequest, match=r"^Directory not found: "):
        CsvDirectorySource(path=csv_dir / "nothing-here").validate()


@pytest.mark.usefixtures("foreground")
@pytest.mark.django_db(transaction=True)
def test_a_trading_day_without_a_file_is_a_failed_day_not_a_skip(csv_dir: Path) -> None:
    (csv_dir / "2025-09-30.csv").write_bytes(demo_day_csv(dt.date(2025, 9, 30)))
    request = services.JobRequest(
        start_date=dt.date(2025, 9, 30),
        end_date=DAY,
        source="csv",
        source_options={"path": str(csv_dir)},
    )
    job = runner.sync_job_run(services.sync_job_create(request).pk).job
    assert job.status == SyncJobStatus.FAILED
    assert (job.success_days, job.failed_days, job.skipped_days) == (1, 1, 8)
    failed = job.days.get(status=SyncDayStatus.FAILED)
    assert failed.date == DAY
    assert failed.last_error.startswith("missing file: ")
    assert job.errors.get().file == str(csv_dir / "2025-10-09.csv")


# --- registry ------------------------------------------------------------------------------


class FixedRowsSource(Source):
    """A source built from settings in the test below: one bar per day as Python rows."""

    name = "fixed"

    def fetch_day(self, day: dt.date) -> RowsPayload:
        row = ("600000.SH", day, 10, 11, 9, 10, None, None, None, self.options.get("vol", 1), 1)
        return RowsPayload(rows=[row], origin=f"fixed:{day}")


def test_default_registry_has_every_built_in_source() -> None:
    assert sources.source_names() == ["csv", "demo", "parquet", "postgres", "tushare"]
    assert isinstance(sources.source_get("demo"), DemoSource)


def test_unknown_source_names_the_choices() -> None:
    with pytest.raises(InvalidJobRequest) as caught:
        sources.source_get("tushare-pro")
    assert caught.value.field == "source"
    assert "tushare-pro" in caught.value.message
    assert "csv, demo, parquet, postgres, tushare" in caught.value.message


@pytest.mark.usefixtures("foreground")
@pytest.mark.django_db(transaction=True)
def test_a_source_added_in_settings_runs_a_job(settings: Any) -> None:
    settings.BATCHSYNC = {
        **settings.BATCHSYNC,
        "SOURCES": {**get_settings().sources, "fixed": f"{__name__}.FixedRowsSource"},
    }
    assert "fixed" in sources.source_names()
    request = services.JobRequest(DAY, DAY, source="fixed", source_options={"vol": 7})
    job = runner.sync_job_run(services.sync_job_create(request).pk).job
    assert (job.status, job.rows_loaded) == (SyncJobStatus.SUCCEEDED, 1)
    assert DailyBar.objects.get(trade_date=DAY).vol == 7


# --- declared options ----------------------------------------------------------------------


def test_each_builtin_source_declares_the_options_it_takes() -> None:
    assert DemoSource.options_taken == {}
    assert CsvDirectorySource.options_taken["path"].is_path
    assert LatencySource.options_taken["seconds"].accepts(2)
    assert not LatencySource.options_taken["seconds"].accepts(True)
    assert not LatencySource.options_taken["seconds"].accepts("2")


@pytest.mark.parametrize(
    ("name", "options", "field", "reason"),
    [
        ("demo", {"path": "/data"}, "path", "takes no option path"),
        ("csv", {"path": "/data", "depth": 3}, "depth", "takes no option depth"),
        ("csv", {"path": 5}, "path", "must be a string"),
    ],
)
def test_options_a_source_does_not_take_are_refused_by_name(
    name: str, options: dict[str, Any], field: str, reason: str
) -> None:
    with pytest.raises(InvalidJobRequest) as caught:
        sources.source_validate(name, options)
    assert caught.value.field == field and reason in caught.value.message


def test_a_source_that_declares_nothing_takes_any_option(settings: Any) -> None:
    settings.BATCHSYNC = {
        **settings.BATCHSYNC,
        "SOURCES": {**get_settings().sources, "fixed": f"{__name__}.FixedRowsSource"},
    }
    sources.source_validate("fixed", {"vol": 7, "anything": [1, 2]})


def test_a_directory_path_too_long_for_the_system_is_invalid_not_a_crash() -> None:
    with pytest.raises(InvalidJobRequest) as caught:
        CsvDirectorySource(path=f"/{'a' * 300}").validate()
    assert caught.value.field == "path" and "too long" in caught.value.message
