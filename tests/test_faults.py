"""Fault injection on real processes and real PostgreSQL: kill -9, SIGSTOP, terminated
connections, crashing sources, racing starts, transient errors. After every fault the loaded
days must be exactly those of a clean run: nothing lost, nothing duplicated, no partial day.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.utils import translation

from batchsync import loader, runner, services
from batchsync.models import SyncDay, SyncDayStatus, SyncError, SyncJob, SyncJobStatus
from tests.faults import (
    LEASE_SECONDS,
    Events,
    Ledger,
    LoadLog,
    Process,
    assert_clean,
    bar_count,
    fault_env,
    fault_options,
    job_now,
    load_log,
    qcluster,
    register_test_sources,
    run_manage,
    wait_for_status,
    wait_until,
    worker_env,
    worker_pid,
)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SEP_1, SEP_2, SEP_3, SEP_4, SEP_5 = (dt.date(2025, 9, d) for d in range(1, 6))
WEEK = [SEP_1, SEP_2, SEP_3, SEP_4, SEP_5]  # five trading days on XSHG


@pytest.fixture(autouse=True)
def _test_sources(settings: Any) -> None:
    register_test_sources(settings)


@pytest.fixture
def loads() -> Iterator[LoadLog]:
    with load_log() as log:
        yield log


@pytest.fixture
def ledger(request: pytest.FixtureRequest) -> Iterator[Ledger]:
    record = Ledger(request.node.name)
    yield record
    record.write()


@pytest.fixture
def env(subprocess_env: dict[str, str]) -> dict[str, str]:
    return worker_env(subprocess_env)


def fault_job(
    marker_dir: Path, start: dt.date = SEP_1, end: dt.date = SEP_5, *, parallelism: int = 1, **faults: Any
) -> SyncJob:
    """A job on the fault source, created here and run by whatever worker the test starts."""
    request = services.JobRequest(
        start_date=start,
        end_date=end,
        source="fault",
        source_options=fault_options(marker_dir, **faults),
        parallelism=parallelism,
        reprocess="all",
    )
    return services.sync_job_create(request, enqueue=None)


def preload_partial(day: dt.date, rows: int) -> None:
    """Give `day` an older, smaller version of its bars (the first `rows` of the demo day)."""
    data = b"\n".join(loader_lines(day)[: rows + 1]) + b"\n"
    with connection.cursor() as cursor:
        from batchsync.sources.base import CsvPayload

        loader.replace_day(cursor, day, CsvPayload(chunks=[data], origin="preload"))


def loader_lines(day: dt.date) -> list[bytes]:
    from batchsync.sources.demo import demo_day_csv

    return demo_day_csv(day).rstrip(b"\n").split(b"\n")


# --- 1. kill -9 a worker in the middle of a day ------------------------------------------------


@pytest.mark.parametrize(
    ("point", "reloaded"),
    [
        ("fetch", False),  # before the day's transaction
        ("copy", False),  # DELETE done, a third of the rows sent to COPY
        ("copy", True),  # the same, on a day that already had (older) rows
    ],
)
def test_kill_9_foreground_worker_mid_day_then_another_worker_completes_the_job(
    tmp_path: Path, env: dict[str, str], loads: LoadLog, ledger: Ledger, point: str, reloaded: bool
) -> None:
    if reloaded:
        preload_partial(SEP_3, 1000)
        loads.clear()
    pause = {"fetch_delay": 60} if point == "fetch" else {"copy_pause": 60}
    job = fault_job(tmp_path / "m", delay_dates=[SEP_3.isoformat()], delay_attempts=1, **pause)
    events = Events(tmp_path / "m")

    first = Process(["batch_sync", "work", job.task_id], env, tmp_path / "w1.log").start()
    assert events.wait(point, SEP_3) == first.pid
    os.kill(first.pid, signal.SIGKILL)
    assert first.wait() == -signal.SIGKILL
    ledger.fault(f"kill -9 at {point}")

    # Right after the kill: days before are whole, the day in flight is untouched.
    assert_clean([SEP_1, SEP_2])
    assert bar_count(SEP_3) == (1000 if reloaded else 0)
    assert bar_count(SEP_4) == bar_count(SEP_5) == 0
    day = SyncDay.objects.get(job=job, date=SEP_3)
    assert (day.status, day.attempts) == (SyncDayStatus.RUNNING, 1)

    # A second worker joins the stalled job and takes the day over once its lease runs out.
    second = Process(["batch_sync", "work", job.task_id], env, tmp_path / "w2.log").start()
    assert second.wait() == 0, second.log()
    job = job_now(job)
    assert job.status == SyncJobStatus.SUCCEEDED, second.log()
    assert (job.success_days, job.failed_days, job.rows_loaded) == (5, 0, 5 * 5500)
    day.refresh_from_db()
    assert (day.status, day.attempts, worker_pid(day.worker_id)) == (SyncDayStatus.SUCCEEDED, 2, second.pid)
    ledger.checked(assert_clean(WEEK))
    assert loads.per_day() == dict.fromkeys(WEEK, 1)  # every day committed exactly once
    ledger.jobs_completed += 1
