"""Parallel days: claims with SELECT ... FOR UPDATE SKIP LOCKED, the parallelism cap, date order
at N=1, heartbeats that keep a slow day, and a real 4-worker django-q2 cluster on one job.
"""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from batchsync import dispatch, runner, services
from batchsync.models import SyncDay, SyncDayStatus, SyncJob, SyncJobStatus
from tests.faults import (
    LEASE_SECONDS,
    Events,
    LoadLog,
    assert_clean,
    fault_options,
    qcluster,
    register_test_sources,
    wait_for_status,
    worker_env,
    worker_pid,
)

pytestmark = pytest.mark.django_db(transaction=True)

SEPTEMBER = (dt.date(2025, 9, 1), dt.date(2025, 9, 30))  # 22 trading days, 8 weekend days


@pytest.fixture(autouse=True)
def _test_sources(settings: Any) -> None:
    register_test_sources(settings)


@dispatch.handoff(foreground=True)
def new_job(
    start: dt.date, end: dt.date, *, parallelism: int, source: str = "demo", **options: Any
) -> SyncJob:
    request = services.JobRequest(start, end, source, options, parallelism=parallelism, reprocess="all")
    return services.sync_job_create(request)


def in_threads(count: int, work: Any) -> list[Any]:
    """Run `work(index)` in `count` threads released together; each has its own connection."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = work(index)
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    return results


def test_concurrent_claims_take_every_day_exactly_once() -> None:
    job = new_job(*SEPTEMBER, parallelism=22)
    fence = services.sync_job_join(job.pk, "starter")
    assert fence is not None

    def claim_all(index: int) -> list[dt.date]:
        taken = []
        while (claim := services.sync_day_claim(job.pk, f"w:{index}:x", fence)) is not None:
            taken.append(claim.date)
        return taken

    per_thread = in_threads(8, claim_all)
    claimed = [day for taken in per_thread for day in taken]
    assert len(claimed) == len(set(claimed)) == 22  # no day twice, none missed
    assert sum(1 for taken in per_thread if taken) >= 2  # the claims really were spread out
    assert all(taken == sorted(taken) for taken in per_thread)  # each worker goes in date order
    assert set(
        SyncDay.objects.filter(job=job, status=SyncDayStatus.RUNNING).values_list("date", flat=True)
    ) == set(claimed)


def test_claims_respect_the_parallelism_cap() -> None:
    job = new_job(*SEPTEMBER, parallelism=3)
    fence = services.sync_job_join(job.pk, "starter")
    assert fence is not None
    results = in_threads(8, lambda index: services.sync_day_claim(job.pk, f"w:{index}:x", fence))
    taken = [claim for claim in results if claim is not None]
    assert len(taken) == 3  # five workers were turned away: three days are in flight
    assert sorted(claim.date for claim in taken) == [dt.date(2025, 9, d) for d in (1, 2, 3)]


@pytest.mark.usefixtures("foreground")
def test_one_worker_loads_days_in_date_order() -> None:
    job = new_job(dt.date(2025, 9, 1), dt.date(2025, 9, 12), parallelism=1)
    assert runner.sync_job_run(job.pk).job.status == SyncJobStatus.SUCCEEDED
    loaded = SyncDay.objects.filter(job=job, status=SyncDayStatus.SUCCEEDED).order_by("started_at")
    dates = [day.date for day in loaded]
    assert dates == sorted(dates) and len(dates) == 10


@pytest.mark.usefixtures("foreground")
def test_heartbeat_keeps_a_day_slower_than_its_lease(tmp_path: Path, loads: LoadLog) -> None:
    slow = dt.date(2025, 9, 2)
    job = new_job(
        dt.date(2025, 9, 1),
        dt.date(2025, 9, 3),
        parallelism=2,
        source="fault",
        **fault_options(tmp_path / "m", fetch_delay=2.5 * LEASE_SECONDS, delay_dates=[slow.isoformat()]),
    )
    # Two workers: the idle one waits at the tail, but the slow day's lease is kept alive.
    outcomes = in_threads(2, lambda index: runner.sync_job_run(job.pk))
    assert {o.job.status for o in outcomes} == {SyncJobStatus.SUCCEEDED}
    day = SyncDay.objects.get(job=job, date=slow)
    assert day.attempts == 1  # never taken over
    assert loads.per_day() == dict.fromkeys([dt.date(2025, 9, d) for d in (1, 2, 3)], 1)


@pytest.mark.slow
def test_four_cluster_workers_share_one_job_and_no_day_is_loaded_twice(
    tmp_path: Path, subprocess_env: dict[str, str], loads: LoadLog
) -> None:
    job = new_job(
        dt.date(2025, 9, 1),
        dt.date(2025, 9, 19),  # 15 trading days
        parallelism=4,
        source="fault",
        **fault_options(tmp_path / "m", fetch_delay=0.3),
    )
    events = Events(tmp_path / "m")
    with qcluster(worker_env(subprocess_env), tmp_path / "cluster.log", workers=4) as cluster:
        dispatch.sync_job_enqueue_workers(job.pk, job.parallelism)
        job = wait_for_status(job, SyncJobStatus.SUCCEEDED, SyncJobStatus.FAILED, timeout=90)
        assert job.status == SyncJobStatus.SUCCEEDED, cluster.log()[-3000:]
    days = list(SyncDay.objects.filter(job=job, status=SyncDayStatus.SUCCEEDED))
    assert len(days) == 15 and all(day.attempts == 1 for day in days)
    workers = {day.worker_id for day in days}
    assert 2 <= len(workers) <= 4 and len({worker_pid(w) for w in workers}) == len(workers)
    # How many days were in flight at once, from the days' own start and finish times.
    moments = sorted([(d.started_at, 1) for d in days] + [(d.finished_at, -1) for d in days])
    in_flight, most = 0, 0
    for _, step in moments:
        in_flight += step
        most = max(most, in_flight)
    assert 2 <= most <= 4
    # Each day committed once, by the worker the day row names.
    assert loads.per_day() == {day.date: 1 for day in days}
    by_day = {load.trade_date: load.application_name for load in loads.loads()}
    assert all(by_day[day.date] == day.worker_id for day in days)
    assert events.count("fetch") == 15
    assert_clean([day.date for day in days])
