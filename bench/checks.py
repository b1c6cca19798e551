"""What the data checks add to a day's load: the csv source, all rules on against all off.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/checks.py --days 250

On its own database `batchsync_bench_checks` (dropped and created here), with the demo
source's bytes as one CSV file per day (`bench/data/csv-checks`, reused next time): each of
`--days` XSHG sessions is loaded as the runner commits a day (`CsvDirectorySource` fetch,
DELETE + COPY, the data checks and their findings, the provenance record, commit), once with
every check at its default severity ("on") and once with every check off ("off"), the two
one right after the other in alternating order. Interleaving day by day (not run by run)
keeps the machine's drift out of the ratio: on a shared machine whole runs a minute apart
differed by 2x. Prints wall seconds and CPU seconds (this process + its server backend, from
/proc: the server must run on this machine) of each mode over all days and rounds, the checks'
own milliseconds per day, and the ratios on / off (goal: at most 1.10).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import bench_django, generate_files, machine, trading_days

DATABASE = "batchsync_bench_checks"
DATA = Path(__file__).resolve().parent / "data" / "csv-checks"
TICK = os.sysconf("SC_CLK_TCK")


def backend_cpu(pid: int) -> float:
    """CPU seconds (user + system) of the server backend `pid` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


class Totals:
    """Wall and CPU seconds of one mode, summed over days and rounds, and per-day checks time."""

    def __init__(self) -> None:
        self.wall = 0.0
        self.cpu = 0.0
        self.days: list[float] = []
        self.checks: list[float] = []
        self.rounds: list[tuple[float, float]] = []  # (wall, CPU) of each round

    def round_close(self) -> None:
        """Record the wall and CPU seconds of the round just finished (totals less earlier rounds')."""
        wall = self.wall - sum(wall for wall, _ in self.rounds)
        cpu = self.cpu - sum(cpu for _, cpu in self.rounds)
        self.rounds.append((wall, cpu))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=250)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--database", default=DATABASE, help="the bench's own database (dropped and created)")
    args = parser.parse_args()
    bench_django("bench/checks.py", args.database)
    from django.db import connection, transaction
    from django.test import override_settings

    from batchsync import loader, services
    from batchsync.conf import DATA_CHECK_DEFAULTS
    from batchsync.models import DayFinding, SyncJob, SyncJobStatus
    from batchsync.sources.csv import CsvDirectorySource

    days = trading_days(args.days)
    generate_files(days, DATA)
    print(machine())
    source = CsvDirectorySource(path=DATA)
    job = SyncJob.objects.create(
        task_id=f"bench-{time.time_ns()}", source="csv", start_date=days[0], end_date=days[-1],
        status=SyncJobStatus.SUCCEEDED,
    )  # fmt: skip
    origin = services.DayOrigin("csv", services.source_options_fingerprint({}), job.pk)
    modes = {
        True: override_settings(BATCHSYNC={}),
        False: override_settings(BATCHSYNC={"CHECKS": dict.fromkeys(DATA_CHECK_DEFAULTS, "off")}),
    }
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]

    def load(day: dt.date, checks_on: bool, totals: Totals) -> None:
        with modes[checks_on]:
            wall, client, server = time.perf_counter(), time.thread_time(), backend_cpu(pid)
            payload = source.fetch_day(day)
            with transaction.atomic(), connection.cursor() as cursor:
                loader.replace_day(cursor, day, payload)
                checked = time.perf_counter()
                services.day_checks_enforce(day, origin=payload.origin, job_id=job.pk)
                totals.checks.append(time.perf_counter() - checked)
                services.loaded_day_record(day, origin)
            took = time.perf_counter() - wall
            totals.wall += took
            totals.days.append(took)
            totals.cpu += time.thread_time() - client + backend_cpu(pid) - server

    warm = Totals()
    for day in days:  # every day loaded once before timing: the previous day is always there
        load(day, True, warm)
    totals = {True: Totals(), False: Totals()}
    for round_ in range(args.repeat):
        for index, day in enumerate(days):
            for checks_on in (True, False) if (index + round_) % 2 == 0 else (False, True):
                load(day, checks_on, totals[checks_on])
        for mode in totals.values():
            mode.round_close()
    on, off = totals[True], totals[False]
    loads = len(days) * args.repeat
    print(
        f"{len(days)} days x 5,500 rows, each loaded {args.repeat} times per mode ({loads} loads per mode):"
    )
    for name, mode in (("all checks off", off), ("all checks on", on)):
        median = statistics.median(mode.days) * 1e3
        print(
            f"  {name:15} wall {mode.wall:6.2f} s (median {median:5.1f} ms per day), "
            f"CPU {mode.cpu:6.2f} s ({mode.cpu / loads * 1e3:5.1f} ms per day)"
        )
    print(f"  the checks' own wall time per day (median): {statistics.median(on.checks) * 1e3:.1f} ms on, "
          f"{statistics.median(off.checks) * 1e3:.2f} ms off")  # fmt: skip
    day_ratio = statistics.median(on.days) / statistics.median(off.days)
    print(
        f"  ratio on / off: wall {on.wall / off.wall:.3f}, median day {day_ratio:.3f}, "
        f"CPU {on.cpu / off.cpu:.3f}; goal <= 1.10"
    )
    # Each round's ratio (its on and off loads interleaved, seconds apart), then their median:
    # steadier than the ratio of the totals when one round meets a burst of load.
    wall_ratios = [
        on_round[0] / off_round[0] for on_round, off_round in zip(on.rounds, off.rounds, strict=True)
    ]
    cpu_ratios = [
        on_round[1] / off_round[1] for on_round, off_round in zip(on.rounds, off.rounds, strict=True)
    ]
    print(
        f"  per round on / off: wall {', '.join(f'{r:.3f}' for r in wall_ratios)}; "
        f"CPU {', '.join(f'{r:.3f}' for r in cpu_ratios)}"
    )
    print(
        f"  median of the rounds' ratios: wall {statistics.median(wall_ratios):.3f}, "
        f"CPU {statistics.median(cpu_ratios):.3f}; goal <= 1.10"
    )
    print(f"  findings stored: {DayFinding.objects.count()} (days with warnings in the demo data)")


if __name__ == "__main__":
    main()
