"""Calls per minute the tushare source achieves under its shared rate limit, with 1, 2 and 4 workers.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/tushare.py --limit 300 --seconds 20

On its own database `batchsync_bench_tushare` (dropped and created here, for the limit's row),
against the fake tushare server (in this process, on a free port, counting over the vendor's
60 s window at `--limit` calls per minute), with TUSHARE_CALLS_PER_MINUTE = `--limit`: for
each worker count, that many threads call `TushareSource.fetch_day` (one call per day, the
whole 5,500-bar market) for `--seconds`. Prints the calls per minute achieved, as a fraction
of the limit, and the 40203 (throttled) answers; the goal is >= 0.95 with 2+ workers and none.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import bench_database, machine

DATABASE = "batchsync_bench_tushare"
TOKEN = "bench-token"
WORKER_COUNTS = (1, 2, 4)
GOAL = 0.95


def run_workers(server: object, workers: int, seconds: float, limit: int) -> tuple[float, int, int]:
    """`workers` threads fetching days for `seconds`; return (fraction of the limit, calls, 40203 answers)."""
    from django.db import connection

    from batchsync.exceptions import SourceError
    from batchsync.sources.tushare import TushareSource
    from batchsync.sources.tushare_fake import FakeTushareCounters, FakeTushareServer

    assert isinstance(server, FakeTushareServer)
    time.sleep(2 * 60.0 / limit)  # the previous run's last slot has passed
    server.counters = FakeTushareCounters()
    deadline = time.monotonic() + seconds
    days = [dt.date(2025, 9, 1) + dt.timedelta(days=offset) for offset in range(30)]
    weekdays = [day for day in days if day.weekday() < 5]

    def fetch_until_deadline(worker: int) -> None:
        source = TushareSource()
        calls = worker
        try:
            while time.monotonic() < deadline:
                try:
                    source.fetch_day(weekdays[calls % len(weekdays)])
                except SourceError as error:
                    if not error.transient:
                        raise
                calls += workers
        finally:
            connection.close()

    threads = [threading.Thread(target=fetch_until_deadline, args=(worker,)) for worker in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    times = sorted(server.counters.call_times)
    per_minute = (len(times) - 1) / (times[-1] - times[0]) * 60.0 if len(times) > 1 else 0.0
    return per_minute / limit, len(times), server.counters.throttled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=300, help="calls per minute (the fake's and ours)")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long each worker count runs")
    args = parser.parse_args()
    _, url = bench_database("bench/tushare.py", DATABASE)
    os.environ["DATABASE_URL"] = url
    os.environ["TUSHARE_CALLS_PER_MINUTE"] = str(args.limit)
    os.environ["TUSHARE_TOKEN"] = TOKEN
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "syncproject.settings")

    from batchsync.sources.tushare_fake import FakeTushareConfig, fake_tushare_start

    server = fake_tushare_start(FakeTushareConfig(token=TOKEN, per_minute=args.limit))
    os.environ["TUSHARE_API_URL"] = server.url
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    print(machine())
    print(f"limit {args.limit} calls/min, {args.seconds:g} s per worker count, fake tushare at {server.url}")
    print("workers  calls  calls/min  fraction of limit  40203 answers")
    failed = False
    for workers in WORKER_COUNTS:
        fraction, calls, throttled = run_workers(server, workers, args.seconds, args.limit)
        print(f"{workers:>7}  {calls:>5}  {fraction * args.limit:>9.1f}  {fraction:>17.3f}  {throttled:>13}")
        failed |= throttled > 0 or (workers >= 2 and fraction < GOAL)
    server.shutdown()
    print(f"goal (>= {GOAL} of the limit with 2+ workers, no 40203): {'fail' if failed else 'pass'}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
