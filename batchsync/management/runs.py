"""`batch_sync run`, `plan`, `resume` and `retry`: starting jobs and running them in the terminal.

The bodies of the command's starting actions; the command class only dispatches to them.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

from django.core.management.base import CommandError, OutputWrapper
from django.utils import timezone

from batchsync import calendars, dispatch, foreground, selectors, services
from batchsync.conf import get_settings
from batchsync.exceptions import InvalidJobRequest, SyncAlreadyRunning
from batchsync.management.arguments import Arguments
from batchsync.management.exit_status import EXIT_OK, EXIT_UNFINISHED, job_exit_status
from batchsync.management.printer import ProgressPrinter
from batchsync.models import Reprocess, SyncJob, SyncJobStatus


def days_text(count: int) -> str:
    """`1 day`, `2 days`: the command's own English lines."""
    return f"{count} day" if count == 1 else f"{count} days"


def same_range_and_source(job: SyncJob, request: services.JobRequest) -> bool:
    """Is `request` a rerun of the command that started `job` (which it may then take over)?"""
    return (job.start_date, job.end_date, job.source, job.source_options) == (
        request.start_date,
        request.end_date,
        request.source,
        request.source_options,
    )


def job_of_arguments(args: Arguments) -> SyncJob:
    """The job the action names (its task id), or a one-line error."""
    if not args.job_id:
        raise InvalidJobRequest("job_id", f"{args.action} needs a job id (see: batch_sync list)")
    return selectors.sync_job_detail(args.job_id)


def request_of_arguments(args: Arguments) -> services.JobRequest:
    """The job request of `run` and `plan`."""
    # The command line, run by a local operator, may read any directory (confine_paths).
    return services.sync_request_build(
        start_date=args.start,
        end_date=args.end,
        latest=args.latest,
        lookback_days=args.lookback,
        now=args.now,
        source=args.source,
        source_options=args.source_options(),
        path=args.path,
        force=args.force,
        reprocess=args.reprocess,
        parallelism=args.parallelism,
        priority=args.priority,
        queue=args.queue,
        requested_by="cli",
        confine_paths=False,
    )


def handed_over_check(handoff: dispatch.Handoff) -> None:
    """The job is saved; if the broker was down, say so in one line (exit 75), not a traceback."""
    if handoff.failure is not None:
        raise CommandError(handoff.failure.message, returncode=EXIT_UNFINISHED)


class JobRuns:
    """Starting, taking over and running jobs, writing to the command's stdout and stderr."""

    def __init__(self, stdout: OutputWrapper, stderr: OutputWrapper) -> None:
        self.stdout = stdout
        self.stderr = stderr

    def plan(self, args: Arguments) -> int:
        return self.plan_print(request_of_arguments(args))

    def calendar_end_warn(self) -> None:
        """Tell the user before the calendar runs out, not on the first day it refuses a job."""
        warning = calendars.calendar_end_warning(get_settings().calendar, timezone.localdate())
        if warning:
            self.stderr.write(f"Warning: {warning}")

    def plan_print(self, request: services.JobRequest) -> int:
        services.sync_request_validate(request)
        plan = services.sync_days_plan(
            request.start_date, request.end_date, request.reprocess, source=request.source
        )
        self.calendar_end_warn()
        for day in plan:
            reason = services.skip_reason_label(day)
            self.stdout.write(f"{day.date}  {'load' if day.loads else 'skip'}  {reason}")
        summary = services.sync_days_plan_summary(plan)
        note = f" {services.other_source_note(summary.other_source)}" if summary.other_source else ""
        self.stdout.write(
            f"{days_text(summary.days)}: {summary.to_load} to load, {summary.skipped} skipped{note} "
            "(dry run: nothing changed)"
        )
        return EXIT_OK

    def run(self, args: Arguments) -> int:
        if args.dry_run:
            return self.plan(args)
        request = request_of_arguments(args)
        try:
            with dispatch.handoff(foreground=not args.detach) as handoff:
                job = services.sync_job_create(request)
        except SyncAlreadyRunning as refused:
            holder = SyncJob.objects.filter(pk=refused.job_id).first() if refused.job_id else None
            if args.detach or holder is None or not same_range_and_source(holder, request):
                raise
            return self.take_over(holder)
        self.calendar_end_warn()
        if args.detach:
            handed_over_check(handoff)
            self.detached_print(job, handoff.task_ids)
            return EXIT_OK
        if job.status == SyncJobStatus.QUEUED:
            self.stdout.write(
                f"Job {job.task_id} is queued behind the running job; the cluster runs it "
                "when the slot frees (python manage.py qcluster)."
            )
            return EXIT_OK
        return self.foreground_run(job)

    def detached_print(self, job: SyncJob, cluster_tasks: list[str] | None = None) -> None:
        self.stdout.write(f"Job {job.task_id} {job.status}: {job.message}")
        self.stdout.write(f"task id: {job.task_id}")
        if cluster_tasks:
            self.stdout.write(f"cluster task: {', '.join(cluster_tasks)}")
        self.stdout.write(f"follow:  python manage.py batch_sync status {job.task_id}")
        self.stdout.write("workers: python manage.py qcluster   (runs the job if no cluster is running yet)")

    def take_over(self, job: SyncJob) -> int:
        """Continue a job whose workers are gone, here (a rerun of its command, or `resume`)."""
        worker_ids = foreground.worker_ids(job.parallelism)
        facts = selectors.sync_job_slot_holder(job)
        job = services.sync_job_take_over(job.pk, worker_ids[0])  # refused while its lease runs
        seen = facts["worker_last_seen_seconds_ago"]
        self.stdout.write(
            f"Taking over job {job.task_id} ({job.status}, {job.processed_days}/{job.total_days} days): "
            + (f"its worker was last seen {seen:.0f}s ago" if seen is not None else "no worker had joined it")
        )
        return self.foreground_run(job, worker_ids)

    def foreground_run(self, job: SyncJob, worker_ids: list[str] | None = None) -> int:
        """Run the job here with `parallelism` threads; Ctrl-C cancels after the day in flight.

        A second Ctrl-C aborts the days in flight: their transactions are rolled back, the days
        go back to pending and the job is cancelled at once, so the slot is free on exit either way.
        A job still unfinished when the workers stop (the database was gone longer than
        `BATCHSYNC_OUTAGE_SECONDS`, or another process took its days) exits 75, never 0.
        """
        span = f"{job.start_date} .. {job.end_date}"
        to_load = job.total_days - job.skipped_days
        self.stdout.write(
            f"Job {job.task_id}: {span}, {days_text(job.total_days)} ({to_load} to load, "
            f"{job.skipped_days} skipped), source {job.source}"
        )
        if other_source := selectors.sync_job_other_source_days(job):
            self.stdout.write(services.other_source_note(other_source))
        stop, abort, decided = threading.Event(), threading.Event(), threading.Event()
        worker_ids = worker_ids or foreground.worker_ids(job.parallelism)
        printer = ProgressPrinter(self.stdout)
        stopped_by: str | None = None

        def on_sigint(signum: int, frame: FrameType | None) -> None:
            if abort.is_set() or decided.is_set():
                return  # aborting already, or the run is over: a late Ctrl-C changes nothing
            if stop.is_set():
                abort.set()
                raise KeyboardInterrupt
            stop.set()
            self.stderr.write("\nStopping after the current day (Ctrl-C again to abort now)...")

        # Kept after the run (see the command's `handle`): a quick second Ctrl-C must not break
        # the summary.
        signal.signal(signal.SIGINT, on_sigint)
        try:
            printer(job)
            job, stopped_by = foreground.run_workers(job, worker_ids, stop, abort, printer)
        except KeyboardInterrupt:
            abort.set()
            printer.finish()
            job = foreground.abandon(job, worker_ids)
            self.stderr.write("Aborted: the days in flight were rolled back; the job is cancelled.")
        finally:
            decided.set()
            printer.finish()
        status = job_exit_status(job, stopped_by=stopped_by)
        if status == EXIT_UNFINISHED:
            return self.unfinished(job, stopped_by)
        self.stdout.write(job.message)
        for error in selectors.sync_job_recent_errors(job):
            self.stdout.write(f"  {error.date}: {error.error}")
        self.stdout.write(f"Job {job.task_id} {job.status}")
        return status

    def unfinished(self, job: SyncJob, stopped_by: str | None) -> int:
        """Say plainly that the job did not end here, why, and how it goes on; exit 75."""
        lease = get_settings().lease_seconds
        reason = stopped_by or (
            f"this command's workers stopped with the job {job.status} "
            f"at {job.processed_days}/{job.total_days} days (another process holds or took its days)"
        )
        self.stderr.write(
            f"Job {job.task_id} is unfinished: {reason}. Nothing half-loaded was kept, and the job "
            f"can be continued: rerun the same command (it takes the job over once the lease of "
            f"{lease:g}s has run out), or python manage.py batch_sync resume {job.task_id}, or start "
            "a cluster (python manage.py qcluster)."
        )
        return EXIT_UNFINISHED

    def resume(self, args: Arguments) -> int:
        """Resume in the foreground like `run`, or on the cluster with --detach.

        A pending or running job whose workers are gone (its lease ran out: a killed foreground
        run, no cluster) is taken over here instead.
        """
        if args.detach:
            with dispatch.handoff() as handoff:
                job = services.sync_job_resume(job_of_arguments(args), requested_by="cli")
            handed_over_check(handoff)
            self.stdout.write(f"Job {job.task_id} {job.status}: {job.message}")
            return EXIT_OK
        job = job_of_arguments(args)
        if job.status in (SyncJobStatus.PENDING, SyncJobStatus.RUNNING):
            return self.take_over(job)
        with dispatch.handoff(foreground=True):
            job = services.sync_job_resume(job, requested_by="cli")
        if job.status != SyncJobStatus.PENDING:
            self.detached_print(job)
            return EXIT_OK
        return self.foreground_run(job)

    def retry(self, args: Arguments) -> int:
        original = job_of_arguments(args)
        detach = args.detach
        if args.dry_run:
            request = services.sync_job_retry_request(original, reprocess=args.reprocess or Reprocess.FAILED)
            self.stdout.write(f"Retry of job {original.task_id} (reprocess={request.reprocess}):")
            return self.plan_print(request)
        with dispatch.handoff(foreground=not detach) as handoff:
            job = services.sync_job_retry(
                original,
                reprocess=args.reprocess or Reprocess.FAILED,
                requested_by="cli",
                queue=args.queue,
            )
        handed_over_check(handoff)
        if detach or job.status == SyncJobStatus.QUEUED:
            self.detached_print(job)
            return EXIT_OK
        return self.foreground_run(job)

    def rerun(self, args: Arguments) -> int:
        """`rerun <job> --days ...`: a new job loading exactly those days of the job again (force)."""
        days = services.sync_days_parse(args.days or "")
        original = job_of_arguments(args)
        with dispatch.handoff(foreground=not args.detach) as handoff:
            job = services.sync_job_rerun_days(original, days, requested_by="cli", queue=args.queue)
        handed_over_check(handoff)
        if args.detach or job.status == SyncJobStatus.QUEUED:
            self.detached_print(job)
            return EXIT_OK
        return self.foreground_run(job)
