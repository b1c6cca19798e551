"""`batch_sync rerun <job> --days 2025-10-09,2025-10-13..2025-10-17`: chosen days of a job again."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from batchsync import dispatch, services
from batchsync.management.exit_status import EXIT_OK
from batchsync.models import SyncJobStatus

if TYPE_CHECKING:
    from batchsync.management.arguments import Arguments
    from batchsync.management.commands.batch_sync import Command


def action_rerun(command: Command, args: Arguments) -> int:
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


def add_rerun_parser(subcommands: Any, parents: list[Any]) -> None:
    """The `rerun` subcommand's arguments (registered from `arguments.add_subcommands`)."""
    rerun = subcommands.add_parser(
        "rerun", parents=parents, help="a new job loading chosen days of a job again (force)"
    )
    rerun.add_argument(
        "--days", required=True, help="days and ranges, e.g. 2025-10-09,2025-10-13..2025-10-17"
    )
    rerun.add_argument("--queue", action="store_true", help="queue behind a running job instead of refusing")
    rerun.add_argument("--detach", action="store_true", help="enqueue on the django-q2 cluster and return")
