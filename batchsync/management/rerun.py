"""`batch_sync rerun <job> --days 2025-10-09,2025-10-13..2025-10-17`: chosen days of a job again."""

from __future__ import annotations

from typing import Protocol

from django.core.management.base import OutputWrapper

from batchsync import dispatch, services
from batchsync.management.arguments import Arguments
from batchsync.management.exit_status import EXIT_OK
from batchsync.models import SyncJob, SyncJobStatus


class JobCommand(Protocol):
    """What the rerun needs of `batch_sync`'s command (no import of it: it imports this module)."""

    stdout: OutputWrapper

    def _job(self, args: Arguments) -> SyncJob: ...
    def _check_handed_over(self, handoff: dispatch.Handoff) -> None: ...
    def _print_detached(self, job: SyncJob) -> None: ...
    def _run_foreground(self, job: SyncJob) -> int: ...


def action_rerun(command: JobCommand, args: Arguments) -> int:
    """A new job loading exactly `--days` of the job again (force), here or `--detach`ed."""
    days = services.sync_days_parse(args.days or "")
    original = command._job(args)
    with dispatch.handoff(foreground=not args.detach) as handoff:
        job = services.sync_job_rerun_days(original, days, requested_by="cli", queue=args.queue)
    command._check_handed_over(handoff)
    if args.detach or job.status == SyncJobStatus.QUEUED:
        command._print_detached(job)
        return EXIT_OK
    return command._run_foreground(job)
