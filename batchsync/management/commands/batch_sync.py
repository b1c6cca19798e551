"""`python manage.py batch_sync`: run or enqueue a sync job, and control jobs, from a terminal."""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

from django.core.checks import Tags
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone, translation

from batchsync import bounds, calendars, dispatch, foreground, runner, selectors, services
from batchsync.adjusted import adjusted_bars
from batchsync.conf import get_settings
from batchsync.exceptions import (
    BatchSyncError,
    DatabaseUnavailable,
    InvalidJobRequest,
    InvalidTransition,
    SyncAlreadyRunning,
    SyncUpToDate,
)
from batchsync.management import output, rerun
from batchsync.management.alerts import alerts_action
from batchsync.management.arguments import Arguments, OneLineErrorParser, add_subcommands, cli_language
from batchsync.management.exit_status import (
    EXIT_BAD_ARGUMENTS,
    EXIT_OK,
    EXIT_UNFINISHED,
    job_exit_status,
)
from batchsync.management.printer import ProgressPrinter
from batchsync.management.schedules import schedule_command
from batchsync.management.verify import add_verify_subcommand, verify_command
from batchsync.models import Reprocess, SyncJob, SyncJobStatus
from batchsync.operations import OPERATIONS

# The command-line spelling of each request field, for one-line error messages.
OPTION_OF_FIELD = {
    "start_date": "--start",
    "end_date": "--end",
    "source": "--source",
    "path": "--path",
    "with_adj_factor": "--with-adj-factor",
    "source_url": "--source-url",
    "table": "--table",
    "query": "--query",
    "columns": "--columns",
    "reprocess": "--reprocess",
    "parallelism": "--parallelism",
    "priority": "--priority",
    "limit": "--limit",
    "force": "--force",
    "calendar": "BATCHSYNC_CALENDAR",
    "days": "--days",
    "latest": "--latest",
    "lookback_days": "--lookback",
    "cron": "--cron",
    "name": "name",
    "source_options": "--option",
    "freshness_deadline": "--freshness-deadline",
}


def _days(count: int) -> str:
    """`1 day`, `2 days`: the command's own English lines."""
    return f"{count} day" if count == 1 else f"{count} days"


def _tuning(args: Arguments) -> dict[str, Any]:
    """The options `schedule add` shares with `run`, by the schedule's names."""
    return {"lookback": args.lookback, "parallelism": args.parallelism, "priority": args.priority}


def _same_range_and_source(job: SyncJob, request: services.JobRequest) -> bool:
    """Is `request` a rerun of the command that started `job` (which it may then take over)?"""
    return (job.start_date, job.end_date, job.source, job.source_options) == (
        request.start_date,
        request.end_date,
        request.source,
        request.source_options,
    )


class Command(BaseCommand):
    # Model checks only: the full set imports the URLconf (DRF, drf-spectacular) to check it,
    # 0.4-0.5 s of every run for views this command never serves (runserver checks them).
    requires_system_checks = [Tags.models]
    help = (
        "Backfill daily bars for a date range (foreground, or --detach to the django-q2 cluster), "
        "and control jobs: status, list, cancel, pause, resume, retry, plan."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        add_subcommands(parser, more=[add_verify_subcommand])

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.__class__ = OneLineErrorParser  # same parser, one-line errors, `run` by default
        return parser

    # Django calls handle(*args, **options); this command takes no positional `args`.
    def handle(self, *, action: str, verbosity: int = 1, **options: Any) -> None:
        """Run the action in the terminal's language (BATCHSYNC_CLI_LANGUAGE: en or zh-hans)."""
        self.verbosity = verbosity
        sigint = signal.getsignal(signal.SIGINT)
        try:
            with translation.override(cli_language()):
                self._handle(Arguments.from_options(action, options))
        finally:
            if signal.getsignal(signal.SIGINT) is not sigint:  # a foreground run's handler
                if getattr(self, "_called_from_command_line", False):
                    # The run is decided and its summary printed: a late Ctrl-C must not kill
                    # the exit and change the exit status the job earned. Ignored, not blocked:
                    # a mask covers only this thread, and a daemon thread still alive (the
                    # lock-wait watcher) would take the signal once Python's finalization has
                    # put the default handler back; an ignored signal stays ignored.
                    signal.signal(signal.SIGINT, signal.SIG_IGN)
                else:
                    signal.signal(signal.SIGINT, sigint)  # called in-process: put it back

    def _handle(self, args: Arguments) -> None:
        try:
            with self._quiet_info_logs(self.stdout.isatty()):
                code = getattr(self, f"_action_{args.action}")(args)
        except InvalidJobRequest as error:
            option = OPTION_OF_FIELD.get(error.field, error.field)
            raise CommandError(f"{option}: {error.message}", returncode=EXIT_BAD_ARGUMENTS) from None
        except SyncUpToDate as done:
            self.stdout.write(done.message)
            code = EXIT_OK
        except SyncAlreadyRunning as error:
            message = selectors.sync_job_slot_holder_message(error.facts) if error.facts else error.message
            raise CommandError(message, returncode=EXIT_BAD_ARGUMENTS) from None
        except BatchSyncError as error:
            raise CommandError(error.message, returncode=EXIT_BAD_ARGUMENTS) from None
        if code:
            sys.exit(code)

    # --- starting jobs -----------------------------------------------------------------

    def _request(self, args: Arguments) -> services.JobRequest:
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

    def _action_plan(self, args: Arguments) -> int:
        return self._print_plan(self._request(args))

    def _warn_if_calendar_ends_soon(self) -> None:
        """Tell the user before the calendar runs out, not on the first day it refuses a job."""
        warning = calendars.calendar_end_warning(get_settings().calendar, timezone.localdate())
        if warning:
            self.stderr.write(f"Warning: {warning}")

    def _print_plan(self, request: services.JobRequest) -> int:
        services.sync_request_validate(request)
        plan = services.sync_days_plan(
            request.start_date, request.end_date, request.reprocess, source=request.source
        )
        self._warn_if_calendar_ends_soon()
        for day in plan:
            reason = services.skip_reason_label(day)
            self.stdout.write(f"{day.date}  {'load' if day.loads else 'skip'}  {reason}")
        summary = services.sync_days_plan_summary(plan)
        note = f" {services.other_source_note(summary.other_source)}" if summary.other_source else ""
        self.stdout.write(
            f"{_days(summary.days)}: {summary.to_load} to load, {summary.skipped} skipped{note} "
            "(dry run: nothing changed)"
        )
        return EXIT_OK

    def _action_run(self, args: Arguments) -> int:
        if args.dry_run:
            return self._action_plan(args)
        request = self._request(args)
        try:
            with dispatch.handoff(foreground=not args.detach) as handoff:
                job = services.sync_job_create(request)
        except SyncAlreadyRunning as refused:
            holder = SyncJob.objects.filter(pk=refused.job_id).first() if refused.job_id else None
            if args.detach or holder is None or not _same_range_and_source(holder, request):
                raise
            return self._take_over(holder)
        self._warn_if_calendar_ends_soon()
        if args.detach:
            self._check_handed_over(handoff)
            self._print_detached(job, handoff.task_ids)
            return EXIT_OK
        if job.status == SyncJobStatus.QUEUED:
            self.stdout.write(
                f"Job {job.task_id} is queued behind the running job; the cluster runs it "
                "when the slot frees (python manage.py qcluster)."
            )
            return EXIT_OK
        return self._run_foreground(job)

    @staticmethod
    def _check_handed_over(handoff: dispatch.Handoff) -> None:
        """The job is saved; if the broker was down, say so in one line (exit 75), not a traceback."""
        if handoff.failure is not None:
            raise CommandError(handoff.failure.message, returncode=EXIT_UNFINISHED)

    def _print_detached(self, job: SyncJob, cluster_tasks: list[str] | None = None) -> None:
        self.stdout.write(f"Job {job.task_id} {job.status}: {job.message}")
        self.stdout.write(f"task id: {job.task_id}")
        if cluster_tasks:
            self.stdout.write(f"cluster task: {', '.join(cluster_tasks)}")
        self.stdout.write(f"follow:  python manage.py batch_sync status {job.task_id}")
        self.stdout.write("workers: python manage.py qcluster   (runs the job if no cluster is running yet)")

    def _take_over(self, job: SyncJob) -> int:
        """Continue a job whose workers are gone, here (a rerun of its command, or `resume`)."""
        worker_ids = foreground.worker_ids(job.parallelism)
        facts = selectors.sync_job_slot_holder(job)
        job = services.sync_job_take_over(job.pk, worker_ids[0])  # refused while its lease runs
        seen = facts["worker_last_seen_seconds_ago"]
        self.stdout.write(
            f"Taking over job {job.task_id} ({job.status}, {job.processed_days}/{job.total_days} days): "
            + (f"its worker was last seen {seen:.0f}s ago" if seen is not None else "no worker had joined it")
        )
        return self._run_foreground(job, worker_ids)

    def _run_foreground(self, job: SyncJob, worker_ids: list[str] | None = None) -> int:
        """Run the job here with `parallelism` threads; Ctrl-C cancels after the day in flight.

        A second Ctrl-C aborts the days in flight: their transactions are rolled back, the days
        go back to pending and the job is cancelled at once, so the slot is free on exit either way.
        A job still unfinished when the workers stop (the database was gone longer than
        `BATCHSYNC_OUTAGE_SECONDS`, or another process took its days) exits 75, never 0.
        """
        span = f"{job.start_date} .. {job.end_date}"
        to_load = job.total_days - job.skipped_days
        self.stdout.write(
            f"Job {job.task_id}: {span}, {_days(job.total_days)} ({to_load} to load, "
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

        # Kept after the run (see `handle`): a quick second Ctrl-C must not break the summary.
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
            return self._unfinished(job, stopped_by)
        self.stdout.write(job.message)
        for error in selectors.sync_job_recent_errors(job):
            self.stdout.write(f"  {error.date}: {error.error}")
        self.stdout.write(f"Job {job.task_id} {job.status}")
        return status

    def _unfinished(self, job: SyncJob, stopped_by: str | None) -> int:
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

    @contextlib.contextmanager
    def _quiet_info_logs(self, terminal: bool) -> Iterator[None]:
        """On a terminal, info log lines would break the progress bar: show warnings only.

        For the whole action, from the job's creation on: its `event=created` line comes before
        the bar's first drawing.
        """
        logger = logging.getLogger("batchsync")
        if not terminal or not sys.stderr.isatty() or self.verbosity >= 2:
            yield
            return
        level = logger.level
        logger.setLevel(logging.WARNING)
        try:
            yield
        finally:
            logger.setLevel(level)

    # --- controlling jobs --------------------------------------------------------------

    def _job(self, args: Arguments) -> SyncJob:
        if not args.job_id:
            raise InvalidJobRequest("job_id", f"{args.action} needs a job id (see: batch_sync list)")
        return selectors.sync_job_detail(args.job_id)

    def _action_status(self, args: Arguments) -> int:
        for line in output.job_status_lines(self._job(args)):
            self.stdout.write(line)
        return EXIT_OK

    def _action_bars(self, args: Arguments) -> int:
        assert args.ts_code is not None and args.start is not None and args.end is not None  # required
        for line in output.adjusted_bar_lines(adjusted_bars(args.ts_code, args.start, args.end, args.adjust)):
            self.stdout.write(line)
        return EXIT_OK

    def _action_schedule(self, args: Arguments) -> int:
        return schedule_command(
            self, {**args.extra, "source": args.source, "path": args.path, **_tuning(args)}
        )

    def _action_list(self, args: Arguments) -> int:
        for line in output.job_list_lines(
            selectors.sync_job_list_recent(bounds.LIST_LIMIT.check(args.limit))
        ):
            self.stdout.write(line)
        return EXIT_OK

    def _control(self, args: Arguments, operation: str) -> int:
        job = self._job(args)
        again = operation == "cancel" and job.status == SyncJobStatus.CANCELLING
        job = OPERATIONS[operation].run(job, requested_by="cli")
        if again and job.status == SyncJobStatus.CANCELLING:
            self.stdout.write(
                f"Job {job.task_id} is already being cancelled: it stops after the day in flight "
                f"({job.message})"
            )
            return EXIT_OK
        self.stdout.write(f"Job {job.task_id} {job.status}: {job.message}")
        return EXIT_OK

    def _action_work(self, args: Arguments) -> int:
        """Be one more worker of a pending or running job, here in the foreground.

        What a cluster worker does, without a cluster: on a second machine, or to take over a
        job whose workers died. Killing it is safe: its day's lease runs out and another worker
        (or the reaper) takes the day over.
        """
        job = self._job(args)
        if job.status not in (SyncJobStatus.PENDING, SyncJobStatus.RUNNING):
            raise InvalidTransition(
                f"Cannot work on job {job.task_id}: it is {job.status} (resume or retry it first)"
            )
        worker_id = runner.new_worker_id()
        self.stdout.write(f"Job {job.task_id}: worker {worker_id} joining ({job.status})")
        printer = ProgressPrinter(self.stdout)
        try:
            outcome = runner.sync_job_run(job.pk, worker_id=worker_id, on_progress=printer)
        except DatabaseUnavailable as error:
            return self._unfinished(job, error.message)
        finally:
            printer.finish()
        job = outcome.job
        self.stdout.write(f"Worker {worker_id} loaded {outcome.days_loaded} day(s)")
        self.stdout.write(f"Job {job.task_id} {job.status}: {job.message}")
        return job_exit_status(job, sole_runner=False)

    def _action_verify(self, args: Arguments) -> int:
        """Compare loaded days with what was loaded (see `management.verify`)."""
        return verify_command(args, self.stdout, self.stderr)

    def _action_recover(self, args: Arguments) -> int:
        """Run the reaper once (the cluster schedule does it every minute)."""
        recovered = services.sync_jobs_recover_stalled()
        for job in recovered:
            self.stdout.write(f"Job {job.task_id} recovered: {job.status} (recoveries: {job.recoveries})")
        if not recovered:
            self.stdout.write("No stalled job: nothing to recover.")
        return EXIT_OK

    def _action_alerts(self, args: Arguments) -> int:
        """Freshness deadlines and due deliveries, a test alert, or the alerts (management/alerts.py)."""
        return alerts_action(
            args.extra["alerts_action"],
            now=args.now,
            limit=args.limit,
            open_only=bool(args.extra.get("open_only")),
            write=self.stdout.write,
        )

    def _action_cancel(self, args: Arguments) -> int:
        return self._control(args, "cancel")

    def _action_pause(self, args: Arguments) -> int:
        return self._control(args, "pause")

    def _action_resume(self, args: Arguments) -> int:
        """Resume in the foreground like `run`, or on the cluster with --detach.

        A pending or running job whose workers are gone (its lease ran out: a killed foreground
        run, no cluster) is taken over here instead.
        """
        if args.detach:
            with dispatch.handoff() as handoff:
                job = services.sync_job_resume(self._job(args), requested_by="cli")
            self._check_handed_over(handoff)
            self.stdout.write(f"Job {job.task_id} {job.status}: {job.message}")
            return EXIT_OK
        job = self._job(args)
        if job.status in (SyncJobStatus.PENDING, SyncJobStatus.RUNNING):
            return self._take_over(job)
        with dispatch.handoff(foreground=True):
            job = services.sync_job_resume(job, requested_by="cli")
        if job.status != SyncJobStatus.PENDING:
            self._print_detached(job)
            return EXIT_OK
        return self._run_foreground(job)

    _action_rerun = rerun.action_rerun

    def _action_retry(self, args: Arguments) -> int:
        original = self._job(args)
        detach = args.detach
        if args.dry_run:
            request = services.sync_job_retry_request(original, reprocess=args.reprocess or Reprocess.FAILED)
            self.stdout.write(f"Retry of job {original.task_id} (reprocess={request.reprocess}):")
            return self._print_plan(request)
        with dispatch.handoff(foreground=not detach) as handoff:
            job = services.sync_job_retry(
                original,
                reprocess=args.reprocess or Reprocess.FAILED,
                requested_by="cli",
                queue=args.queue,
            )
        self._check_handed_over(handoff)
        if detach or job.status == SyncJobStatus.QUEUED:
            self._print_detached(job)
            return EXIT_OK
        return self._run_foreground(job)
