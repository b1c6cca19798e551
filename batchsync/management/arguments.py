"""`batch_sync`'s command line: its subcommands, their options and the typed validators of values.

A bad value is refused by argparse itself (`type=` functions): one line on stderr, exit 2,
before anything is looked up or changed.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from django.core.management.base import CommandParser
from django.utils import timezone, translation

from batchsync import bounds
from batchsync.exceptions import InvalidJobRequest
from batchsync.management.alerts import ALERT_OPTIONS, add_alert_subcommands
from batchsync.management.exit_status import EXIT_BAD_ARGUMENTS
from batchsync.management.schedules import SCHEDULE_OPTIONS, add_schedule_subcommands
from batchsync.models import PriceAdjustment, Reprocess

DEFAULT_ACTION = "run"
# Django's own options (before or after the subcommand); their values set at the top level.
DJANGO_VALUE_OPTIONS = ("-v", "--verbosity", "--settings", "--pythonpath")
DJANGO_FLAG_OPTIONS = ("--traceback", "--no-color", "--force-color", "--skip-checks")
HELP_OPTIONS = ("-h", "--help", "--version")


def cli_language() -> str:
    """The language of the command's messages (BATCHSYNC_CLI_LANGUAGE: en or zh-hans)."""
    return os.environ.get("BATCHSYNC_CLI_LANGUAGE", "en")


def iso_date(value: str) -> dt.date:
    """A date in YYYY-MM-DD form."""
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date in YYYY-MM-DD form") from None


def aware_datetime(value: str) -> dt.datetime:
    """An ISO date and time; without an offset it is in the server's time zone (TIME_ZONE)."""
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date and time in ISO form") from None
    return moment if moment.tzinfo else timezone.make_aware(moment)


def within(bound: bounds.Bound) -> Callable[[str], int]:
    """A whole number inside `bound` (the same bound the services, the API and the admin check)."""

    def whole_number(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid int value: {value!r}") from None
        try:
            with translation.override(cli_language()):
                return bound.check(number)
        except InvalidJobRequest as error:
            raise argparse.ArgumentTypeError(error.message) from None

    return whole_number


@dataclasses.dataclass(frozen=True, kw_only=True)
class Arguments:
    """What the command line asked for; an option the subcommand does not take keeps its default."""

    action: str
    job_id: str | None = None
    start: dt.date | None = None
    end: dt.date | None = None
    source: str | None = None
    path: str | None = None
    source_url: str | None = None
    table: str | None = None
    query: str | None = None
    columns: str | None = None
    force: bool = False
    reprocess: str | None = None
    parallelism: int | None = None
    priority: int = 0
    queue: bool = False
    detach: bool = False
    dry_run: bool = False
    limit: int = 20
    with_adj_factor: bool = False
    ts_code: str | None = None
    adjust: str = "none"
    days: str | None = None  # rerun: 2025-10-09,2025-10-13..2025-10-17
    against_source: bool = False  # verify
    checks: bool = False  # verify
    latest: bool = False
    lookback: int | None = None
    now: dt.datetime | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)  # a subcommand module's own options

    def source_options(self) -> dict[str, str | bool]:
        """The source options given by their own flags (the postgres source's, tushare's factors)."""
        given: dict[str, str | bool | None] = {
            "source_url": self.source_url,
            "table": self.table,
            "query": self.query,
            "columns": self.columns,
            "with_adj_factor": self.with_adj_factor or None,
        }
        return {name: value for name, value in given.items() if value is not None}

    @classmethod
    def from_options(cls, action: str, options: dict[str, Any]) -> Arguments:
        """The parsed options of `action`, without Django's own (verbosity, settings ...)."""
        names = {field.name for field in dataclasses.fields(cls)} - {"action", "extra"}
        extra = {name: options[name] for name in (*SCHEDULE_OPTIONS, *ALERT_OPTIONS) if name in options}
        return cls(action=action, extra=extra, **{name: options[name] for name in names if name in options})


class OneLineErrorParser(CommandParser):
    """Argument errors in one line on the command line (the usage is in --help), exit status 2.

    Without a subcommand, `run` is meant: `batch_sync --start ... --end ...`.
    """

    def error(self, message: str) -> NoReturn:
        if not self.called_from_command_line:
            super().error(message)  # raises CommandError (call_command)
        self.exit(EXIT_BAD_ARGUMENTS, f"{self.prog}: error: {message} (see --help)\n")

    inserts_default_action = True  # False for a subcommand's own actions (`schedule`)

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        if args is not None and self._subparsers is not None and self.inserts_default_action:
            args = with_default_action(list(args))
        parsed, extras = super().parse_known_args(args, namespace)
        if getattr(parsed, "latest", True) is False:  # a range subcommand without --latest
            missing = [option for option in ("start", "end") if getattr(parsed, option, None) is None]
            if missing:
                self.error(f"the following arguments are required: {', '.join(f'--{m}' for m in missing)}")
        return parsed, extras


def with_default_action(args: list[str]) -> list[str]:
    """`args` with `run` where the subcommand goes if the first word after Django's options is an option."""
    position = 0
    while position < len(args):
        word = args[position]
        if word in DJANGO_VALUE_OPTIONS:
            position += 2
        elif word in DJANGO_FLAG_OPTIONS or word.startswith(("--verbosity=", "--settings=", "--pythonpath=")):
            position += 1
        else:
            break
    if position >= len(args) or (args[position].startswith("-") and args[position] not in HELP_OPTIONS):
        return [*args[:position], DEFAULT_ACTION, *args[position:]]
    return args


# Adds a subcommand of its own module (e.g. `management.verify`): (subparsers, Django's options).
SubcommandAdder = Callable[[Any, argparse.ArgumentParser], None]


def add_subcommands(parser: CommandParser, more: Sequence[SubcommandAdder] = ()) -> None:
    """`run` (the default), `plan`, `list`, `recover`, the job's operations that take its id, and `more`."""
    django_options = OneLineErrorParser(add_help=False, argument_default=argparse.SUPPRESS)
    hidden = argparse.SUPPRESS  # described in `batch_sync --help`
    django_options.add_argument("-v", "--verbosity", type=int, choices=[0, 1, 2, 3], help=hidden)
    django_options.add_argument("--settings", help=hidden)
    django_options.add_argument("--pythonpath", help=hidden)
    for flag in DJANGO_FLAG_OPTIONS:
        django_options.add_argument(flag, action="store_true", help=hidden)

    job_range = OneLineErrorParser(add_help=False)
    job_range.add_argument("--start", type=iso_date, help="first date, YYYY-MM-DD (or --latest)")
    job_range.add_argument("--end", type=iso_date, help="last date, YYYY-MM-DD (or --latest)")
    job_range.add_argument(
        "--latest",
        action="store_true",
        help="from the day after the newest day loaded from the source to the latest published one",
    )
    job_range.add_argument(
        "--lookback",
        type=within(bounds.LOOKBACK_DAYS),
        help="with --latest: trading days before the newest loaded one reloaded too "
        "(default: BATCHSYNC_LATEST_LOOKBACK_DAYS)",
    )
    job_range.add_argument(
        "--now",
        type=aware_datetime,
        help="with --latest: pretend it is this time (ISO; for examples and tests)",
    )
    job_range.add_argument("--source", help="data source name (default: BATCHSYNC_DEFAULT_SOURCE, demo)")
    job_range.add_argument(
        "--path", help="directory of the csv source; directory or file of the parquet source"
    )
    job_range.add_argument(
        "--with-adj-factor",
        action="store_true",
        help="tushare: also load each day's adj_factor, in the bars' transaction",
    )
    job_range.add_argument(
        "--source-url", help="postgres source: upstream URL, no password (docs/sources.md)"
    )
    job_range.add_argument("--table", help="postgres source: upstream table, filtered on its trade_date")
    job_range.add_argument("--query", help="postgres source: upstream query selecting %%(trade_date)s's bars")
    job_range.add_argument("--columns", help="postgres source: ours=theirs,... column mapping")
    job_range.add_argument(
        "--force", action="store_true", help="reload days already loaded (= --reprocess all)"
    )

    reprocess = OneLineErrorParser(add_help=False)
    reprocess.add_argument(
        "--reprocess",
        choices=Reprocess.values,
        help="which days load again: failed (default: failed and never-run), all, none (never attempted)",
    )
    start = OneLineErrorParser(add_help=False)
    start.add_argument("--queue", action="store_true", help="queue behind a running job instead of refusing")
    start.add_argument("--detach", action="store_true", help="enqueue on the django-q2 cluster and return")
    start.add_argument(
        "--dry-run", action="store_true", help="show which days would load or skip; change nothing"
    )
    job = OneLineErrorParser(add_help=False)
    job.add_argument("job_id", help="task id (or number) of the job")

    subcommands = parser.add_subparsers(
        dest="action", metavar="action", parser_class=OneLineErrorParser, required=True
    )
    run = subcommands.add_parser(
        "run",
        parents=[django_options, job_range, reprocess, start],
        help="load a date range, here in the foreground or --detach to the cluster (the default)",
    )
    run.add_argument(
        "--parallelism",
        type=within(bounds.PARALLELISM),
        help="days loaded at once (workers); default: BATCHSYNC_DEFAULT_PARALLELISM, or 1 per CPU, max 4",
    )
    run.add_argument(
        "--priority",
        type=within(bounds.PRIORITY),
        default=0,
        help=f"queue priority, higher first ({bounds.PRIORITY.low} to {bounds.PRIORITY.high})",
    )
    subcommands.add_parser(
        "plan", parents=[django_options, job_range, reprocess], help="which days would load or skip"
    )
    listing = subcommands.add_parser("list", parents=[django_options], help="the newest jobs, a table")
    listing.add_argument(
        "--limit",
        type=within(bounds.LIST_LIMIT),
        default=20,
        help=f"jobs shown ({bounds.LIST_LIMIT.low} to {bounds.LIST_LIMIT.high})",
    )
    subcommands.add_parser("recover", parents=[django_options], help="run the reaper once")
    bars = subcommands.add_parser(
        "bars", parents=[django_options], help="one stock's loaded bars, raw or adjusted (qfq/hfq), a table"
    )
    bars.add_argument("--ts-code", required=True, help="the stock, e.g. 000001.SZ")
    bars.add_argument("--start", type=iso_date, required=True, help="first date, YYYY-MM-DD")
    bars.add_argument("--end", type=iso_date, required=True, help="last date, YYYY-MM-DD")
    bars.add_argument(
        "--adjust",
        choices=PriceAdjustment.values,
        default=PriceAdjustment.NONE,
        help="none (raw), qfq (forward: x factor / latest factor) or hfq (back: x factor)",
    )
    for name, about in (
        ("status", "a job's progress (loaded of to load), day counts, lease, operations and events"),
        ("cancel", "cancel a job after the day in flight"),
        ("pause", "pause a job after the day in flight"),
        ("work", "be one more worker of a pending or running job, here"),
    ):
        subcommands.add_parser(name, parents=[django_options, job], help=about)
    resume = subcommands.add_parser(
        "resume", parents=[django_options, job], help="resume a job here, or --detach to the cluster"
    )
    resume.add_argument("--detach", action="store_true", help="enqueue on the django-q2 cluster and return")
    subcommands.add_parser(
        "retry",
        parents=[django_options, job, reprocess, start],
        help="load remaining days: a new job for a job's failed and never-run days",
    )
    rerun = subcommands.add_parser(
        "rerun", parents=[django_options, job], help="a new job loading chosen days of a job again (force)"
    )
    rerun.add_argument("--days", required=True, help="days and ranges: 2025-10-09,2025-10-13..2025-10-17")
    rerun.add_argument("--queue", action="store_true", help="queue behind a running job instead of refusing")
    rerun.add_argument("--detach", action="store_true", help="enqueue on the django-q2 cluster and return")
    for add_more in more:
        add_more(subcommands, django_options)
    add_schedule_subcommands(subcommands, [django_options], within)
    add_alert_subcommands(subcommands, django_options, within(bounds.LIST_LIMIT), aware_datetime)
