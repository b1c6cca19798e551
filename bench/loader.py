"""Loader benchmark: rows/s of psql \\copy, our loader, Django bulk_create and the whole command.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/loader.py --days 250

Generates N trading days x 5,500 bars as CSV files (the demo source's bytes, in bench/data/csv,
git-ignored, reused on the next run), then in one run, on its own database `batchsync_bench` on
the DATABASE_URL server (dropped and created here, so user data is never touched), measures:

1. `psql \\copy` of every file into an unindexed table, in one psql session: the physical
   limit. Also into `daily_bar` itself (its primary key and checks), for reference.
2. `loader.replace_day` on the same files, one transaction per day, into `daily_bar`, through
   the csv source.
3. Django `bulk_create(update_conflicts=True)` of the same rows, parsed from the same files, on
   the first `--bulk-days` days (it is slow; rows/s is per row, so it extrapolates).
4. The whole `manage.py batch_sync --source csv` command in a subprocess, on a fresh state
   (no bars, no jobs), as a user runs it (default parallelism: one worker per CPU, at most 4):
   wall clock of the process (Django start-up, calendar, job rows, progress) and the runner's
   own time from the job row; again with `--parallelism 1` (one worker) for comparison.

psql, the loader and the command run interleaved `--repeat` times and the best run of each
counts (the machine may be shared). Each figure is printed as a ratio to the psql one, in wall
clock and in CPU seconds (client + server backends, read from /proc). Then the command runs on
`--rss-days` days to show that its peak RSS (GNU time's %M) does not grow with the days.
Django runs with DEBUG off, as in production.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import asdict
from decimal import Decimal
from pathlib import Path
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

from bench.command_run import CommandRun, run_command  # noqa: E402
from bench.common import (  # noqa: E402
    bench_database,
    calendar_store,
    generate_files,
    machine,
    recreate_database,
    trading_days,
)
from bench.measure import Result, ServerCpu, best_of, checkpoint, truncate_bars  # noqa: E402

BENCH_DB = "batchsync_bench"
ROWS_PER_DAY = 5500
PSQL = shutil.which("psql") or "/usr/bin/psql"


def bench_psql(bench_url: str, files: list[Path], *, indexed: bool = False) -> Result:
    """`psql \\copy` of every file in one session: into an unindexed copy of the table (the
    physical limit), or into `daily_bar` itself (same key and checks as the loader, no DELETE)."""
    from django.db import connection

    from batchsync.sources.base import BAR_COLUMNS

    table = "daily_bar" if indexed else "bench_raw"
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_raw")
        if indexed:
            cursor.execute("TRUNCATE daily_bar")
        else:  # LIKE copies columns and NOT NULL only: no primary key, no checks
            cursor.execute("CREATE TABLE bench_raw (LIKE daily_bar INCLUDING DEFAULTS)")
    checkpoint()
    columns = ", ".join(BAR_COLUMNS)
    script = "".join(
        f"\\copy {table} ({columns}) from '{path}' with (format csv, header true)\n" for path in files
    )
    script_path = files[0].parent.parent / "psql-copy.sql"
    script_path.write_text(script)
    with ServerCpu(bench_url) as server:
        started = time.perf_counter()
        process = subprocess.Popen(
            [PSQL, bench_url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(script_path)]
        )
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"psql failed (exit {os.waitstatus_to_exitcode(status)})")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table}")
        (rows,) = cursor.fetchone()
        cursor.execute("DROP TABLE IF EXISTS bench_raw")
    cpu = None if server.seconds is None else server.seconds + usage.ru_utime + usage.ru_stime
    name = "  psql \\copy into daily_bar (PK + checks)" if indexed else "psql \\copy, unindexed table"
    return Result(name, rows, seconds, "one psql session", cpu)


def bench_loader(bench_url: str, days: list[dt.date], directory: Path) -> Result:
    from django.db import connection, transaction

    from batchsync import loader
    from batchsync.models import DailyBar
    from batchsync.sources.csv import CsvDirectorySource

    truncate_bars()
    source = CsvDirectorySource(path=directory)
    rows = 0
    with ServerCpu(bench_url) as server:
        started, client = time.perf_counter(), time.thread_time()
        for day in days:
            with transaction.atomic(), connection.cursor() as cursor:
                rows += loader.replace_day(cursor, day, source.fetch_day(day))
        seconds, client = time.perf_counter() - started, time.thread_time() - client
    assert DailyBar.objects.count() == rows == len(days) * ROWS_PER_DAY
    cpu = None if server.seconds is None else server.seconds + client
    return Result("loader.replace_day (daily_bar, PK + checks)", rows, seconds, "a txn per day", cpu)


def _bars_from_csv(path: Path) -> list[Any]:
    from batchsync.models import DailyBar

    bars = []
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            bars.append(
                DailyBar(
                    ts_code=row["ts_code"],
                    trade_date=dt.datetime.strptime(row["trade_date"], "%Y%m%d").date(),
                    open=Decimal(row["open"]),
                    high=Decimal(row["high"]),
                    low=Decimal(row["low"]),
                    close=Decimal(row["close"]),
                    pre_close=Decimal(row["pre_close"]),
                    change=Decimal(row["change"]),
                    pct_chg=Decimal(row["pct_chg"]),
                    vol=Decimal(row["vol"]),
                    amount=Decimal(row["amount"]),
                )
            )
    return bars


def bench_bulk_create(bench_url: str, days: list[dt.date], directory: Path) -> Result:
    from django.db import transaction

    from batchsync.models import DailyBar

    truncate_bars()
    fields = ["open", "high", "low", "close", "pre_close", "change", "pct_chg", "vol", "amount"]
    rows = 0
    with ServerCpu(bench_url) as server:
        started, client = time.perf_counter(), time.thread_time()
        for day in days:
            bars = _bars_from_csv(directory / f"{day:%Y%m%d}.csv")
            with transaction.atomic():
                DailyBar.objects.bulk_create(
                    bars,
                    batch_size=1000,
                    update_conflicts=True,
                    unique_fields=["trade_date", "ts_code"],
                    update_fields=fields,
                )
            rows += len(bars)
        seconds, client = time.perf_counter() - started, time.thread_time() - client
    assert DailyBar.objects.count() == rows
    note = f"first {len(days)} days only (csv.DictReader -> model instances -> INSERT .. ON CONFLICT)"
    cpu = None if server.seconds is None else server.seconds + client
    return Result("Django bulk_create(update_conflicts=True)", rows, seconds, note, cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=250, help="trading days to load (default 250)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of psql/loader/command; best counts")
    parser.add_argument("--bulk-days", type=int, default=25, help="days for bulk_create (slow; default 25)")
    parser.add_argument(
        "--rss-days", type=int, default=25, help="a second, shorter command run to compare peak RSS"
    )
    parser.add_argument(
        "--compare-parallelism",
        type=int,
        default=1,
        help="also run the command with --parallelism N (default 1, one worker; 0: skip)",
    )
    parser.add_argument("--data", type=Path, default=PROJECT_DIR / "bench" / "data" / "csv")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument("--keep-db", action="store_true", help=f"keep the {BENCH_DB} database")
    args = parser.parse_args()

    server_url, bench_url = bench_database("bench/loader.py", BENCH_DB)
    os.environ["DATABASE_URL"] = bench_url
    # As in production: DEBUG would make Django keep every query in memory (up to 9,000).
    os.environ.setdefault("DJANGO_DEBUG", "0")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "syncproject.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    call_command("migrate", verbosity=0)
    calendar_store()
    logs = PROJECT_DIR / "bench" / "data"
    load_before = os.getloadavg()[0]
    try:
        days = trading_days(args.days)
        made = generate_files(days, args.data)
        print(f"data: {len(days)} days x {ROWS_PER_DAY} rows in {args.data} ({made} files generated)")
        files = [args.data / f"{day:%Y%m%d}.csv" for day in days]
        total_rows = len(days) * ROWS_PER_DAY
        machine_text = machine()
        print(f"machine: {machine_text}")
        print(f"days: {days[0]} .. {days[-1]} ({len(days)} trading days, {total_rows:,} rows)")
        print(f"rounds: {args.repeat} (psql, loader, command interleaved; the best of each counts)\n")

        psql_runs: list[Result] = []
        psql_indexed_runs: list[Result] = []
        loader_runs: list[Result] = []
        commands: list[CommandRun] = []
        parallel: list[CommandRun] = []
        for round_number in range(1, args.repeat + 1):
            psql_runs.append(bench_psql(bench_url, files))
            psql_indexed_runs.append(bench_psql(bench_url, files, indexed=True))
            loader_runs.append(bench_loader(bench_url, days, args.data))
            commands.append(run_command(bench_url, days, args.data, logs / "command.log"))
            extra = ""
            if args.compare_parallelism > 0:
                parallel.append(
                    run_command(
                        bench_url, days, args.data, logs / "command-compare.log", args.compare_parallelism
                    )
                )
                extra = (
                    f", command --parallelism {args.compare_parallelism} {parallel[-1].wall_seconds:.2f} s "
                    f"(runner {parallel[-1].runner_seconds:.2f} s)"
                )
            print(
                f"round {round_number}: psql {psql_runs[-1].seconds:.2f} s "
                f"(into daily_bar {psql_indexed_runs[-1].seconds:.2f} s), "
                f"loader {loader_runs[-1].seconds:.2f} s, "
                f"command ({commands[-1].parallelism} workers) "
                f"{commands[-1].wall_seconds:.2f} s (runner {commands[-1].runner_seconds:.2f} s){extra}, "
                f"load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
        bulk = bench_bulk_create(bench_url, days[: args.bulk_days], args.data)
        short = run_command(bench_url, days[-args.rss_days :], args.data, logs / "command-short.log")
    finally:
        connections.close_all()
        if not args.keep_db:
            recreate_database(server_url, BENCH_DB, drop_only=True)
    load_after = os.getloadavg()[0]

    command_name = f"batch_sync command ({commands[0].parallelism} workers, default)"
    psql = best_of(psql_runs)
    loader = best_of(loader_runs)
    command = best_of(
        [Result(command_name, r.rows, r.wall_seconds, "incl. start-up", r.cpu_seconds) for r in commands]
    )
    results = [
        psql,
        best_of(psql_indexed_runs),
        loader,
        bulk,
        command,
        best_of([Result("  of which the runner (job duration)", r.rows, r.runner_seconds) for r in commands]),
    ]
    if parallel:
        name = f"batch_sync command --parallelism {args.compare_parallelism}"
        results.append(
            best_of([Result(name, r.rows, r.wall_seconds, "incl. start-up", r.cpu_seconds) for r in parallel])
        )
        results.append(
            best_of(
                [Result("  of which the runner (job duration)", r.rows, r.runner_seconds) for r in parallel]
            )
        )
    base = psql.rows_per_second
    print(f"\nwall clock (best of {args.repeat}; bulk_create once):")
    print(f"{'method':44} {'rows':>10} {'seconds':>8} {'rows/s':>10} {'x psql':>7}")
    for result in results:
        print(
            f"{result.name:44} {result.rows:>10,} {result.seconds:>8.2f} "
            f"{result.rows_per_second:>10,.0f} {result.rows_per_second / base:>7.2f}   {result.note}"
        )
    cpu_base = psql.rows_per_cpu_second
    if cpu_base:
        print("\nCPU seconds, client process + server backends (least of the runs):")
        print(f"{'method':44} {'rows':>10} {'CPU s':>8} {'rows/CPU s':>10} {'x psql':>7}")
        for result in results:
            if result.rows_per_cpu_second and result.cpu_seconds:
                print(
                    f"{result.name:44} {result.rows:>10,} {result.cpu_seconds:>8.2f} "
                    f"{result.rows_per_cpu_second:>10,.0f} {result.rows_per_cpu_second / cpu_base:>7.2f}"
                )
    # Each line against the psql run of its own round (the runs of a round follow each other
    # within a minute): steadier than best-of-N when the machine's speed drifts between rounds.
    per_round: dict[str, list[float]] = {
        "psql \\copy into daily_bar": [
            p.seconds / i.seconds for p, i in zip(psql_runs, psql_indexed_runs, strict=True)
        ],
        "loader": [p.seconds / r.seconds for p, r in zip(psql_runs, loader_runs, strict=True)],
        f"command ({commands[0].parallelism} workers, default)": [
            p.seconds / r.wall_seconds for p, r in zip(psql_runs, commands, strict=True)
        ],
    }
    if parallel:
        per_round[f"command --parallelism {args.compare_parallelism}"] = [
            p.seconds / r.wall_seconds for p, r in zip(psql_runs, parallel, strict=True)
        ]
    print("\nx psql of the same round (each round's runs are a minute apart), median and all rounds:")
    for label, ratios in per_round.items():
        print(f"  {label:44} {statistics.median(ratios):5.2f}   {', '.join(f'{r:.2f}' for r in ratios)}")

    def median_of(label: str) -> float | None:
        return statistics.median(per_round[label]) if label in per_round else None

    default_label = f"command ({commands[0].parallelism} workers, default)"
    compare_label = f"command --parallelism {args.compare_parallelism}"
    # (what, best-of ratio, target, median of the per-round ratios)
    checks: list[tuple[str, float, float, float | None]] = [
        ("loader >= 0.6 x psql", loader.rows_per_second / base, 0.6, median_of("loader")),
        (f"{default_label} >= 0.5 x psql", command.rows_per_second / base, 0.5, median_of(default_label)),
    ]
    if parallel:
        compare = results[-2]
        checks.append(
            (f"{compare_label} >= 0.5 x psql", compare.rows_per_second / base, 0.5, median_of(compare_label))
        )
    checks += [
        ("loader >= 3 x bulk_create", loader.rows_per_second / bulk.rows_per_second, 3.0, None),
        ("command >= 3 x bulk_create", command.rows_per_second / bulk.rows_per_second, 3.0, None),
    ]
    print("\ntargets (wall clock: best of the rounds, and the median of the per-round ratios):")
    for label, value, target, median in checks:
        verdict = "met   " if value >= target and (median is None or median >= target) else "MISSED"
        also = "" if median is None else f", median of rounds {median:.2f}"
        print(f"{verdict} {label}: {value:.2f}{also}")
    full = max(commands, key=lambda run: run.max_rss_mb)
    print("\npeak RSS of the batch_sync process (/usr/bin/time %M):")
    for run in (short, *commands, *parallel):
        print(
            f"  {run.days:>4} days, {run.parallelism} worker(s), {run.rows:>9,} rows: "
            f"{run.max_rss_mb:7.1f} MiB  ({run.wall_seconds:.1f} s)"
        )
    growth = full.max_rss_mb - short.max_rss_mb
    print(f"  growth from {short.days} to {full.days} days (largest run): {growth:+.1f} MiB")
    verdict = "met   " if growth < 10 else "MISSED"
    print(f"{verdict} peak RSS does not grow with the number of days (growth < 10 MiB)")
    print(f"\nload average (1 min) before/after: {load_before:.2f} / {load_after:.2f}")
    if args.json:
        payload = {
            "machine": machine_text,
            "results": [{**asdict(r), "rows_per_second": r.rows_per_second} for r in results],
            "ratios": {label: value for label, value, _, _ in checks},
            "per_round": per_round,
            "commands": [asdict(short), *(asdict(run) for run in (*commands, *parallel))],
            "load_average": [load_before, load_after],
        }
        args.json.write_text(json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
