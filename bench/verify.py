"""`batch_sync verify` over 10 years of bars, as a ratio to one `SELECT count(*)` of the same rows.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/verify.py

On its own database `batchsync_bench_verify` (dropped and created here; `--reuse` keeps one a
previous run filled): the last `--days` XSHG sessions (2,430: ten years) x 5,500 bars, made
by one INSERT ... SELECT generate_series in PostgreSQL, and each day's load record (rows and
checksum, the load's own expression) by one grouped INSERT. Then, best of `--repeat`: one
`SELECT count(*)` over the range (the floor: reading the rows once), and the foreground
`batch_sync verify --start --end` (every day's rows and checksum recomputed and compared).
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import bench_django, machine, trading_days, with_database

DATABASE = "batchsync_bench_verify"
SYMBOLS = 5500

# Bars for every (day, symbol): prices from the day's index and the symbol, 2 decimals, in
# key order (the primary key's index grows at its right edge, as daily loads make it).
GENERATE = """
INSERT INTO daily_bar (trade_date, ts_code, open, high, low, close, pre_close, change, pct_chg, vol, amount)
SELECT day.trade_date, lpad(symbol::text, 6, '0') || CASE WHEN symbol %% 3 = 0 THEN '.SH' ELSE '.SZ' END,
       price.open, greatest(price.open, price.close) + 0.05, least(price.open, price.close) - 0.05,
       price.close, price.open, price.close - price.open,
       round((price.close - price.open) * 100 / price.open, 4),
       (symbol * 37 + day.n) %% 200000 + 100.25, ((symbol * 37 + day.n) %% 200000 + 100) * price.close / 10
FROM unnest(%(days)s::date[]) WITH ORDINALITY AS day (trade_date, n),
     generate_series(1, %(symbols)s) AS symbol,
     LATERAL (SELECT round(3 + ((symbol * 7919 + day.n * 104729) %% 100000) / 1000.0, 2) AS open,
                     round(3 + ((symbol * 7919 + day.n * 104729 + 31) %% 100000) / 1000.0, 2) AS close) price
ORDER BY 1, 2
"""


def generate(days: int) -> tuple[int, float]:
    """Fill the bench database (bars and load records) unless it holds them; (rows, seconds)."""
    from django.db import connection

    from batchsync import sql

    sessions = trading_days(days)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM daily_bar")
        (rows,) = cursor.fetchone()
        if rows != len(sessions) * SYMBOLS:
            cursor.execute("TRUNCATE daily_bar, batchsync_loaded_day")
            cursor.execute(GENERATE, {"days": sessions, "symbols": SYMBOLS})
            cursor.execute(
                f"INSERT INTO batchsync_loaded_day (trade_date, source, options_fingerprint, rows, checksum, "
                f"loaded_at) SELECT bar.trade_date, 'demo', 'bench', count(*), {sql.DAY_CHECKSUM}, now() "
                "FROM daily_bar bar GROUP BY bar.trade_date"
            )
            cursor.execute("VACUUM ANALYZE daily_bar")
            cursor.execute("SELECT count(*) FROM daily_bar")
            (rows,) = cursor.fetchone()
    return rows, time.perf_counter() - started


def count_scan(first: str, last: str) -> float:
    """Seconds of one `SELECT count(*)` over the range's rows."""
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM daily_bar WHERE trade_date BETWEEN %s AND %s", [first, last])
        cursor.fetchone()
    return time.perf_counter() - started


def verify(first: str, last: str, parallelism: int | None) -> tuple[float, str]:
    """Seconds of the foreground `batch_sync verify` over the range, and its last line."""
    from django.core.management import call_command

    out = io.StringIO()
    extra = ["--parallelism", str(parallelism)] if parallelism else []
    started = time.perf_counter()
    call_command("batch_sync", "verify", "--start", first, "--end", last, *extra, stdout=out)
    return time.perf_counter() - started, out.getvalue().strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=2430)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--parallelism", type=int, default=None, help="default: the command's own")
    parser.add_argument("--reuse", action="store_true", help="keep the bench database of an earlier run")
    args = parser.parse_args()
    if args.reuse:
        import os

        os.environ["DATABASE_URL"] = with_database(os.environ["DATABASE_URL"], DATABASE)
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "syncproject.settings")
        import django

        django.setup()
    else:
        bench_django("bench/verify.py", DATABASE)
    rows, made = generate(args.days)
    sessions = trading_days(args.days)
    first, last = sessions[0].isoformat(), sessions[-1].isoformat()
    print(f"{machine()}")
    print(f"{len(sessions):,} days x {SYMBOLS:,} bars = {rows:,} rows ({first} .. {last})")
    print(f"bench data ready in {made:.0f} s")
    scans = [count_scan(first, last) for _ in range(args.repeat)]
    runs = [verify(first, last, args.parallelism) for _ in range(args.repeat)]
    scan = min(scans)
    took, line = min(runs)
    print(f"SELECT count(*) over the rows: best {scan:.2f} s of {args.repeat}")
    each = ", ".join(f"{run[0]:.1f}" for run in runs)
    print(f"batch_sync verify: best {took:.1f} s of {args.repeat} ({each})")
    print(f"  {line}")
    print(f"verify / count(*) = {took / scan:.1f}x")


if __name__ == "__main__":
    main()
