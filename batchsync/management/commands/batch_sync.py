"""`python manage.py batch_sync`: run or enqueue a sync job, and control jobs, from a terminal."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import signal
import sys
import threading
from argparse import ArgumentParser
from collections.abc import Iterator
from types import FrameType
from typing import Any, NoReturn

import psycopg
from django.core.checks import Tags
from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper
from django.db import DatabaseError, InterfaceError, connection
from django.utils import timezone, translation

from batchsync import bounds, calendars, dispatch, reconnect, runner, selectors, services
from batchsync.conf import get_settings
from batchsync.exceptions import (
    BatchSyncError,
    DatabaseUnavailable,
    InvalidJobRequest,
    InvalidTransition,
    SyncAlreadyRunning,
)
from batchsync.management import output
from batchsync.models import WORKING_STATUSES, Reprocess, SyncJob, SyncJobStatus

EXIT_OK, EXIT_DAYS_FAILED, EXIT_BAD_ARGUMENTS = 0, 1, 2
EXIT_STOPPED = 130  # 128 + SIGINT, as shells report Ctrl-C: the job was stopped before its end
# EX_TEMPFAIL: the job is saved and unfinished but resumable: this run's workers stopped (database
# gone too long, lease lost to another process), or the broker was down at hand-over.
EXIT_UNFINISHED = 75
# The command-line spelling of each request field, for one-line error messages.
OPTION_OF_FIELD = {
    "start_date": "--start",
    "end_date": "--end",
    "source": "--source",
    "path": "--path",
    "reprocess": "--reprocess",
    "parallelism": "--parallelism",
    "priority": "--priority",
    "limit": "--limit",
    "force": "--force",
    "calendar": "BATCHSYNC_CALENDAR",
}
ACTIONS = ("run", "status", "list", "cancel", "pause", "resume", "retry", "plan", "work", "recover")


def _days(count: int) -> str:
    """`1 day`, `2 days`: the command's own English lines."""
    return f"{count} day" if count == 1 else f"{count} days"


def _parse_date(value: str | None, field: str) -> dt.date:
    if not value:
        raise InvalidJobRequest(field, "required, a date in YYYY-MM-DD form")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise InvalidJobRequest(field, f"{value!r} is not a date in YYYY-MM-DD form") from None


def _same_range_and_source(job: SyncJob, request: services.JobRequest) -> bool:
    """Is `request` a rerun of the command that started `job` (which it may then take over)?"""
    return (job.start_date, job.end_date, job.source, job.source_options) == (
        request.start_date,
        request.end_date,
        request.source,
        request.source_options,
    )


class OneLineErrorParser(CommandParser):
    """Argument errors in one line on the command line (the usage is in --help), exit status 2."""

    def error(self, message: str) -> NoReturn:
        if not self.called_from_command_line:
            super().error(message)  # raises CommandError (call_command)
        self.exit(EXIT_BAD_ARGUMENTS, f"{self.prog}: error: {message} (see --help)\n")


class ProgressPrinter:
    """A live one-line progress bar on a terminal; plain lines when output is not a terminal.

    The bar is redrawn in place (carriage return) each time a day is claimed or done; the
    plain form prints one line per finished day, fit for logs and pipes.
    """

    def __init__(self, out: OutputWrapper) -> None:
        self.out = out
        self.tty = out.isatty()
        self.lock = threading.Lock()
        self.last_line = ""
        self.last_processed: int | None = None

    def __call__(self, job: SyncJob) -> None:
        eta = (
            timezone.localtime(job.estimated_completion).strftime("%H:%M:%S")
            if job.estimated_completion
            else "-"
        )
        current = job.current_date.isoformat() if job.current_date else "-"
        if self.tty:
            filled = int(job.progress_percent / 5)
            bar = "#" * filled + "-" * (20 - filled)
            line = (
                f"\r[{bar}] {job.progress_percent:5.1f}% {current} "
                f"ok {job.success_days} failed {job.failed_days} skipped {job.skipped_days} ETA {eta}\033[K"
            )
        else:
            if job.processed_days == self.last_processed:
                return  # a day was claimed, not finished: nothing new for a log
            self.last_processed = job.processed_days
            line = (
                f"[{job.processed_days}/{job.total_days}] {job.progress_percent:.1f}% current={current} "
                f"ok={job.success_days} failed={job.failed_days} skipped={job.skipped_days} eta={eta}\n"
            )
        with self.lock:
            if line != self.last_line:
                self.out.write(line, ending="")
                self.out.flush()
                self.last_line = line

    def finish(self) -> None:
        if self.tty and self.last_line:
            self.out.write("")


class Command(BaseCommand):
    # Model checks only: the full set imports the URLconf (DRF, drf-spectacular) to check it,
    # 0.4-0.5 s of every run for views this command never serves (runserver checks them).
    requires_system_checks = [Tags.models]
    help = (
        "Backfill daily bars for a date range (foreground, or --detach to the django-q2 cluster), "
        "and control jobs: status, list, cancel, pause, resume, retry, plan."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("action", nargs="?", default="run", choices=ACTIONS, help="default: run")
        parser.add_argument(
            "job_id", nargs="?", help="task id (or number) of the job: status/cancel/pause/resume/retry/work"
        )
        parser.add_argument("--start", help="first date, YYYY-MM-DD")
        parser.add_argument("--end", help="last date, YYYY-MM-DD")
        parser.add_argument("--source", default=None, help="data source name (default: demo)")
        parser.add_argument("--path", help="directory of the csv source")
        parser.add_argument(
            "--force", action="store_true", help="reload days already loaded (= --reprocess all)"
        )
        parser.add_argument(
            "--reprocess",
            choices=Reprocess.values,
            default=None,
            help="which days load again: failed (default: failed and never-run), all, none (never attempted)",
        )
        parser.add_argument(
            "--parallelism",
            type=int,
            default=None,
            help="days loaded at once (workers); default: BATCHSYNC_DEFAULT_PARALLELISM, or 1 per CPU, max 4",
        )
        parser.add_argument(
            "--priority",
            type=int,
            default=0,
            help=f"queue priority, higher first ({bounds.PRIORITY.low} to {bounds.PRIORITY.high})",
        )
        parser.add_argument(
            "--queue", action="store_true", help="queue behind a running job instead of refusing"
        )
        parser.add_argument(
            "--detach", action="store_true", help="enqueue on the django-q2 cluster and return"
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="show which days would load or skip; change nothing"
        )
        parser.add_argument(
            "--limit", type=int, default=20, help=f"jobs shown by list (at most {bounds.LIST_LIMIT.high})"
        )

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.__class__ = OneLineErrorParser  # same parser, one-line errors
        return parser

    def handle(self, *args: Any, **options: Any) -> None:
        """Run the action in the terminal's language (BATCHSYNC_CLI_LANGUAGE: en or zh-hans)."""
        sigint = signal.getsignal(signal.SIGINT)
        try:
            with translation.override(os.environ.get("BATCHSYNC_CLI_LANGUAGE", "en")):
                self._handle(options)
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

    def _handle(self, options: dict[str, Any]) -> None:
        self.verbosity = int(options.get("verbosity", 1))
        action: str = options["action"]
        try:
            with self._quiet_info_logs(self.stdout.isatty()):
                code = getattr(self, f"_action_{action}")(options)
        except InvalidJobRequest as error:
            option = OPTION_OF_FIELD.get(error.field, error.field)
            raise CommandError(f"{option}: {error.message}", returncode=EXIT_BAD_ARGUMENTS) from None
        except SyncAlreadyRunning as error:
            message = selectors.sync_job_slot_holder_message(error.facts) if error.facts else error.message
            raise CommandError(message, returncode=EXIT_BAD_ARGUMENTS) from None
        except BatchSyncError as error:
            raise CommandError(error.message, returncode=EXIT_BAD_ARGUMENTS) from None
        if code:
            sys.exit(code)

    # --- starting jobs -----------------------------------------------------------------

    def _request(self, options: dict[str, Any]) -> services.JobRequest:
        # The command line, run by a local operator, may read any directory (confine_paths).
        return services.sync_request_build(
            start_date=_parse_date(options["start"], "start_date"),
            end_date=_parse_date(options["end"], "end_date"),
            source=options["source"],
            path=options["path"],
            force=options["force"],
            reprocess=options["reprocess"],
            parallelism=options["parallelism"],
            priority=options["priority"],
            queue=options["queue"],
            requested_by="cli",
            confine_paths=False,
        )

    def _action_plan(self, options: dict[str, Any]) -> int:
        return self._print_plan(self._request(options))

    def _warn_if_calendar_ends_soon(self) -> None:
        """Tell the user before the calendar runs out, not on the first day it refuses a job."""
        warning = calendars.calendar_end_warning(get_settings().calendar, timezone.localdate())
        if warning:
            self.stderr.write(f"Warning: {warning}")

    def _print_plan(self, request: services.JobRequest) -> int:
        services.sync_request_validate(request)
        plan = services.sync_days_plan(request.start_date, request.end_date, request.reprocess)
        self._warn_if_calendar_ends_soon()
        for day in plan:
            self.stdout.write(
                f"{day.date}  {'load' if day.status == 'pending' else 'skip'}  {day.skip_reason}"
            )
        to_load = sum(1 for day in plan if day.status == "pending")
        self.stdout.write(
            f"{_days(len(plan))}: {to_load} to load, {len(plan) - to_load} skipped (dry run: nothing changed)"
        )
        return EXIT_OK

    def _action_run(self, options: dict[str, Any]) -> int:
        if options["dry_run"]:
            return self._action_plan(options)
        request = self._request(options)
        try:
            with dispatch.handoff(foreground=not options["detach"]) as handoff:
                job = services.sync_job_create(request)
        except SyncAlreadyRunning as refused:
            holder = SyncJob.objects.filter(pk=refused.job_id).first() if refused.job_id else None
            if options["detach"] or holder is None or not _same_range_and_source(holder, request):
                raise
            return self._take_over(holder)
        self._warn_if_calendar_ends_soon()
        if options["detach"]:
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
        worker_ids = self._worker_ids(job.parallelism)
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
        stop, abort, decided = threading.Event(), threading.Event(), threading.Event()
        worker_ids = worker_ids or self._worker_ids(job.parallelism)
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
            job, stopped_by = self._run_workers(job, worker_ids, stop, abort, printer)
        except KeyboardInterrupt:
            abort.set()
            printer.finish()
            job = self._abandon(job, worker_ids)
            self.stderr.write("Aborted: the days in flight were rolled back; the job is cancelled.")
        finally:
            decided.set()
            printer.finish()
        if stopped_by is not None or job.status in (SyncJobStatus.PENDING, *WORKING_STATUSES):
            return self._unfinished(job, stopped_by)
        self.stdout.write(job.message)
        for error in selectors.sync_job_recent_errors(job):
            self.stdout.write(f"  {error.date}: {error.error}")
        self.stdout.write(f"Job {job.task_id} {job.status}")
        if job.failed_days or job.status == SyncJobStatus.FAILED:
            return EXIT_DAYS_FAILED
        if job.status in (SyncJobStatus.CANCELLED, SyncJobStatus.PAUSED):
            return EXIT_STOPPED
        return EXIT_OK

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

    @staticmethod
    def _worker_ids(parallelism: int) -> list[str]:
        """One worker id per thread; the threads' ids share a prefix (at most 63 characters)."""
        base = runner.new_worker_id()
        return [base] if parallelism == 1 else [f"{base}-{n}" for n in range(parallelism)]

    def _abandon(self, job: SyncJob, worker_ids: list[str]) -> SyncJob:
        """After an abort: roll back and give back the days in flight, cancel, free the slot."""
        connection.close()  # the interrupted query may have left the session in any state
        services.sync_workers_abort(job.pk, worker_ids)
        with contextlib.suppress(InvalidTransition):
            services.sync_job_cancel(job)
        return services.sync_job_finish_if_done(job.pk)

    def _run_workers(
        self,
        job: SyncJob,
        worker_ids: list[str],
        stop: threading.Event,
        abort: threading.Event,
        printer: ProgressPrinter,
    ) -> tuple[SyncJob, str | None]:
        """Run the job's workers: here, or in threads (daemons: an abort does not wait for them).

        Returns the job as its workers left it, and why they stopped early if they did (the
        database was unreachable for the whole outage window).
        """
        if len(worker_ids) == 1:
            try:
                outcome = runner.sync_job_run(job.pk, worker_id=worker_ids[0], stop=stop, on_progress=printer)
            except DatabaseUnavailable as error:
                return job, error.message
            return outcome.job, None
        language = translation.get_language()
        outages: list[str] = []

        def work(worker_id: str) -> None:
            try:
                with translation.override(language):  # errors are stored in the command's language
                    runner.sync_job_run(
                        job.pk, worker_id=worker_id, stop=stop, abort=abort, on_progress=printer
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
            for n, worker_id in enumerate(worker_ids)
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

    # --- controlling jobs --------------------------------------------------------------

    def _job(self, options: dict[str, Any]) -> SyncJob:
        if not options["job_id"]:
            raise InvalidJobRequest("job_id", f"{options['action']} needs a job id (see: batch_sync list)")
        return selectors.sync_job_detail(options["job_id"])

    def _action_status(self, options: dict[str, Any]) -> int:
        for line in output.job_status_lines(self._job(options)):
            self.stdout.write(line)
        return EXIT_OK

    def _action_list(self, options: dict[str, Any]) -> int:
        for line in output.job_list_lines(
            selectors.sync_job_list_recent(bounds.LIST_LIMIT.check(options["limit"]))
        ):
            self.stdout.write(line)
        return EXIT_OK

    def _control(self, options: dict[str, Any], operation: str) -> int:
        job = self._job(options)
        again = operation == "cancel" and job.status == SyncJobStatus.CANCELLING
        job = getattr(services, f"sync_job_{operation}")(job)
        if again and job.status == SyncJobStatus.CANCELLING:
            self.stdout.write(
                f"Job {job.task_id} is already being cancelled: it stops after the day in flight "
                f"({job.message})"
            )
            return EXIT_OK
        self.stdout.write(f"Job {job.task_id} {job.status}: {job.message}")
        return EXIT_OK

    def _action_work(self, options: dict[str, Any]) -> int:
        """Be one more worker of a pending or running job, here in the foreground.

        What a cluster worker does, without a cluster: on a second machine, or to take over a
        job whose workers died. Killing it is safe: its day's lease runs out and another worker
        (or the reaper) takes the day over.
        """
        job = self._job(options)
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
        if job.status == SyncJobStatus.FAILED:
            return EXIT_DAYS_FAILED
        if job.status in (SyncJobStatus.CANCELLED, SyncJobStatus.PAUSED):
            return EXIT_STOPPED
        return EXIT_OK

    def _action_recover(self, options: dict[str, Any]) -> int:
        """Run the reaper once (the cluster schedule does it every minute)."""
        recovered = services.sync_jobs_recover_stalled()
        for job in recovered:
            self.stdout.write(f"Job {job.task_id} recovered: {job.status} (recoveries: {job.recoveries})")
        if not recovered:
            self.stdout.write("No stalled job: nothing to recover.")
        return EXIT_OK

    def _action_cancel(self, options: dict[str, Any]) -> int:
        return self._control(options, "cancel")

    def _action_pause(self, options: dict[str, Any]) -> int:
        return self._control(options, "pause")

    def _action_resume(self, options: dict[str, Any]) -> int:
        """Resume in the foreground like `run`, or on the cluster with --detach.

        A pending or running job whose workers are gone (its lease ran out: a killed foreground
        run, no cluster) is taken over here instead.
        """
        if options["detach"]:
            with dispatch.handoff() as handoff:
                job = services.sync_job_resume(self._job(options))
            self._check_handed_over(handoff)
            self.stdout.write(f"Job {job.task_id} {job.status}: {job.message}")
            return EXIT_OK
        job = self._job(options)
        if job.status in (SyncJobStatus.PENDING, SyncJobStatus.RUNNING):
            return self._take_over(job)
        with dispatch.handoff(foreground=True):
            job = services.sync_job_resume(job)
        if job.status != SyncJobStatus.PENDING:
            self._print_detached(job)
            return EXIT_OK
        return self._run_foreground(job)

    def _action_retry(self, options: dict[str, Any]) -> int:
        original = self._job(options)
        detach = options["detach"]
        if options["dry_run"]:
            request = services.sync_job_retry_request(
                original, reprocess=options["reprocess"] or Reprocess.FAILED
            )
            self.stdout.write(f"Retry of job {original.task_id} (reprocess={request.reprocess}):")
            return self._print_plan(request)
        with dispatch.handoff(foreground=not detach) as handoff:
            job = services.sync_job_retry(
                original,
                reprocess=options["reprocess"] or Reprocess.FAILED,
                requested_by="cli",
                queue=options["queue"],
            )
        self._check_handed_over(handoff)
        if detach or job.status == SyncJobStatus.QUEUED:
            self._print_detached(job)
            return EXIT_OK
        return self._run_foreground(job)
