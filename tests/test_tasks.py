"""The django-q2 path: the task function through the cluster's machinery, and a real qcluster."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from django_q.models import OrmQ, Task
from django_q.tasks import async_task

from batchsync import dispatch, services
from batchsync.models import DailyBar, SyncDay, SyncDayStatus, SyncJob, SyncJobStatus
from tests.conftest import PROJECT_DIR

TIMEOUT = 60


@pytest.mark.usefixtures("foreground")
@pytest.mark.django_db(transaction=True)
def test_the_work_task_runs_a_job_through_the_cluster_machinery_in_sync_mode() -> None:
    request = services.JobRequest(
        dt.date(2025, 10, 8), dt.date(2025, 10, 9), source="demo", source_options={}
    )
    job = services.sync_job_create(request)
    # sync=True: django-q2 signs, unpacks, runs and saves the task like a cluster worker, in process.
    task_id = async_task(dispatch.WORK_TASK, job.pk, sync=True)
    task = Task.objects.get(id=task_id)
    job.refresh_from_db()
    assert task.success, task.result
    assert task.result == f"{job.task_id}: succeeded, 1 day loaded by this worker"
    assert (job.status, job.success_days, job.skipped_days) == (SyncJobStatus.SUCCEEDED, 1, 1)
    assert DailyBar.objects.filter(trade_date=dt.date(2025, 10, 9)).count() == 5500


@pytest.mark.django_db(transaction=True)
def test_starting_a_job_enqueues_its_workers_once_the_transaction_commits() -> None:
    request = services.JobRequest(
        dt.date(2025, 9, 1), dt.date(2025, 9, 5), source="demo", source_options={}, parallelism=2
    )
    job = services.sync_job_create(request)  # the default enqueue: on commit, to the broker
    queued = sorted((q.task for q in OrmQ.objects.all()), key=lambda task: str(task["name"]))
    assert [(task["func"], task["args"], task["group"]) for task in queued] == [
        (dispatch.WORK_TASK, (job.pk,), job.task_id)
    ] * 2
    assert [task["name"] for task in queued] == [f"batchsync {job.task_id} #{n}" for n in (1, 2)]


def _stop(cluster: subprocess.Popen[bytes]) -> int | None:
    """SIGTERM (a graceful stop), then SIGKILL to the whole process group if it hangs."""
    if cluster.poll() is None:
        cluster.send_signal(signal.SIGTERM)
        try:
            return cluster.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
    if cluster.poll() is None:
        os.killpg(cluster.pid, signal.SIGKILL)
        cluster.wait(timeout=10)
        return None
    return cluster.returncode


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_detached_job_is_run_by_a_real_qcluster_in_slices(
    manage_py: list[str], subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    env = {key: value for key, value in subprocess_env.items() if key != "REDIS_URL"}  # the ORM broker
    # One cluster worker; slices so short that each task loads one day and enqueues the rest.
    env.update({"BATCHSYNC_Q_WORKERS": "1", "BATCHSYNC_TASK_SLICE_SECONDS": "0.01"})
    detach = subprocess.run(
        # One task handed on from slice to slice (one worker, whatever the default parallelism).
        [
            *manage_py,
            "batch_sync",
            "--start",
            "2025-09-01",
            "--end",
            "2025-09-03",
            "--parallelism",
            "1",
            "--detach",
        ],
        env=env,
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert detach.returncode == 0, detach.stderr
    task_id = next(
        line.removeprefix("task id: ") for line in detach.stdout.splitlines() if line.startswith("task id: ")
    )
    job = SyncJob.objects.get(task_id=task_id)
    assert job.status == SyncJobStatus.PENDING
    assert OrmQ.objects.count() == 1

    log = (tmp_path / "qcluster.log").open("wb")
    cluster = subprocess.Popen(
        [*manage_py, "qcluster"],
        env=env,
        cwd=PROJECT_DIR,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: the finally can kill the workers too
    )
    stopped: int | None = None
    try:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            job.refresh_from_db()
            if job.is_finished:
                break
            time.sleep(0.3)
        # Wait for the cluster to save the last task's result.
        while time.monotonic() < deadline and Task.objects.filter(group=task_id).count() < 3:
            time.sleep(0.3)
        runs = list(Task.objects.filter(group=task_id).order_by("started"))
    finally:
        stopped = _stop(cluster)
        log.close()
    output = (tmp_path / "qcluster.log").read_text(errors="replace")
    assert job.status == SyncJobStatus.SUCCEEDED, output
    assert (job.success_days, job.rows_loaded) == (3, 3 * 5500)
    assert set(SyncDay.objects.filter(job=job).values_list("status", flat=True)) == {SyncDayStatus.SUCCEEDED}
    assert DailyBar.objects.count() == 3 * 5500
    assert len(runs) >= 3, output  # one task per slice: the job was handed on between tasks
    assert all(run.success for run in runs), [run.result for run in runs]
    assert sum(int(str(run.result).split(", ")[1].split()[0]) for run in runs) == 3  # days loaded
    assert stopped == 0, f"qcluster did not stop on SIGTERM:\n{output}"
