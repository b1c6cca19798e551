"""Workers' database sessions: who is alive, and a day waiting on another session's table lock.

Real sessions only: a second psycopg connection holds `LOCK TABLE daily_bar` while a real
foreground `batch_sync` loads; the command's status, the API, the admin and the worker's log
must name the waiting day, the blocking pid and how long, and the job must load exactly the
rows of a clean run once the lock is released.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import psycopg
import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from batchsync import sessions
from batchsync.models import SyncDay, SyncJob, SyncJobStatus
from tests.conftest import database_url
from tests.faults import Ledger, LoadLog, Process, assert_clean, job_now, run_manage, wait_until, worker_env

DAY = dt.date(2025, 9, 1)


@pytest.mark.django_db(transaction=True)
def test_workers_alive_are_those_with_an_open_session() -> None:
    with psycopg.connect(database_url(), application_name="host:1:alive"):
        alive = sessions.sync_workers_alive(["host:1:alive", "host:2:gone", ""])
    assert alive == {"host:1:alive"}
    # Its session ends (the server process exits just after the client hangs up).
    wait_until(lambda: not sessions.sync_workers_alive(["host:1:alive"]), what="the session to end")
    assert sessions.sync_workers_alive([]) == set()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_day_waiting_on_a_table_lock_shows_the_blocking_session_then_loads_when_it_is_released(
    tmp_path: Path, subprocess_env: dict[str, str], loads: LoadLog, ledger: Ledger
) -> None:
    # A 3 s lease: the worker's lock-wait log line comes every second.
    env = worker_env(subprocess_env, BATCHSYNC_LEASE_SECONDS="3")
    admin = get_user_model().objects.create_superuser("root")
    api = APIClient()
    api.force_authenticate(admin)
    pages = Client()
    pages.force_login(admin)
    run = None
    with psycopg.connect(database_url(), application_name="dba-psql") as locker:
        locker.execute("LOCK TABLE daily_bar IN ACCESS EXCLUSIVE MODE")
        blocker = locker.info.backend_pid
        ledger.fault("LOCK TABLE daily_bar held by another session")
        try:
            args = ["batch_sync", "--start", "2025-09-01", "--end", "2025-09-01", "--source", "demo"]
            args += ["--parallelism", "1"]
            run = Process(args, env, tmp_path / "run.log").start()
            job = wait_until(lambda: SyncJob.objects.first(), what="the job")
            waits = wait_until(
                lambda: [w for w in sessions.sync_job_lock_waits(job.pk) if w.waiting_seconds >= 2],
                what="the day to wait on the lock for 2 s",
            )
            assert [(w.date, w.blocking_pids, w.lock) for w in waits] == [
                (DAY, [blocker], "RowExclusiveLock on daily_bar")
            ]

            status = run_manage(["batch_sync", "status", job.task_id], env)
            assert status.returncode == 0, status.stderr
            line = re.search(r"^lock wait\s+(.*)$", status.stdout, re.M)
            assert line is not None, status.stdout
            assert re.fullmatch(
                rf"2025-09-01 waits \d+\.\d s for RowExclusiveLock on daily_bar held by pid {blocker} "
                rf"\(dba-psql, idle in transaction, transaction open \d+ s\) \(worker \S+, pid \d+\)",
                line[1],
            ), line[1]

            progress = api.get(f"/api/v1/sync-status/sync/batch/progress/{job.task_id}").json()["data"]
            (wait,) = progress["lock_waits"]
            assert (wait["date"], wait["blocking_pids"], wait["lock"]) == (
                "2025-09-01",
                [blocker],
                "RowExclusiveLock on daily_bar",
            )
            assert (
                wait["waiting_seconds"] >= 2 and wait["worker_id"] == SyncDay.objects.get(job=job).worker_id
            )
            assert wait["blockers"][0]["application_name"] == "dba-psql"
            assert wait["blockers"][0]["state"] == "idle in transaction"

            days = api.get(f"/api/v1/sync-status/sync/batch/{job.task_id}/days").json()["data"]
            (day,) = days["results"]
            assert day["status"] == "running" and day["lock_wait"]["blocking_pids"] == [blocker]

            page = pages.get(
                reverse("admin:batchsync_syncjob_change", args=[job.pk]), HTTP_ACCEPT_LANGUAGE="en"
            )
            html = page.content.decode()
            assert 'data-lock-wait="2025-09-01"' in html
            assert f"for a lock held by another database session (pid {blocker})" in html

            wait_until(lambda: f"blocked_by={blocker}" in run.log(), what="the worker's lock_wait log line")
            assert re.search(r"event=lock_wait date=2025-09-01 pid=\d+ waited=\d+\.\ds", run.log())
        except BaseException:
            if run is not None:
                run.stop()
            raise
        finally:
            locker.rollback()  # release the lock: the day goes on
        assert run.wait() == 0, run.log()
    job = job_now(job)
    assert job.status == SyncJobStatus.SUCCEEDED
    ledger.checked(assert_clean([DAY]))
    assert loads.per_day() == {DAY: 1}
    assert sessions.sync_job_lock_waits(job.pk) == []
    assert (
        api.get(f"/api/v1/sync-status/sync/batch/progress/{job.task_id}").json()["data"]["lock_waits"] == []
    )
