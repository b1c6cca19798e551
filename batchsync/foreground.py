"""The foreground worker pool: a job's workers run as threads of this process (`batch_sync`)."""

from __future__ import annotations

import contextlib
import threading

import psycopg
from django.db import DatabaseError, InterfaceError, connection
from django.utils import translation

from batchsync import reconnect, runner, services
from batchsync.exceptions import DatabaseUnavailable, InvalidTransition
from batchsync.models import SyncJob


def worker_ids(parallelism: int) -> list[str]:
    """One worker id per thread; the threads' ids share a prefix (at most 63 characters)."""
    base = runner.new_worker_id()
    return [base] if parallelism == 1 else [f"{base}-{n}" for n in range(parallelism)]


def run_workers(
    job: SyncJob,
    ids: list[str],
    stop: threading.Event,
    abort: threading.Event,
    on_progress: runner.ProgressCallback,
) -> tuple[SyncJob, str | None]:
    """Run the job's workers: here, or in threads (daemons: an abort does not wait for them).

    Returns the job as its workers left it, and why they stopped early if they did (the
    database was unreachable for the whole outage window).
    """
    if len(ids) == 1:
        try:
            outcome = runner.sync_job_run(job.pk, worker_id=ids[0], stop=stop, on_progress=on_progress)
        except DatabaseUnavailable as error:
            return job, error.message
        return outcome.job, None
    language = translation.get_language()
    outages: list[str] = []

    def work(worker_id: str) -> None:
        try:
            with translation.override(language):  # errors are stored in the command's language
                runner.sync_job_run(
                    job.pk, worker_id=worker_id, stop=stop, abort=abort, on_progress=on_progress
                )
        except DatabaseUnavailable as error:
            outages.append(error.message)
        except (DatabaseError, InterfaceError, psycopg.Error):
            if not abort.is_set():
                raise
            # The abort ended this thread's database session on purpose, whatever it was
            # doing; the main thread gives its day back and cancels the job.
        finally:
            with contextlib.suppress(Exception):  # a connection the outage broke
                connection.close()

    threads = [
        threading.Thread(target=work, args=(worker_id,), name=f"batchsync-worker-{n}", daemon=True)
        for n, worker_id in enumerate(ids)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive():
            thread.join(0.05)  # short joins: Ctrl-C reaches this (main) thread in between
    if outages:
        return job, outages[0]
    # This thread's connection is the oldest: a database restart during the run broke it.
    try:
        return reconnect.with_reconnect(services.sync_job_finish_if_done, job.pk), None
    except DatabaseUnavailable as error:
        return job, error.message


def abandon(job: SyncJob, ids: list[str]) -> SyncJob:
    """After an abort: roll back and give back the days in flight, cancel, free the slot."""
    connection.close()  # the interrupted query may have left the session in any state
    services.sync_workers_abort(job.pk, ids)
    with contextlib.suppress(InvalidTransition):
        services.sync_job_cancel(job, requested_by="cli")  # a second Ctrl-C of the command
    return services.sync_job_finish_if_done(job.pk)
