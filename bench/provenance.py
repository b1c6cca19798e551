"""Per-day cost of recording a day's provenance (its checksum reads the day's rows back).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/provenance.py --days 40

On its own database `batchsync_bench_prov` (dropped and created here): for each of `--days`
XSHG sessions, one transaction replaces the day with the demo source's 5,500 bars (as the
runner does) and then records its provenance (`services.loaded_day_record`: count and md5
over the day's rows, and the upsert). Prints the median and p90 of the COPY and of the
record, in milliseconds, and the record's share of the two (best of `--repeat` runs).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import bench_django, trading_days

DATABASE = "batchsync_bench_prov"


def run_once(days: int) -> tuple[list[float], list[float]]:
    """Load every day and record it; return (COPY seconds, record seconds) per day."""
    from django.db import connection, transaction

    from batchsync import loader, services
    from batchsync.models import SyncJob, SyncJobStatus
    from batchsync.sources.demo import DemoSource

    source = DemoSource()
    sessions = trading_days(days)
    job = SyncJob.objects.create(
        task_id=f"bench-{time.time_ns()}",
        source="demo",
        start_date=sessions[0],
        end_date=sessions[-1],
        status=SyncJobStatus.SUCCEEDED,
    )
    origin = services.DayOrigin("demo", services.source_options_fingerprint({}), job.pk)
    copies: list[float] = []
    records: list[float] = []
    for day in sessions:
        payload = source.fetch_day(day)
        with transaction.atomic(), connection.cursor() as cursor:
            started = time.perf_counter()
            loader.replace_day(cursor, day, payload)
            copied = time.perf_counter()
            services.loaded_day_record(day, origin)
            records.append(time.perf_counter() - copied)
            copies.append(copied - started)
    return copies, records


def _ms(values: list[float]) -> str:
    p90 = statistics.quantiles(values, n=10)[-1]
    return f"median {statistics.median(values) * 1e3:.1f} ms, p90 {p90 * 1e3:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    bench_django("bench/provenance.py", DATABASE)
    runs = [run_once(args.days) for _ in range(args.repeat)]
    copies, records = min(runs, key=lambda run: statistics.median(run[1]))
    share = statistics.median(records) / (statistics.median(copies) + statistics.median(records))
    print(f"COPY of 5,500 bars per day ({len(copies)} days, best of {args.repeat}): {_ms(copies)}")
    print(f"provenance record (count + md5 + upsert): {_ms(records)}; {share:.0%} of COPY + record")


if __name__ == "__main__":
    main()
