"""What the data checks add to a day's load: the csv source, all rules on against all off.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/checks.py --days 250

On its own database `batchsync_bench_checks` (dropped and created here), with the demo
source's bytes as one CSV file per day (`bench/data/csv-checks`, reused next time): for each
of `--days` XSHG sessions, one transaction as the runner commits a day (`CsvDirectorySource`
fetch, DELETE + COPY, the data checks with their findings, the provenance record, commit),
with every check at its default severity ("on") and with every check off ("off"). The two
modes alternate over `--repeat` rounds (the machine is shared and its speed drifts); each
round's ratio compares runs a minute apart. Prints the seconds of each run, the checks' own
milliseconds per day, and the ratio on / off (goal: at most 1.10).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import bench_django, generate_files, machine, trading_days

DATABASE = "batchsync_bench_checks"
DATA = Path(__file__).resolve().parent / "data" / "csv-checks"


def run_once(days: list, checks_on: bool) -> tuple[float, list[float]]:  # type: ignore[type-arg]
    """Load every day as the runner does; return (seconds for all days, checks' seconds per day)."""
    from django.db import connection, transaction
    from django.test import override_settings

    from batchsync import loader, services
    from batchsync.conf import DATA_CHECK_DEFAULTS
    from batchsync.models import SyncJob, SyncJobStatus
    from batchsync.sources.csv import CsvDirectorySource

    overrides = {} if checks_on else {"CHECKS": dict.fromkeys(DATA_CHECK_DEFAULTS, "off")}
    source = CsvDirectorySource(path=DATA)
    job = SyncJob.objects.create(
        task_id=f"bench-{time.time_ns()}",
        source="csv",
        start_date=days[0],
        end_date=days[-1],
        status=SyncJobStatus.SUCCEEDED,
    )
    origin = services.DayOrigin("csv", services.source_options_fingerprint({}), job.pk)
    checks: list[float] = []
    with override_settings(BATCHSYNC=overrides):
        started = time.perf_counter()
        for day in days:
            payload = source.fetch_day(day)
            with transaction.atomic(), connection.cursor() as cursor:
                loader.replace_day(cursor, day, payload)
                checked = time.perf_counter()
                services.day_checks_enforce(day, origin=payload.origin, job_id=job.pk)
                checks.append(time.perf_counter() - checked)
                services.loaded_day_record(day, origin)
        return time.perf_counter() - started, checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=250)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    bench_django("bench/checks.py", DATABASE)
    from batchsync.models import DayFinding

    days = trading_days(args.days)
    generate_files(days, DATA)
    print(machine())
    run_once(days[:5], checks_on=True)  # warm up: caches, the first plans
    seconds: dict[bool, list[float]] = {True: [], False: []}
    per_day: list[float] = []
    ratios: list[float] = []
    for round_ in range(args.repeat):
        order = (True, False) if round_ % 2 == 0 else (False, True)
        took: dict[bool, float] = {}
        for checks_on in order:
            took[checks_on], checks = run_once(days, checks_on)
            seconds[checks_on].append(took[checks_on])
            if checks_on:
                per_day.append(statistics.median(checks))
        ratios.append(took[True] / took[False])
        print(f"round {round_ + 1}: on {took[True]:.2f} s, off {took[False]:.2f} s, ratio {ratios[-1]:.3f}")
    rows = args.days * 5500
    best_on, best_off = min(seconds[True]), min(seconds[False])
    print(f"{len(days)} days x 5,500 rows ({rows:,} rows), best of {args.repeat}:")
    print(f"  all checks off: {best_off:.2f} s ({best_off / len(days) * 1e3:.1f} ms per day)")
    print(f"  all checks on:  {best_on:.2f} s ({best_on / len(days) * 1e3:.1f} ms per day)")
    print(f"  the checks' own time per day (median): {min(per_day) * 1e3:.1f} ms")
    print(
        f"  ratio on / off: best {best_on / best_off:.3f}, median of rounds {statistics.median(ratios):.3f}"
        f" ({', '.join(f'{ratio:.3f}' for ratio in ratios)}); goal <= 1.10"
    )
    print(f"  findings stored: {DayFinding.objects.count()} (days with warnings in the demo data)")


if __name__ == "__main__":
    main()
