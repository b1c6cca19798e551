"""The parquet source vs `psql \\copy` of the same rows as CSV: rows/s and their ratio (goal >= 0.5).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/parquet_source.py --days 20

On its own database `batchsync_bench_parquet` (dropped and created here), with `--days` XSHG
sessions of demo bars (5,500 a day) written as CSV files and as Parquet in the chosen
`--layout` (`daily`: one file per day; `hive`: `trade_date=YYYYMMDD/`; `big`: one file, one
row group per day, float64 numerics as pandas writes them):

1. `psql \\copy` of every CSV file into `daily_bar` (emptied first), in one psql session.
2. The parquet source: per day, `fetch_day` (pyarrow reads the day with its filter pushed
   down and writes CSV) then `loader.replace_day` in the day's transaction, as the runner does
   (without its bookkeeping, which every source pays alike).

The two run interleaved `--repeat` times; the best of each counts (the machine may be shared).
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import bench_django, generate_files, machine, trading_days

DATABASE = "batchsync_bench_parquet"
PSQL = shutil.which("psql") or "/usr/bin/psql"


def write_parquet(days: list[dt.date], csv_dir: Path, target: Path, layout: str) -> Path:
    """The CSV files as Parquet in `layout`; returns the source's path."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as papq

    convert = pacsv.ConvertOptions(column_types={"ts_code": pa.string(), "trade_date": pa.string()})
    tables = [pacsv.read_csv(csv_dir / f"{day:%Y%m%d}.csv", convert_options=convert) for day in days]
    target.mkdir(parents=True, exist_ok=True)
    if layout == "big":
        papq.write_table(pa.concat_tables(tables), target / "bars.parquet", row_group_size=tables[0].num_rows)
        return target / "bars.parquet"
    for day, table in zip(days, tables, strict=True):
        if layout == "daily":
            papq.write_table(table, target / f"{day:%Y%m%d}.parquet")
        else:
            partition = target / f"trade_date={day:%Y%m%d}"
            partition.mkdir(exist_ok=True)
            papq.write_table(table.drop_columns(["trade_date"]), partition / "part-0.parquet")
    return target


def truncate() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE daily_bar")
        cursor.execute("CHECKPOINT")


def bench_psql(url: str, csv_dir: Path, days: list[dt.date]) -> float:
    """Seconds for one psql session to `\\copy` every day's CSV into daily_bar."""
    from batchsync.sources.base import BAR_COLUMNS

    truncate()
    columns = ", ".join(BAR_COLUMNS)
    script = csv_dir.parent / "psql-copy.sql"
    files = [csv_dir / f"{day:%Y%m%d}.csv" for day in days]
    script.write_text(
        "".join(
            f"\\copy daily_bar ({columns}) from '{file}' with (format csv, header true)\n" for file in files
        )
    )
    started = time.perf_counter()
    subprocess.run([PSQL, url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(script)], check=True)
    return time.perf_counter() - started


def bench_source(path: Path, days: list[dt.date]) -> float:
    """Seconds for the parquet source and the loader to replace every day, one transaction each."""
    from django.db import connection, transaction

    from batchsync import loader
    from batchsync.sources.parquet import ParquetSource

    truncate()
    source = ParquetSource(path=path)
    started = time.perf_counter()
    for day in days:
        payload = source.fetch_day(day)
        with transaction.atomic(), connection.cursor() as cursor:
            loader.replace_day(cursor, day, payload)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--layout", choices=["big", "daily", "hive"], default="big")
    args = parser.parse_args()
    url = bench_django("bench/parquet_source.py", DATABASE)
    days = trading_days(args.days)
    rows = len(days) * 5500
    with tempfile.TemporaryDirectory(prefix="bench-parquet-") as scratch:
        csv_dir = Path(scratch) / "csv"
        generate_files(days, csv_dir)
        path = write_parquet(days, csv_dir, Path(scratch) / "parquet", args.layout)
        psql_runs: list[float] = []
        source_runs: list[float] = []
        for _ in range(args.repeat):
            psql_runs.append(bench_psql(url, csv_dir, days))
            source_runs.append(bench_source(path, days))
    psql, source = min(psql_runs), min(source_runs)
    print(machine())
    print(f"{len(days)} days x 5,500 bars, layout {args.layout}, best of {args.repeat}")
    print(f"psql \\copy of the CSV files into daily_bar: {psql:.2f} s, {rows / psql:,.0f} rows/s")
    print(f"parquet source + loader:                    {source:.2f} s, {rows / source:,.0f} rows/s")
    print(f"ratio (parquet rows/s / psql rows/s): {psql / source:.2f} (goal >= 0.5)")


if __name__ == "__main__":
    main()
