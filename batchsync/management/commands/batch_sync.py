"""`python manage.py batch_sync`: run or enqueue a sync job, and control jobs, from a terminal."""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
from collections.abc import Iterator
from typing import Any

from django.core.checks import Tags
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import translation

from batchsync import bounds, selectors
from batchsync.adjusted import adjusted_bars
from batchsync.exceptions import (
    BatchSyncError,
    InvalidJobRequest,
    SyncAlreadyRunning,
    SyncUpToDate,
)
from batchsync.management import output
from batchsync.management.alerts import alerts_action
from batchsync.management.arguments import Arguments, OneLineErrorParser, add_subcommands, cli_language
from batchsync.management.control import job_control, job_work, jobs_recover
from batchsync.management.exit_status import (
    EXIT_BAD_ARGUMENTS,
    EXIT_OK,
)
from batchsync.management.runs import (
    JobRuns,
    job_of_arguments,
)
from batchsync.management.schedules import schedule_command
from batchsync.management.verify import add_verify_subcommand, verify_command

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


def _tuning(args: Arguments) -> dict[str, Any]:
    """The options `schedule add` shares with `run`, by the schedule's names."""
    return {"lookback": args.lookback, "parallelism": args.parallelism, "priority": args.priority}


class Command(BaseCommand):
    # Model checks only: the full set imports the URLconf (DRF, drf-spectacular) to check it,
    # 0.4-0.5 s of every run for views this command never serves (runserver checks them).
    requires_system_checks = [Tags.models]
    help = (
        "Backfill daily bars for a date range (foreground, or --detach to the django-q2 cluster), "
        "and control jobs: status, list, cancel, pause, resume, retry, rerun, plan; verify loaded days, "
        "manage sync schedules and alerts."
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

    # --- starting jobs (management/runs.py) ------------------------------------------

    @property
    def _runs(self) -> JobRuns:
        return JobRuns(self.stdout, self.stderr)

    def _action_run(self, args: Arguments) -> int:
        return self._runs.run(args)

    def _action_plan(self, args: Arguments) -> int:
        return self._runs.plan(args)

    def _action_resume(self, args: Arguments) -> int:
        """Resume in the foreground like `run`, or on the cluster with --detach (see `JobRuns.resume`)."""
        return self._runs.resume(args)

    def _action_retry(self, args: Arguments) -> int:
        return self._runs.retry(args)

    def _action_rerun(self, args: Arguments) -> int:
        return self._runs.rerun(args)

    # --- controlling jobs (management/control.py) ------------------------------------

    def _action_status(self, args: Arguments) -> int:
        for line in output.job_status_lines(job_of_arguments(args)):
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

    def _action_work(self, args: Arguments) -> int:
        """Be one more worker of a pending or running job, here in the foreground (`control.job_work`)."""
        return job_work(args, self._runs)

    def _action_verify(self, args: Arguments) -> int:
        """Compare loaded days with what was loaded (see `management.verify`)."""
        return verify_command(args, self.stdout, self.stderr)

    def _action_recover(self, args: Arguments) -> int:
        """Run the reaper once (the cluster schedule does it every minute)."""
        return jobs_recover(self.stdout.write)

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
        return job_control(args, "cancel", self.stdout.write)

    def _action_pause(self, args: Arguments) -> int:
        return job_control(args, "pause", self.stdout.write)
