"""`batch_sync schedule add|list|pause|resume|remove|run-now`: sync schedules from a terminal."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from typing import Any

from django.core.management.base import BaseCommand

from batchsync import bounds, schedule_selectors, services
from batchsync.management.exit_status import EXIT_OK
from batchsync.management.output import table

WHEN = "%Y-%m-%d %H:%M"
# The options only `schedule` takes (`Arguments.extra`); the ones it shares with `run` are fields.
SCHEDULE_OPTIONS = ("schedule_action", "name", "cron", "option", "paused", "freshness_deadline")


def clock_time(value: str) -> dt.time:
    """A time of day, HH:MM."""
    try:
        return dt.time.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a time in HH:MM form") from None


def source_option(value: str) -> tuple[str, Any]:
    """`name=value`; the value as JSON when it parses (numbers, true/false), else the text."""
    name, equals, text = value.partition("=")
    if not equals or not name:
        raise argparse.ArgumentTypeError(f"{value!r} is not name=value")
    try:
        return name, json.loads(text)
    except ValueError:
        return name, text


def add_schedule_subcommands(subcommands: Any, parents: list[argparse.ArgumentParser], within: Any) -> None:
    """Register `schedule` and its actions on the command's subparsers (see arguments.py)."""
    schedule = subcommands.add_parser("schedule", parents=parents, help="named sync schedules (cron)")
    schedule.inserts_default_action = False  # `schedule` alone is an error, not `schedule run`
    actions = schedule.add_subparsers(dest="schedule_action", metavar="schedule_action", required=True)
    add = actions.add_parser("add", help="add a schedule of --latest runs")
    add.add_argument("name", help="the schedule's name")
    add.add_argument(
        "--cron", required=True, help="cron expression in the exchange's time zone, e.g. '30 18 * * 1-5'"
    )
    add.add_argument("--source", help="data source (default: BATCHSYNC_DEFAULT_SOURCE)")
    add.add_argument("--path", help="directory of the csv source; directory or file of the parquet source")
    add.add_argument(
        "--option",
        action="append",
        type=source_option,
        default=[],
        help="a source option, name=value (repeat)",
    )
    add.add_argument(
        "--lookback", type=within(bounds.LOOKBACK_DAYS), help="trading days reloaded with new ones"
    )
    add.add_argument("--parallelism", type=within(bounds.PARALLELISM), help="days loaded at once")
    add.add_argument("--priority", type=within(bounds.PRIORITY), default=0, help="queue priority")
    add.add_argument("--paused", action="store_true", help="add it paused")
    add.add_argument(
        "--freshness-deadline", type=clock_time, help="HH:MM: the latest trading day loaded by then (alerts)"
    )
    actions.add_parser("list", help="every schedule: last run, outcome, next run")
    for action, about in (
        ("pause", "stop starting runs"),
        ("resume", "start runs again from the next cron time"),
        ("remove", "remove a schedule (its jobs stay)"),
        ("run-now", "start the schedule's run now, on the cluster"),
    ):
        actions.add_parser(action, help=about).add_argument("name", help="the schedule's name")


def schedule_command(command: BaseCommand, options: dict[str, Any]) -> int:
    """Run one `schedule` action; errors are the command's (`InvalidJobRequest` names the option)."""
    action, name = options["schedule_action"], options.get("name")
    write = command.stdout.write
    if action == "list":
        for line in schedule_list_lines():
            write(line)
    elif action == "add":
        source_options = dict(options["option"])
        if options.get("path"):
            source_options["path"] = options["path"]
        schedule = services.sync_schedule_create(
            services.ScheduleSpec(
                name=name or "",
                cron=options["cron"],
                source=options.get("source"),
                source_options=source_options,
                lookback_days=options.get("lookback"),
                parallelism=options.get("parallelism"),
                priority=options.get("priority") or 0,
                paused=options["paused"],
                freshness_deadline=options.get("freshness_deadline"),
            ),
            confine_paths=False,  # a local operator may read any directory, as with `run`
        )
        write(f"Schedule {schedule.name} added: {schedule.cron}, next run {_when(schedule)}")
    elif action == "pause":
        write(f"Schedule {services.sync_schedule_pause(name or '').name} paused")
    elif action == "resume":
        schedule = services.sync_schedule_resume(name or "")
        write(f"Schedule {schedule.name} resumed: next run {_when(schedule)}")
    elif action == "remove":
        services.sync_schedule_delete(name or "")
        write(f"Schedule {name} removed")
    else:  # run-now
        run = services.sync_schedule_run_now(name or "")
        write(f"Schedule {run.schedule.name}: {run.outcome}: {run.message}")
    return EXIT_OK


def _when(schedule: Any) -> str:
    facts = schedule_selectors.sync_schedule_facts(schedule)
    moment = facts["next_run_at"]
    return f"{moment:{WHEN}} {facts['timezone']}" if moment else "-"


def schedule_list_lines() -> list[str]:
    """`batch_sync schedule list`: one row per schedule under a header (times in the exchange zone)."""
    headers = ("name", "cron", "source", "paused", "next run", "last run", "last job", "outcome")
    rows = []
    for schedule in schedule_selectors.sync_schedule_list():
        facts = schedule_selectors.sync_schedule_facts(schedule)
        rows.append(
            (
                facts["name"],
                facts["cron"],
                facts["source"],
                "yes" if facts["paused"] else "no",
                f"{facts['next_run_at']:{WHEN}}" if facts["next_run_at"] else None,
                f"{facts['last_run_at']:{WHEN}}" if facts["last_run_at"] else None,
                facts["last_job"],
                facts["outcome"],
            )
        )
    return table(headers, rows)
