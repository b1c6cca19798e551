"""Parallel days benchmark: one job's days spread over N django-q2 workers.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/parallel.py

Runs a real `manage.py qcluster` with 8 workers on its own database `batchsync_bench_parallel`
of the DATABASE_URL server (dropped and created here, so user data is never touched), then in
one run times whole jobs, from the job's start to its end as the job row records them:

1. the `latency` source (demo bars after a fixed delay per day, like a remote API) with
   parallelism N = 1, 2, 4, 8: latency-bound, so throughput should scale close to N;
2. the `csv` source (files in bench/data/parallel-csv, generated once) with N = 1 and 2:
   CPU- and disk-bound (on 2 cores, the server's COPY and the client share them).

A warm-up job first runs one task in each of the cluster's worker processes (so no measured run
pays for cold imports). Each is printed as days/s and as a ratio to N=1 of the same source.
Every run is verified from
the database: all days succeeded, at most N were in flight at once, and a trigger on
`daily_bar` that logs every COMMITTED load shows each day loaded exactly once (no day loaded by
two workers). Acceptance: the latency source at N=4 is at least 3x N=1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

from bench.common import (  # noqa: E402
    bench_database,
    calendar_store,
    generate_files,
    machine,
    recreate_database,
    trading_days,
)

BENCH_DB = "batchsync_bench_parallel"
CLUSTER_WORKERS = 8

LOAD_LOG_SQL = """
CREATE TABLE IF NOT EXISTS bench_load_log (
    id bigserial PRIMARY KEY, trade_date date NOT NULL, n bigint NOT NULL, app text NOT NULL
);
CREATE OR REPLACE FUNCTION bench_log_load() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO bench_load_log (trade_date, n, app)
    SELECT trade_date, count(*), current_setting('application_name') FROM new_rows GROUP BY trade_date;
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS bench_load_log ON daily_bar;
CREATE TRIGGER bench_load_log AFTER INSERT ON daily_bar REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION bench_log_load();
"""


@dataclass
class Run:
    source: str
    workers: int
    days: int
    seconds: float
    most_in_flight: int
    distinct_workers: int
    loads_per_day: int  # the most times any day was committed (must be 1)
    ratio: float = 0.0

    @property
    def days_per_second(self) -> float:
        return self.days / self.seconds if self.seconds else 0.0


def sql(statement: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return list(cursor.fetchall()) if cursor.description else []


def start_cluster(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        cluster = subprocess.Popen(
            [sys.executable, str(PROJECT_DIR / "manage.py"), "qcluster"],
            env=env,
            cwd=PROJECT_DIR,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 60
    while not any(word in log_path.read_text(errors="replace") for word in ("running.", "正在运行")):
        if time.monotonic() > deadline or cluster.poll() is not None:
            sys.exit(f"qcluster did not start; see {log_path}")
        time.sleep(0.2)
    return cluster


def run_job(source: str, options: dict[str, Any], days: list[dt.date], workers: int) -> Run:
    """One job of `days` with `workers` days in flight, on the cluster; verified afterwards."""
    from batchsync import services
    from batchsync.models import SyncDay, SyncDayStatus, SyncJob, SyncJobStatus

    sql("TRUNCATE daily_bar, bench_load_log")
    sql("CHECKPOINT")
    request = services.JobRequest(
        start_date=days[0],
        end_date=days[-1],
        source=source,
        source_options=options,
        parallelism=workers,
        reprocess="all",
    )
    job = services.sync_job_create(request)  # enqueues `workers` tasks on commit
    deadline = time.monotonic() + 600
    while not job.is_finished:
        if time.monotonic() > deadline:
            sys.exit(f"job {job.task_id} did not finish in 10 minutes")
        time.sleep(0.1)
        job = SyncJob.objects.get(pk=job.pk)
    if job.status != SyncJobStatus.SUCCEEDED:
        sys.exit(f"job {job.task_id} ended {job.status}: {job.message}")
    loaded = list(SyncDay.objects.filter(job=job, status=SyncDayStatus.SUCCEEDED))
    assert len(loaded) == len(days), (len(loaded), len(days))
    assert job.started_at is not None and job.finished_at is not None
    moments = sorted(
        [(d.started_at, 1) for d in loaded if d.started_at]
        + [(d.finished_at, -1) for d in loaded if d.finished_at]
    )
    in_flight = most = 0
    for _, step in moments:
        in_flight += step
        most = max(most, in_flight)
    per_day = dict(sql("SELECT trade_date, count(*) FROM bench_load_log GROUP BY trade_date"))
    return Run(
        source=source,
        workers=workers,
        days=len(loaded),
        seconds=(job.finished_at - job.started_at).total_seconds(),
        most_in_flight=most,
        distinct_workers=len({d.worker_id for d in loaded}),
        loads_per_day=max(per_day.values()) if len(per_day) == len(days) else 0,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=24, help="trading days per latency job (default 24)")
    parser.add_argument("--latency", type=float, default=1.0, help="seconds per day of the latency source")
    parser.add_argument("--workers", default="1,2,4,8", help="parallelism of the latency runs")
    parser.add_argument("--csv-days", type=int, default=60, help="trading days per csv job (default 60)")
    parser.add_argument("--csv-workers", default="1,2", help="parallelism of the csv runs")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument("--keep-db", action="store_true", help=f"keep the {BENCH_DB} database")
    args = parser.parse_args()

    server_url, bench_url = bench_database("bench/parallel.py", BENCH_DB)
    env = {
        **os.environ,
        "DATABASE_URL": bench_url,
        "DJANGO_SETTINGS_MODULE": "syncproject.settings",
        "BATCHSYNC_EXTRA_SOURCES": "latency=batchsync.sources.latency.LatencySource",
        "BATCHSYNC_Q_WORKERS": str(CLUSTER_WORKERS),
        "BATCHSYNC_LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(PROJECT_DIR),
    }
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    call_command("migrate", verbosity=0)
    calendar_store()
    sql(LOAD_LOG_SQL)
    data = PROJECT_DIR / "bench" / "data"
    cluster = start_cluster(env, data / "parallel-cluster.log")
    load_before = os.getloadavg()[0]
    runs: list[Run] = []
    try:
        latency_days = trading_days(args.days)
        csv_days = trading_days(args.csv_days)
        generate_files(csv_days, data / "parallel-csv")
        print(f"machine: {machine()}; qcluster with {CLUSTER_WORKERS} workers, ORM broker")
        print(f"latency source: {len(latency_days)} trading days, {args.latency:.2f} s per day")
        print(f"csv source: {len(csv_days)} trading days x 5,500 rows\n")
        # Warm every worker process first (imports, the demo symbols, a DB connection): a cold
        # worker's first day costs about a second more, which would count against N > 1 only.
        run_job("latency", {"seconds": 0.3}, trading_days(CLUSTER_WORKERS), CLUSTER_WORKERS)
        for workers in map(int, args.workers.split(",")):
            runs.append(run_job("latency", {"seconds": args.latency}, latency_days, workers))
            print(f"  latency N={workers}: {runs[-1].seconds:.2f} s", flush=True)
        for workers in map(int, args.csv_workers.split(",")):
            options = {"path": str(data / "parallel-csv")}
            runs.append(run_job("csv", options, csv_days, workers))
            print(f"  csv     N={workers}: {runs[-1].seconds:.2f} s", flush=True)
    finally:
        os.killpg(cluster.pid, signal.SIGKILL)
        cluster.wait()
        connections.close_all()
        if not args.keep_db:
            recreate_database(server_url, BENCH_DB, drop_only=True)
    load_after = os.getloadavg()[0]

    for run in runs:
        base = next(r for r in runs if r.source == run.source and r.workers == 1)
        run.ratio = run.days_per_second / base.days_per_second
    print(f"\n{'source':8} {'N':>2} {'days':>5} {'seconds':>8} {'days/s':>7} {'vs N=1':>7} {'in flight':>9}")
    for run in runs:
        print(
            f"{run.source:8} {run.workers:>2} {run.days:>5} {run.seconds:>8.2f} {run.days_per_second:>7.2f} "
            f"{run.ratio:>6.2f}x {run.most_in_flight:>5} max"
        )
    twice = [r for r in runs if r.loads_per_day != 1]
    over = [r for r in runs if r.most_in_flight > r.workers]
    four = next((r for r in runs if r.source == "latency" and r.workers == 4), None)
    print(f"\nload average: {load_before:.1f} before, {load_after:.1f} after (the machine may be shared)")
    print(f"no day loaded by two workers: {'yes' if not twice else 'NO: ' + str(twice)} (committed-load log)")
    print(f"never more than N days in flight: {'yes' if not over else 'NO: ' + str(over)}")
    if four is not None:
        verdict = "PASS" if four.ratio >= 3.0 else "FAIL"
        print(f"acceptance, latency N=4 >= 3x N=1: {four.ratio:.2f}x {verdict}")
    if args.json:
        args.json.write_text(json.dumps([{**asdict(r), "days_per_second": r.days_per_second} for r in runs]))
    if twice or over or (four is not None and four.ratio < 3.0):
        sys.exit(1)


if __name__ == "__main__":
    main()
