"""What the data checks add to a day's load: the csv source, all rules on against all off.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/checks.py --days 250
    DATABASE_URL=... python bench/checks.py --days 250 --command     # + the whole command

On its own database `batchsync_bench_checks` (dropped and created here), with the demo
source's bytes as one CSV file per day (`bench/data/csv-checks`, reused next time).

1. The day's transaction, in this process: `--repeat` backfills of `--days` XSHG sessions
   from scratch, each day loaded once, in date order, as the runner commits a day
   (`CsvDirectorySource` fetch, DELETE + COPY, the data checks and their findings, the
   provenance record, commit, then the comparison with its neighbours), the days taking
   three modes in turn: every check at its default severity ("on"), every check off ("off"),
   and "floor": "off" plus one statement with only the rules' arithmetic (`FLOOR`), the least
   any SQL check of these rules must pay. Each day takes each mode in one of three rounds.
   Interleaving day by day keeps the machine's drift out of the ratios (whole runs a minute
   apart differed by 2x on a shared machine). Wall and CPU seconds (this process + its
   server backend, from /proc) per day and mode.
2. `--command`: the whole `batch_sync run --source csv` over the same days in a subprocess, a
   fresh backfill each time (no bars, records, findings or jobs), as a user runs it (default
   parallelism), checks on and off (`BATCHSYNC_CHECKS`) in alternating order, `--repeat` times.

Prints the ratios on / off and floor / off (goal: on / off at most 1.10).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import bench_django, generate_files, machine, trading_days

DATABASE = "batchsync_bench_checks"
DATA = Path(__file__).resolve().parent / "data" / "csv-checks"
TICK = os.sysconf("SC_CLK_TCK")
MODES = ("off", "on", "floor")

# The rules' arithmetic and nothing else, each in the cheapest form measured (docs/benchmarks.md):
# high/low as the checks write it, change as one addition and one comparison, pct_chg with its
# three multiplications, the implied price with its four; no ts_code format, no previous day's
# closes, no row count, no JSON, no findings. Numeric operations cost 0.1-0.3 us a row each, so
# these alone set how little checking these rules over a day's rows in SQL can cost.
FLOOR = """
SELECT count(*) FILTER (WHERE bar.high < greatest(bar.open, bar.close) OR bar.low > least(bar.open, bar.close)
    OR bar.change + bar.pre_close <> bar.close
    OR abs(bar.pct_chg * bar.pre_close - 100 * bar.change) > 0.01 * bar.pre_close
    OR bar.amount < bar.vol * bar.low * 0.099 OR bar.amount > bar.vol * bar.high * 0.101)
FROM daily_bar bar WHERE bar.trade_date = %(day)s
"""


def backend_cpu(pid: int) -> float:
    """CPU seconds (user + system) of the server backend `pid` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


class Totals:
    """Wall and CPU seconds of one mode, per day and per round, and the checks' own time per day."""

    def __init__(self) -> None:
        self.days: list[float] = []
        self.checks: list[float] = []
        self.rounds: list[tuple[float, float]] = []  # (wall, CPU) of each round
        self._round = [0.0, 0.0]

    def add(self, wall: float, cpu: float, checks: float) -> None:
        self.days.append(wall)
        self.checks.append(checks)
        self._round[0] += wall
        self._round[1] += cpu

    def round_close(self, loads: int) -> None:
        """Close a round of `loads` loads: its wall and CPU seconds per load."""
        self.rounds.append((self._round[0] / loads, self._round[1] / loads))
        self._round = [0.0, 0.0]

    @property
    def wall(self) -> float:
        return statistics.mean(wall for wall, _ in self.rounds)

    @property
    def cpu(self) -> float:
        return statistics.mean(cpu for _, cpu in self.rounds)


def round_ratios(
    top: list[tuple[float, float]], bottom: list[tuple[float, float]]
) -> tuple[list[float], list[float]]:
    """Each round's wall and CPU ratios top / bottom (their runs interleaved, seconds apart)."""
    pairs = list(zip(top, bottom, strict=True))
    return [t[0] / b[0] for t, b in pairs], [t[1] / b[1] for t, b in pairs]


def ratios_line(name: str, walls: list[float], cpus: list[float]) -> str:
    return (
        f"  {name}: median of the rounds' ratios: wall {statistics.median(walls):.3f}, "
        f"CPU {statistics.median(cpus):.3f} (rounds: wall {', '.join(f'{r:.3f}' for r in walls)}; "
        f"CPU {', '.join(f'{r:.3f}' for r in cpus)})"
    )


def loader_rounds(days: list[dt.date], repeat: int) -> None:
    """Part 1: the day's transaction in three modes, interleaved day by day."""
    from django.db import connection, transaction
    from django.test import override_settings

    from batchsync import loader, services
    from batchsync.checks import DayCheck
    from batchsync.conf import DATA_CHECK_DEFAULTS
    from batchsync.models import DayFinding, LoadedDay, SyncJob, SyncJobStatus
    from batchsync.sources.csv import CsvDirectorySource

    source = CsvDirectorySource(path=DATA)
    job = SyncJob.objects.create(
        task_id=f"bench-{time.time_ns()}", source="csv", start_date=days[0], end_date=days[-1],
        status=SyncJobStatus.SUCCEEDED,
    )  # fmt: skip
    origin = services.DayOrigin("csv", services.source_options_fingerprint({}), job.pk)
    checks_off = override_settings(BATCHSYNC={"CHECKS": dict.fromkeys(DATA_CHECK_DEFAULTS, "off")})
    settings = {"on": override_settings(BATCHSYNC={}), "off": checks_off, "floor": checks_off}
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]

    def floor(day: dt.date) -> None:
        services.day_checks_enforce(day, origin="bench", job_id=job.pk)  # all off: as in "off"
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL jit = off")  # as the checks do (their first statement)
            cursor.execute(FLOOR, {"day": day})

    checking: dict[str, Callable[[dt.date], object]] = {
        "on": lambda day: services.day_checks_enforce(day, origin="bench", job_id=job.pk),
        "off": lambda day: services.day_checks_enforce(day, origin="bench", job_id=job.pk),
        "floor": floor,
    }

    def load(day: dt.date, mode: str, totals: Totals) -> None:
        with settings[mode]:
            wall, client, server = time.perf_counter(), time.thread_time(), backend_cpu(pid)
            payload = source.fetch_day(day)
            with transaction.atomic(), connection.cursor() as cursor:
                loader.replace_day(cursor, day, payload)
                checked = time.perf_counter()
                found = checking[mode](day)
                checks = time.perf_counter() - checked
                compared = found.previous_checksum if isinstance(found, DayCheck) else None
                services.loaded_day_record(day, origin, previous_checksum=compared)
            compared_after = time.perf_counter()
            services.loaded_day_neighbours_check(day)  # as the runner does after the commit
            checks += time.perf_counter() - compared_after
            totals.add(
                time.perf_counter() - wall, time.thread_time() - client + backend_cpu(pid) - server, checks
            )

    def empty() -> None:
        """No bars, load records or findings: each round is a backfill from scratch."""
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE daily_bar, {LoadedDay._meta.db_table}, {DayFinding._meta.db_table}")
            cursor.execute("CHECKPOINT")

    totals = {mode: Totals() for mode in MODES}
    for round_ in range(repeat):
        empty()
        loads = dict.fromkeys(MODES, 0)
        for index, day in enumerate(days):  # in date order, each day once, the modes in turn
            mode = MODES[(index + round_) % len(MODES)]
            load(day, mode, totals[mode])
            loads[mode] += 1
        for mode, each in totals.items():
            each.round_close(loads[mode])
    print(f"1. the day's transaction: a backfill of {len(days)} days x 5,500 rows, {repeat} rounds")
    for mode, label in (("off", "all checks off"), ("on", "all checks on"), ("floor", "off + FLOOR")):
        each = totals[mode]
        median_day, median_checks = statistics.median(each.days), statistics.median(each.checks)
        print(
            f"  {label:15} per day: wall {each.wall * 1e3:5.1f} ms (median {median_day * 1e3:5.1f}), "
            f"CPU {each.cpu * 1e3:5.1f} ms; the checks' own time: median {median_checks * 1e3:5.2f} ms"
        )
    print(
        ratios_line("on / off", *round_ratios(totals["on"].rounds, totals["off"].rounds)) + "; goal <= 1.10"
    )
    print(ratios_line("floor / off", *round_ratios(totals["floor"].rounds, totals["off"].rounds)))
    on_days = DayFinding.objects.values("trade_date").distinct().count()
    print(f"  days with warnings in the last round (its days with checks on): {on_days}")


def command_rounds(url: str, days: list[dt.date], repeat: int, parallelism: int | None) -> None:
    """Part 2: the whole command, a fresh backfill each run, checks on and off alternately."""
    from batchsync.conf import DATA_CHECK_DEFAULTS
    from bench.command_run import CommandRun, run_command

    logs = DATA.parent / "logs"
    logs.mkdir(exist_ok=True)
    off = {"BATCHSYNC_CHECKS": ",".join(f"{name}=off" for name in DATA_CHECK_DEFAULTS)}
    runs: dict[str, list[CommandRun]] = {"on": [], "off": []}
    for round_ in range(repeat):
        for mode in ("on", "off") if round_ % 2 == 0 else ("off", "on"):
            environ = off if mode == "off" else {}
            runs[mode].append(run_command(url, days, DATA, logs / f"checks-{mode}.log", parallelism, environ))
    workers = runs["on"][0].parallelism
    print(f"2. the whole batch_sync command, {len(days)} days, {workers} workers, {repeat} runs per mode")
    for mode in ("off", "on"):
        each = runs[mode]
        print(
            f"  checks {mode:3}: wall {', '.join(f'{run.wall_seconds:.2f}' for run in each)} s; "
            f"CPU {', '.join(f'{run.cpu_seconds or 0:.2f}' for run in each)} s"
        )

    def seconds(run: CommandRun) -> tuple[float, float]:
        return run.wall_seconds, run.cpu_seconds or 0.0

    walls, cpus = round_ratios([seconds(run) for run in runs["on"]], [seconds(run) for run in runs["off"]])
    print(ratios_line("on / off", walls, cpus) + "; goal <= 1.10")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=250)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--command", action="store_true", help="also time the whole batch_sync command")
    parser.add_argument("--parallelism", type=int, help="the command's workers (default: its own)")
    parser.add_argument("--database", default=DATABASE, help="the bench's own database (dropped and created)")
    args = parser.parse_args()
    url = bench_django("bench/checks.py", args.database)
    days = trading_days(args.days)
    generate_files(days, DATA)
    print(machine())
    loader_rounds(days, args.repeat)
    if args.command:
        command_rounds(url, days, args.repeat, args.parallelism)


if __name__ == "__main__":
    main()
