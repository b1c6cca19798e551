"""The whole `manage.py batch_sync` command in a subprocess, as a user runs it: wall clock, CPU, peak RSS."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bench.measure import ServerCpu, truncate_bars

PROJECT_DIR = Path(__file__).resolve().parent.parent
TIME = "/usr/bin/time"  # GNU time, for the command's peak RSS


def reset_state() -> None:
    """A fresh database state for the command: no bars, no load records or findings, no jobs."""
    from django.db import connection

    from batchsync.models import DayFinding, LoadedDay, SyncJob

    SyncJob.objects.all().delete()
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {LoadedDay._meta.db_table}, {DayFinding._meta.db_table}")
    truncate_bars()


@dataclass
class CommandRun:
    days: int
    parallelism: int
    rows: int
    wall_seconds: float
    runner_seconds: float
    max_rss_mb: float
    exit_code: int
    cpu_seconds: float | None


def run_command(
    bench_url: str,
    days: list[dt.date],
    directory: Path,
    log: Path,
    parallelism: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> CommandRun:
    """Run `manage.py batch_sync` over the days in a subprocess; time it and read its peak RSS.

    `parallelism` None: the command's default, as a user runs it. `environ`: variables set for
    the command only (settings, e.g. `BATCHSYNC_CHECKS`).
    """
    from batchsync.models import SyncJob

    reset_state()
    env = {**os.environ, **(environ or {}), "DATABASE_URL": bench_url, "PYTHONPATH": str(PROJECT_DIR)}
    command = [
        sys.executable,
        str(PROJECT_DIR / "manage.py"),
        "batch_sync",
        "--start",
        days[0].isoformat(),
        "--end",
        days[-1].isoformat(),
        "--source",
        "csv",
        "--path",
        str(directory),
        *([] if parallelism is None else ["--parallelism", str(parallelism)]),
    ]
    # Peak RSS through /usr/bin/time: a child forked from this (big) process would inherit
    # this process's RSS in its own ru_maxrss; time's child is forked from a small process.
    rss_file = log.with_suffix(".rss")
    rss_file.unlink(missing_ok=True)
    if Path(TIME).exists():
        command = [TIME, "-f", "%M", "-o", str(rss_file), *command]
    with log.open("wb") as out, ServerCpu(bench_url) as server:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(process.pid, 0)  # includes the command's CPU under time
        wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    max_rss_kib = int(rss_file.read_text().split()[-1]) if rss_file.exists() else usage.ru_maxrss
    job = SyncJob.objects.get()
    if process.returncode != 0 or job.success_days != len(days):
        sys.exit(f"batch_sync failed (exit {process.returncode}, job {job.status}); see {log}")
    return CommandRun(
        days=len(days),
        parallelism=job.parallelism,
        rows=job.rows_loaded,
        wall_seconds=wall,
        runner_seconds=job.duration_seconds or 0.0,
        max_rss_mb=max_rss_kib / 1024.0,
        exit_code=process.returncode,
        cpu_seconds=None if server.seconds is None else server.seconds + usage.ru_utime + usage.ru_stime,
    )
