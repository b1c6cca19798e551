"""`batch_sync cancel`, `pause`, `work` and `recover`: controlling jobs from a terminal.

The bodies of the command's control actions; the command class only dispatches to them.
"""

from __future__ import annotations

from collections.abc import Callable

from batchsync import runner, services
from batchsync.exceptions import DatabaseUnavailable, InvalidTransition
from batchsync.management.arguments import Arguments
from batchsync.management.exit_status import EXIT_OK, job_exit_status
from batchsync.management.printer import ProgressPrinter
from batchsync.management.runs import JobRuns, job_of_arguments
from batchsync.models import SyncJobStatus
from batchsync.operations import OPERATIONS


def job_control(args: Arguments, operation: str, write: Callable[[str], object]) -> int:
    """Cancel or pause the job (`operations.OPERATIONS`); a second cancel says it is under way."""
    job = job_of_arguments(args)
    again = operation == "cancel" and job.status == SyncJobStatus.CANCELLING
    job = OPERATIONS[operation].run(job, requested_by="cli")
    if again and job.status == SyncJobStatus.CANCELLING:
        write(
            f"Job {job.task_id} is already being cancelled: it stops after the day in flight ({job.message})"
        )
        return EXIT_OK
    write(f"Job {job.task_id} {job.status}: {job.message}")
    return EXIT_OK


def job_work(args: Arguments, runs: JobRuns) -> int:
    """Be one more worker of a pending or running job, here in the foreground.

    What a cluster worker does, without a cluster: on a second machine, or to take over a
    job whose workers died. Killing it is safe: its day's lease runs out and another worker
    (or the reaper) takes the day over.
    """
    job = job_of_arguments(args)
    if job.status not in (SyncJobStatus.PENDING, SyncJobStatus.RUNNING):
        raise InvalidTransition(
            f"Cannot work on job {job.task_id}: it is {job.status} (resume or retry it first)"
        )
    worker_id = runner.new_worker_id()
    runs.stdout.write(f"Job {job.task_id}: worker {worker_id} joining ({job.status})")
    printer = ProgressPrinter(runs.stdout)
    try:
        outcome = runner.sync_job_run(job.pk, worker_id=worker_id, on_progress=printer)
    except DatabaseUnavailable as error:
        return runs.unfinished(job, error.message)
    finally:
        printer.finish()
    job = outcome.job
    runs.stdout.write(f"Worker {worker_id} loaded {outcome.days_loaded} day(s)")
    runs.stdout.write(f"Job {job.task_id} {job.status}: {job.message}")
    return job_exit_status(job, sole_runner=False)


def jobs_recover(write: Callable[[str], object]) -> int:
    """Run the reaper once (the cluster schedule does it every minute)."""
    recovered = services.sync_jobs_recover_stalled()
    for job in recovered:
        write(f"Job {job.task_id} recovered: {job.status} (recoveries: {job.recoveries})")
    if not recovered:
        write("No stalled job: nothing to recover.")
    return EXIT_OK
