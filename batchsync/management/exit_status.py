"""The command's exit statuses, and the one rule that maps a job's outcome to one of them.

The table in README.md ("Exit status") documents these; a test keeps the two in step.
"""

from __future__ import annotations

from batchsync.models import WORKING_STATUSES, SyncJob, SyncJobStatus

EXIT_OK, EXIT_DAYS_FAILED, EXIT_BAD_ARGUMENTS = 0, 1, 2
# EX_TEMPFAIL: the job is saved and unfinished but resumable: this run's workers stopped (database
# gone too long, lease lost to another process), or the broker was down at hand-over.
EXIT_UNFINISHED = 75
EXIT_STOPPED = 130  # 128 + SIGINT, as shells report Ctrl-C: the job was stopped before its end
EXIT_STATUSES = (EXIT_OK, EXIT_DAYS_FAILED, EXIT_BAD_ARGUMENTS, EXIT_UNFINISHED, EXIT_STOPPED)


def job_exit_status(job: SyncJob, *, stopped_by: str | None = None, sole_runner: bool = True) -> int:
    """The exit status a job's outcome earns the command that ran it.

    `stopped_by` says why this command's workers stopped early (the database was gone too
    long). `sole_runner` is False for `work`, one more worker of a job others may still be
    running: then only the job's own end counts, not a job still going or a day failed so far.
    """
    if stopped_by is not None:
        return EXIT_UNFINISHED
    if sole_runner and job.status in (SyncJobStatus.PENDING, *WORKING_STATUSES):
        return EXIT_UNFINISHED
    if job.status == SyncJobStatus.FAILED or (sole_runner and job.failed_days):
        return EXIT_DAYS_FAILED
    if job.status in (SyncJobStatus.CANCELLED, SyncJobStatus.PAUSED):
        return EXIT_STOPPED
    return EXIT_OK
