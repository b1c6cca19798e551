"""The parquet source: three layouts load what the csv source loads, the day's filter is pushed down."""

from __future__ import annotations

import datetime as dt
import io
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as papq
import pytest
from django.db import connection, transaction
from django.test import Client
from django.utils import translation
from rest_framework.test import APIClient

from batchsync import loader, runner, services
from batchsync.exceptions import SourceError
from batchsync.models import DailyBar, LoadedDay, SyncJob, SyncJobStatus
from batchsync.sources.demo import demo_day_csv
from batchsync.sources.parquet import ParquetSource
from batchsync.sources.roots import source_options_confined
from tests.test_admin import ADD_URL, START_FORM, client_en, form_errors  # noqa: F401 (a fixture)
from tests.test_api import BATCH, error_body
from tests.test_sources_roots import operator, outside  # noqa: F401 (fixtures)

SEP_1, SEP_2 = dt.date(2025, 9, 1), dt.date(2025, 9, 2)
DAYS = (SEP_1, SEP_2)
PROJECT_DIR = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def english() -> Any:
    with translation.override("en"):
        yield


def demo_table(day: dt.date, *, decimals: bool = False) -> pa.Table:
    """The demo day as Arrow: codes and dates as strings, numerics as float64 (or decimals)."""
    convert = pacsv.ConvertOptions(column_types={"ts_code": pa.string(), "trade_date": pa.string()})
    table = pacsv.read_csv(io.BytesIO(demo_day_csv(day)), convert_options=convert)
    if decimals:
        table = table.cast(
            pa.schema(
                [
                    field.with_type(pa.decimal128(22, 4)) if pa.types.is_floating(field.type) else field
                    for field in table.schema
                ]
            )
        )
    return table


def daily_layout(root: Path, *, decimals: bool = False) -> Path:
    """One file per day, in both accepted names, columns in upper case and another order."""
    for day, name in zip(DAYS, (f"{SEP_1}.parquet", f"{SEP_2:%Y%m%d}.parquet"), strict=True):
        table = demo_table(day, decimals=decimals)
        table = table.select(list(reversed(table.column_names)))
        papq.write_table(table.rename_columns([name.upper() for name in table.column_names]), root / name)
    return root


def hive_layout(root: Path, *, decimals: bool = False) -> Path:
    """`trade_date=YYYYMMDD/part-0.parquet`, the date only in the directory name."""
    for day in DAYS:
        partition = root / f"trade_date={day:%Y%m%d}"
        partition.mkdir()
        papq.write_table(
            demo_table(day, decimals=decimals).drop_columns(["trade_date"]), partition / "part-0.parquet"
        )
    return root


def big_file_layout(root: Path, *, decimals: bool = False) -> Path:
    """One file holding every day, one row group per day."""
    path = root / "bars.parquet"
    table = pa.concat_tables([demo_table(day, decimals=decimals) for day in DAYS])
    papq.write_table(table, path, row_group_size=demo_table(SEP_1).num_rows)
    return path


def dataset_layout(root: Path, *, decimals: bool = False) -> Path:
    """A directory of files with a trade_date column each, the days split across them."""
    table = pa.concat_tables([demo_table(day, decimals=decimals) for day in DAYS])
    for part, rows in enumerate((table.slice(0, 3000), table.slice(3000))):
        papq.write_table(rows, root / f"part-{part}.parquet")
    return root


def run(source: str, path: Path) -> SyncJob:
    request = services.JobRequest(
        SEP_1, SEP_2, source=source, source_options={"path": str(path)}, reprocess="all"
    )
    return runner.sync_job_run(services.sync_job_create(request).pk).job


def loaded() -> tuple[list[tuple[Any, ...]], dict[dt.date, tuple[int, str]]]:
    rows = list(DailyBar.objects.order_by("trade_date", "ts_code").values_list())
    return rows, {day.trade_date: (day.rows, day.checksum) for day in LoadedDay.objects.all()}


@pytest.mark.usefixtures("foreground")
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("decimals", [False, True], ids=["float64", "decimal"])
@pytest.mark.parametrize("layout", [daily_layout, hive_layout, big_file_layout, dataset_layout])
def test_each_layout_loads_the_rows_and_checksums_of_the_csv_load(
    tmp_path: Path, csv_dir: Path, layout: Callable[..., Path], decimals: bool
) -> None:
    for day in DAYS:
        (csv_dir / f"{day}.csv").write_bytes(demo_day_csv(day))
    assert run("csv", csv_dir).status == SyncJobStatus.SUCCEEDED
    from_csv = loaded()
    assert len(from_csv[0]) == 11000

    parquet_dir = tmp_path / "parquet"
    parquet_dir.mkdir()
    job = run("parquet", layout(parquet_dir, decimals=decimals))
    assert (job.status, job.rows_loaded) == (SyncJobStatus.SUCCEEDED, 11000)
    assert loaded() == from_csv
    assert set(LoadedDay.objects.values_list("source", flat=True)) == {"parquet"}


def test_loading_one_day_of_a_big_file_reads_only_its_row_group(tmp_path: Path) -> None:
    """Row group 1 (SEP_2) is overwritten with junk: SEP_1 still loads, so it was never read."""
    path = big_file_layout(tmp_path)
    metadata = papq.ParquetFile(path).metadata
    assert metadata.num_row_groups == 2
    second = metadata.row_group(1)
    chunks = [second.column(i) for i in range(second.num_columns)]
    starts = [chunk.dictionary_page_offset or chunk.data_page_offset for chunk in chunks]
    start = min(starts)
    end = max(begin + chunk.total_compressed_size for begin, chunk in zip(starts, chunks, strict=True))
    assert end < path.stat().st_size - metadata.serialized_size  # the footer stays intact
    with path.open("r+b") as handle:
        handle.seek(start)
        handle.write(b"\xff" * (end - start))
    with pytest.raises((pa.ArrowException, OSError)):
        papq.read_table(path)  # the junk is read when the whole file is

    payload = ParquetSource(path=path).fetch_day(SEP_1)
    rows = b"".join(payload.chunks).decode().replace('"', "").splitlines()[1:]
    assert len(rows) == 5500 and {row.split(",")[1] for row in rows} == {f"{SEP_1:%Y%m%d}"}
    with pytest.raises(SourceError) as caught:
        ParquetSource(path=path).fetch_day(SEP_2)
    assert caught.value.file == str(path)


def bad_file(directory: Path, kind: str) -> Path:
    path = directory / f"{SEP_2:%Y%m%d}.parquet"
    table = demo_table(SEP_2)
    if kind == "not parquet":
        path.write_bytes(demo_day_csv(SEP_2))
    elif kind == "missing column":
        papq.write_table(table.drop_columns(["amount"]), path)
    elif kind == "wrong type":
        papq.write_table(table.set_column(2, "open", table["open"].cast(pa.string())), path)
    return path


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("not parquet", "cannot read as Parquet"),
        ("missing column", "missing column(s) amount"),
        ("wrong type", "column open has type string, expected a number"),
    ],
)
def test_a_bad_file_is_a_permanent_error_naming_file_and_column(
    tmp_path: Path, kind: str, reason: str
) -> None:
    path = bad_file(tmp_path, kind)
    with pytest.raises(SourceError) as caught:
        ParquetSource(path=tmp_path).fetch_day(SEP_2)
    assert str(caught.value).startswith(f"{path}: ") and reason in str(caught.value)
    assert caught.value.file == str(path) and not caught.value.transient


@pytest.mark.usefixtures("foreground")
@pytest.mark.django_db(transaction=True)
def test_a_bad_file_fails_the_day_and_keeps_its_old_rows(tmp_path: Path) -> None:
    daily_layout(tmp_path)
    assert run("parquet", tmp_path).status == SyncJobStatus.SUCCEEDED
    before = loaded()
    path = bad_file(tmp_path, "wrong type")
    job = run("parquet", tmp_path)
    assert (job.status, job.success_days, job.failed_days) == (SyncJobStatus.FAILED, 1, 1)
    error = job.errors.get()
    assert error.file == str(path) and "column open" in error.error
    assert loaded() == before


@pytest.mark.parametrize("layout", [hive_layout, big_file_layout, dataset_layout])
def test_a_day_the_data_set_lacks_is_a_source_error_not_an_empty_day(
    tmp_path: Path, layout: Callable[..., Path]
) -> None:
    path = layout(tmp_path)
    with pytest.raises(SourceError) as caught:
        ParquetSource(path=path).fetch_day(dt.date(2025, 9, 3))
    assert str(caught.value) == f"{path}: no rows for trading day 2025-09-03"
    assert caught.value.file == str(path) and not caught.value.transient


@pytest.mark.django_db
@pytest.mark.parametrize("kind", [pa.int64(), pa.date32(), pa.timestamp("ms"), pa.large_string()], ids=str)
def test_the_days_filter_works_for_each_trade_date_type(tmp_path: Path, kind: pa.DataType) -> None:
    table = pa.concat_tables([demo_table(day) for day in DAYS])
    dates = [dt.datetime.strptime(value, "%Y%m%d") for value in table["trade_date"].to_pylist()]
    typed = pa.array([int(f"{value:%Y%m%d}") for value in dates]) if kind == pa.int64() else pa.array(dates)
    column = typed.cast(kind) if kind != pa.large_string() else table["trade_date"].cast(kind)
    papq.write_table(table.set_column(1, "trade_date", column), tmp_path / "bars.parquet")
    payload = ParquetSource(path=tmp_path / "bars.parquet").fetch_day(SEP_2)
    rows = b"".join(payload.chunks).decode().replace('"', "").splitlines()[1:]
    assert len(rows) == 5500 and {row.split(",")[1][:10].replace("-", "") for row in rows} == {"20250902"}
    with transaction.atomic(), connection.cursor() as cursor:
        assert loader.replace_day(cursor, SEP_2, payload) == 5500


def test_a_directory_without_the_days_file_is_a_missing_file(tmp_path: Path) -> None:
    papq.write_table(demo_table(SEP_1), tmp_path / f"{SEP_1:%Y%m%d}.parquet")
    with pytest.raises(SourceError) as caught:
        ParquetSource(path=tmp_path).fetch_day(SEP_2)
    assert str(caught.value).startswith(f"missing file: {tmp_path / f'{SEP_2}.parquet'}")


def test_the_api_confines_the_path_under_the_file_roots(
    operator: APIClient,  # noqa: F811
    csv_root: Path,
    outside: Path,  # noqa: F811
) -> None:
    start = {"start_date": "2025-10-01", "end_date": "2025-10-09", "source": "parquet"}
    result = error_body(operator.post(BATCH, {**start, "path": str(outside)}, format="json"), 400)
    assert "path" in result["errors"] and "is outside the directories" in result["message"]
    big_file_layout(csv_root)
    given = f"{csv_root}/../{csv_root.name}/bars.parquet"
    task_id = operator.post(BATCH, {**start, "path": given}, format="json").json()["data"]["task_id"]
    assert SyncJob.objects.get(task_id=task_id).source_options == {"path": str(csv_root / "bars.parquet")}
    assert source_options_confined("parquet", {"path": str(csv_root)}) == {"path": str(csv_root)}


@pytest.mark.django_db
def test_the_admin_start_form_confines_the_path_under_the_file_roots(
    client_en: Client,  # noqa: F811
    csv_root: Path,
    outside: Path,  # noqa: F811
) -> None:
    body = {**START_FORM, "source": "parquet", "path": str(outside)}
    assert any(
        "outside the directories" in message for message in form_errors(client_en.post(ADD_URL, body))["path"]
    )
    assert not SyncJob.objects.exists()
    path = big_file_layout(csv_root)
    assert client_en.post(ADD_URL, {**body, "path": f"{csv_root}/./bars.parquet"}).status_code == 302
    assert SyncJob.objects.get().source_options == {"path": str(path.resolve())}


def test_other_sources_do_not_import_pyarrow() -> None:
    code = (
        "import django, os, sys; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'syncproject.settings');"
        "django.setup(); from batchsync import sources;"
        "sources.source_validate('parquet', {'path': '.'}); sources.source_get('demo').fetch_day("
        "__import__('datetime').date(2025, 9, 1)); print('pyarrow' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_DIR, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "False"


def test_a_bad_file_is_reported_in_chinese_too(tmp_path: Path) -> None:
    path = bad_file(tmp_path, "missing column")
    with translation.override("zh-hans"), pytest.raises(SourceError) as caught:
        ParquetSource(path=tmp_path).fetch_day(SEP_2)
    assert str(caught.value).startswith(f"{path}\uff1a缺少列 amount")  # a full-width colon
