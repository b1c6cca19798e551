"""The postgres source against a `psql \\copy ... to stdout | psql \\copy ... from stdin` pipe.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/postgres_source.py --days 40

Creates two databases on that server: `batchsync_bench_pgsrc` (ours, migrated) and
`batchsync_bench_pgsrc_up` (the upstream: a `bars` table holding `--days` XSHG sessions of the
demo source's 5,500 bars). Each round empties `daily_bar` and times, after a checkpoint:
- the pipe: ONE `psql -c "\\copy (select ... where trade_date between ...) to stdout"` piped
  into ONE `psql -c "\\copy daily_bar (...) from stdin"`: every day in one COPY, no per-day
  transaction, no check of the days; the physical limit of moving the rows;
- the source: for each day, as the runner does, one transaction deleting the day and COPYing
  it from the upstream (`PostgresSource.fetch_day` → `loader.replace_day`), by one worker, then
  by two threads (the command's default parallelism on 2 CPUs), each with its own sessions.
Prints the best of `--repeat` rounds for each, and the ratio pipe / source (1.0 = as fast).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import bench_database, machine, recreate_database, trading_days, with_database

DATABASE = "batchsync_bench_pgsrc"
UPSTREAM = "batchsync_bench_pgsrc_up"
COLUMNS = "ts_code, trade_date, open, high, low, close, pre_close, change, pct_chg, vol, amount"
BARS_TABLE = """CREATE TABLE bars (
    ts_code text, trade_date date, open float8, high float8, low float8, close float8,
    pre_close float8, change float8, pct_chg float8, vol float8, amount float8)"""


def upstream_fill(url: str, days: list[object]) -> None:
    """The upstream's `bars`: the demo's bytes of every day, indexed on trade_date."""
    import psycopg

    from batchsync.sources.demo import demo_day_csv

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(BARS_TABLE)
        for day in days:
            with conn.cursor().copy("COPY bars FROM STDIN (FORMAT csv, HEADER true)") as copy:
                copy.write(demo_day_csv(day))  # type: ignore[arg-type]
        conn.execute("CREATE INDEX ON bars (trade_date)")
        conn.execute("VACUUM ANALYZE bars")


def empty_and_checkpoint() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE daily_bar, batchsync_loaded_day CASCADE")
        cursor.execute("CHECKPOINT")


def time_pipe(upstream_url: str, bench_url: str, first: object, last: object) -> float:
    """Seconds for the two-psql pipe of every day."""
    select = f"\\copy (SELECT {COLUMNS} FROM bars WHERE trade_date BETWEEN '{first}' AND '{last}') TO STDOUT"
    started = time.perf_counter()
    out = subprocess.Popen(["psql", "-X", "-q", upstream_url, "-c", select], stdout=subprocess.PIPE)
    into = subprocess.run(
        [
            "psql",
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            bench_url,
            "-c",
            f"\\copy daily_bar ({COLUMNS}) FROM STDIN",
        ],
        stdin=out.stdout,
        check=True,
    )
    assert out.stdout is not None
    out.stdout.close()
    if out.wait() != 0 or into.returncode != 0:
        sys.exit("the psql pipe failed")
    return time.perf_counter() - started


def time_source(upstream_url: str, days: list[object], workers: int = 1) -> float:
    """Seconds for the postgres source, a transaction per day as the runner does, by `workers` threads.

    One source object, as the runner's workers of one process share a job: each thread has its
    own Django connection and its own upstream session.
    """
    from django.db import connection, transaction

    from batchsync import loader
    from batchsync.sources.postgres import PostgresSource

    source = PostgresSource(source_url=upstream_url, table="bars")
    source.validate()

    def work(share: list[object]) -> None:
        for day in share:
            with transaction.atomic(), connection.cursor() as cursor:
                loader.replace_day(cursor, day, source.fetch_day(day))  # type: ignore[arg-type]
        if workers > 1:
            connection.close()

    started = time.perf_counter()
    if workers == 1:
        work(days)
    else:
        threads = [threading.Thread(target=work, args=(days[index::workers],)) for index in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    server_url, bench_url = bench_database("bench/postgres_source.py", DATABASE)
    recreate_database(server_url, UPSTREAM)
    upstream_url = with_database(server_url, UPSTREAM)
    os.environ["DATABASE_URL"] = bench_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "syncproject.settings")
    import django
    from django.core.management import call_command
    from django.db import connection

    django.setup()
    call_command("migrate", verbosity=0)
    days: list[object] = list(trading_days(args.days))
    upstream_fill(upstream_url, days)
    pipes: list[float] = []
    loads: list[float] = []
    parallel: list[float] = []
    for _ in range(args.repeat):  # interleaved: the shared machine's speed drifts
        empty_and_checkpoint()
        pipes.append(time_pipe(upstream_url, bench_url, days[0], days[-1]))
        empty_and_checkpoint()
        loads.append(time_source(upstream_url, days))
        empty_and_checkpoint()
        parallel.append(time_source(upstream_url, days, workers=2))
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM daily_bar")
        (rows,) = cursor.fetchone() or (0,)
    print(machine())
    connection.close()
    recreate_database(server_url, UPSTREAM, drop_only=True)
    recreate_database(server_url, DATABASE, drop_only=True)
    print(f"{len(days)} days x 5,500 bars = {rows:,} rows; best of {args.repeat} rounds")
    for label, seconds in (
        ("psql \\copy to stdout | psql \\copy from stdin", min(pipes)),
        ("postgres source, a transaction per day", min(loads)),
        ("the same, 2 workers (the default here)", min(parallel)),
    ):
        print(f"{label:<48} {seconds:.2f} s ({rows / seconds:,.0f} rows/s)")
    print(f"ratio (pipe seconds / source seconds), 1 worker: {min(pipes) / min(loads):.2f} (goal >= 0.8)")
    print(f"ratio (pipe seconds / source seconds), 2 workers: {min(pipes) / min(parallel):.2f}")


if __name__ == "__main__":
    main()
