"""The Redis broker with the machine's Redis: a job enqueued through Redis, its worker killed
mid-COPY (Redis forgets a task a dead worker had taken), the reaper re-enqueues it through
Redis, and the job completes with exactly the rows of a clean run.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from django_q.models import OrmQ

from batchsync.models import SyncDay, SyncDayStatus, SyncJob, SyncJobStatus
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
    qcluster,
    register_test_sources,
    run_manage,
    wait_for_status,
    wait_until,
    worker_env,
    worker_pid,
)

REDIS_URL = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/0")
WEEK = [dt.date(2025, 9, d) for d in range(1, 6)]

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def redis_client() -> Iterator[Any]:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as error:
        if os.environ.get("BATCHSYNC_REQUIRE_SERVICES"):
            pytest.fail(f"Redis at {REDIS_URL} is required (BATCHSYNC_REQUIRE_SERVICES): {error}")
        pytest.skip(f"no Redis at {REDIS_URL}: {error}")
    yield client
    client.close()


@pytest.fixture(autouse=True)
def _test_sources(settings: Any) -> None:
    register_test_sources(settings)


def test_redis_broker_worker_killed_mid_copy_reaper_requeues_through_redis(
    tmp_path: Path, subprocess_env: dict[str, str], redis_client: Any, loads: LoadLog
) -> None:
    ledger = Ledger("redis broker: kill -9 mid-COPY, recover")
    name = f"batchsync-test-{uuid.uuid4().hex[:10]}"  # our own queue on the shared Redis
    options = fault_options(tmp_path / "m", copy_pause=60, delay_dates=["2025-09-03"], delay_attempts=1)
    env = fault_env(worker_env(subprocess_env, REDIS_URL=REDIS_URL, BATCHSYNC_Q_NAME=name), options)
    events = Events(tmp_path / "m")
    try:
        with qcluster(env, tmp_path / "cluster.log", workers=2) as cluster:
            started = Process(
                [
                    "batch_sync",
                    "--start",
                    "2025-09-01",
                    "--end",
                    "2025-09-05",
                    "--source",
                    "fault",
                    "--parallelism",  # one worker, killed mid-COPY: the reaper must requeue it
                    "1",
                    "--detach",
                ],
                env,
                tmp_path / "start.log",
            ).start()
            assert started.wait() == 0, started.log()
            job = SyncJob.objects.get()
            victim = events.wait("copy", dt.date(2025, 9, 3))
            assert worker_pid(SyncDay.objects.get(job=job, date=dt.date(2025, 9, 3)).worker_id) == victim
            os.kill(victim, signal.SIGKILL)
            ledger.fault("kill -9 qcluster worker (Redis broker)")
            assert bar_count(dt.date(2025, 9, 3)) == 0

            # Redis does not give the task back: after the lease the job is stalled, not moving.
            wait_until(
                lambda: SyncJob.objects.stalled(timezone.now()).filter(pk=job.pk).exists(),
                timeout=5 * LEASE_SECONDS,
                what="the job's lease to run out",
            )
            assert job_now(job).status == SyncJobStatus.RUNNING
            day = SyncDay.objects.get(job=job, date=dt.date(2025, 9, 3))
            assert day.status == SyncDayStatus.RUNNING

            # The reaper (what the schedule runs) re-enqueues the job, through Redis.
            recovered = run_manage(["batch_sync", "recover"], env)
            assert recovered.returncode == 0 and f"Job {job.task_id} recovered" in recovered.stdout, (
                recovered.stdout + recovered.stderr
            )
            job = wait_for_status(job, SyncJobStatus.SUCCEEDED, SyncJobStatus.FAILED, timeout=60)
            assert job.status == SyncJobStatus.SUCCEEDED, cluster.log()[-4000:]
        # Everything went through Redis: nothing in the ORM queue, the cluster's keys in Redis.
        assert not OrmQ.objects.exists()
        assert any(name in key.decode() for key in redis_client.keys("*"))
        assert job.recoveries >= 1
        assert SyncDay.objects.get(job=job, date=dt.date(2025, 9, 3)).attempts == 2
        ledger.checked(assert_clean(WEEK))
        assert loads.per_day() == dict.fromkeys(WEEK, 1)
        ledger.jobs_completed += 1
    finally:
        for key in redis_client.scan_iter(f"*{name}*"):
            redis_client.delete(key)
        ledger.write()


# --- Redis down when a job is handed over: the job is saved, the user told, nothing lost -------


def dead_redis_url() -> str:
    """A Redis URL on a free local port where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


API_START = """
import json
from django.contrib.auth import get_user_model
from django.test.utils import setup_test_environment
from rest_framework.test import APIClient

setup_test_environment()
client = APIClient()
client.force_authenticate(get_user_model().objects.create_superuser("api-root"))
body = {"start_date": "2025-09-01", "end_date": "2025-09-05", "parallelism": 1}
response = client.post("/api/v1/sync-status/sync/batch", body, format="json")
print(json.dumps({"code": response.status_code, "body": response.json()}))
"""


def test_detach_with_redis_down_says_the_job_waits_for_the_broker_then_the_cluster_runs_it(
    tmp_path: Path, subprocess_env: dict[str, str], redis_client: Any, loads: LoadLog
) -> None:
    ledger = Ledger("redis broker down at --detach")
    name = f"batchsync-test-{uuid.uuid4().hex[:10]}"
    down = worker_env(subprocess_env, REDIS_URL=dead_redis_url(), BATCHSYNC_Q_NAME=name)
    args = ["batch_sync", "--start", "2025-09-01", "--end", "2025-09-05", "--parallelism", "1"]
    result = run_manage([*args, "--detach"], down)
    ledger.fault("Redis not listening at --detach")
    job = SyncJob.objects.get()
    assert result.returncode == 75, result.stderr
    # One line (after the log lines this test's environment asks for), no traceback.
    assert "Traceback" not in result.stderr
    (line,) = [line for line in result.stderr.splitlines() if "Error" in line and "WARNING" not in line]
    assert line.startswith(
        f"CommandError: Job {job.task_id} was created (pending) but not handed to the cluster: "
        "the broker cannot be reached ("
    ), line
    assert line.endswith(f"or run it here: python manage.py batch_sync work {job.task_id}"), line
    assert job.status == SyncJobStatus.PENDING and not OrmQ.objects.exists()
    try:
        # The broker is back (the machine's Redis): the reaper hands the job over, the cluster runs it.
        up = worker_env(subprocess_env, REDIS_URL=REDIS_URL, BATCHSYNC_Q_NAME=name)
        with qcluster(up, tmp_path / "cluster.log", workers=1) as cluster:
            wait_until(
                lambda: SyncJob.objects.filter(pk=job.pk, lease_expires_at__lt=timezone.now()).exists(),
                what="the pickup deadline to pass",
            )
            recovered = run_manage(["batch_sync", "recover"], up)
            assert f"Job {job.task_id} recovered" in recovered.stdout, recovered.stdout + recovered.stderr
            job = wait_for_status(job, SyncJobStatus.SUCCEEDED, SyncJobStatus.FAILED, timeout=60)
            assert job.status == SyncJobStatus.SUCCEEDED, cluster.log()[-4000:]
        ledger.checked(assert_clean(WEEK))
        assert loads.per_day() == dict.fromkeys(WEEK, 1)
        ledger.jobs_completed += 1
    finally:
        for key in redis_client.scan_iter(f"*{name}*"):
            redis_client.delete(key)
        ledger.write()


def test_api_start_with_redis_down_answers_202_in_the_envelope_and_keeps_the_job(
    subprocess_env: dict[str, str],
) -> None:
    down = worker_env(subprocess_env, REDIS_URL=dead_redis_url(), BATCHSYNC_Q_NAME="batchsync-test-down")
    result = run_manage(["shell", "-c", API_START], down)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    job = SyncJob.objects.get()
    assert answer["code"] == 202, answer
    assert answer["body"]["status"] == "success"
    data = answer["body"]["data"]
    assert (data["task_id"], data["total_days"]) == (job.task_id, 5)
    assert "not handed to the cluster" in data["message"] or "未交给" in data["message"], data
    assert job.status == SyncJobStatus.PENDING
