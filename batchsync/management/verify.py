"""`batch_sync verify`: do the loaded days still hold what was loaded (and what the source sends)?

In the foreground it reads only and creates no job (so it takes no slot and runs beside a
sync job: each chunk is one statement, one snapshot). `--detach` creates a verify job on the
cluster instead, with progress, pause and cancel like any job (docs/verify.md).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from django.core.management.base import CommandError, OutputWrapper

from batchsync import bounds, dispatch, services
from batchsync.conf import get_settings
from batchsync.exceptions import InvalidJobRequest
from batchsync.management.arguments import Arguments, iso_date, within
from batchsync.management.exit_status import EXIT_DAYS_FAILED, EXIT_OK, EXIT_UNFINISHED
from batchsync.models import VerifyMode
from batchsync.verify import range_verify, repair_hint, warnings_line


def add_verify_subcommand(subcommands: Any, django_options: argparse.ArgumentParser) -> None:
    """`verify --start --end [--against-source] [--parallelism N] [--detach]`."""
    verify = subcommands.add_parser(
        "verify",
        parents=[django_options],
        help="compare loaded days with their load record (or the source); exit 1 if any differs",
    )
    verify.add_argument("--start", type=iso_date, required=True, help="first date, YYYY-MM-DD")
    verify.add_argument("--end", type=iso_date, required=True, help="last date, YYYY-MM-DD")
    mode = verify.add_mutually_exclusive_group()
    mode.add_argument(
        "--against-source",
        action="store_true",
        help="also fetch each day again from the source that loaded it and compare (loads nothing)",
    )
    mode.add_argument(
        "--checks",
        action="store_true",
        help="also run today's data checks over each day's rows; a finding of error severity fails it",
    )
    verify.add_argument(
        "--parallelism",
        type=within(bounds.PARALLELISM),
        help="chunks verified at once; default: BATCHSYNC_DEFAULT_PARALLELISM, or 1 per CPU, max 4",
    )
    verify.add_argument("--queue", action="store_true", help="with --detach: queue behind a running job")
    verify.add_argument(
        "--detach",
        action="store_true",
        help="a verify job on the django-q2 cluster instead (status, API, admin)",
    )


def verify_mode(args: Arguments) -> str:
    """The mode the options ask for."""
    if args.checks:
        return VerifyMode.CHECKS
    return VerifyMode.AGAINST_SOURCE if args.against_source else VerifyMode.CHECKSUM


def verify_command(args: Arguments, stdout: OutputWrapper, stderr: OutputWrapper) -> int:
    """Run `batch_sync verify`: print each day that differs and how to repair it; 1 if any, else 0."""
    for field, value in (("start_date", args.start), ("end_date", args.end)):
        if value is None:  # argparse requires both; call_command(..., start=None) does not
            raise InvalidJobRequest(field, "required, a date in YYYY-MM-DD form")
    assert args.start is not None and args.end is not None
    request = services.verify_request_build(
        start_date=args.start,
        end_date=args.end,
        mode=verify_mode(args),
        parallelism=args.parallelism,
        queue=args.queue,
        requested_by="cli",
    )
    if args.detach:
        with dispatch.handoff() as handoff:
            job = services.verify_job_create(request)
        if handoff.failure is not None:  # saved, pending: starts when the broker is back (as `run --detach`)
            raise CommandError(handoff.failure.message, returncode=EXIT_UNFINISHED)
        stdout.write(f"Verify job {job.task_id} {job.status}: {job.message}")
        stdout.write(f"follow:  python manage.py batch_sync status {job.task_id}")
        return EXIT_OK
    parallelism = request.parallelism or get_settings().default_parallelism
    terminal = sys.stderr.isatty()

    def on_chunk(done: int, total: int) -> None:
        if terminal:
            stderr.write(f"\rVerifying: {done}/{total} chunks", ending="" if done < total else "\n")

    started = time.monotonic()
    verdicts = range_verify(
        args.start,
        args.end,
        compare_source=args.against_source,
        run_checks=args.checks,
        parallelism=parallelism,
        on_chunk=on_chunk,
    )
    took = time.monotonic() - started
    mismatches = [verdict for verdict in verdicts if not verdict.matches]
    for verdict in verdicts:
        if not verdict.matches:
            stdout.write(verdict.describe())
        elif verdict.check_warnings:
            stdout.write(warnings_line(verdict))
    compared: str = {
        VerifyMode.CHECKSUM: "their load record",
        VerifyMode.AGAINST_SOURCE: "their record and their source",
        VerifyMode.CHECKS: "their record and the data checks",
    }[VerifyMode(verify_mode(args))]
    rows = sum(verdict.rows_now for verdict in verdicts)
    days = f"{len(verdicts)} day" + ("" if len(verdicts) == 1 else "s")
    differ = f"{len(mismatches)} differs" if len(mismatches) == 1 else f"{len(mismatches) or 'none'} differ"
    stdout.write(
        f"{days} ({rows:,} rows) of {args.start} .. {args.end} compared with {compared} "
        f"in {took:.1f}s: {differ}"
    )
    if mismatches:
        stdout.write(repair_hint(mismatches))
        return EXIT_DAYS_FAILED
    return EXIT_OK
