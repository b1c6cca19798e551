"""`batch_sync`'s command line: subcommands, `run` by default, typed validators of values."""

from __future__ import annotations

import argparse
import datetime as dt
import io

import pytest
from django.core.management import CommandError, call_command

from batchsync import bounds
from batchsync.management.arguments import Arguments, iso_date, with_default_action, within
from tests.factories import SyncJobFactory


@pytest.mark.parametrize(
    ("given", "parsed"),
    [
        (["--start", "2025-10-09"], ["run", "--start", "2025-10-09"]),
        (["-v", "2", "--start", "2025-10-09"], ["-v", "2", "run", "--start", "2025-10-09"]),
        (["--traceback", "--start", "x"], ["--traceback", "run", "--start", "x"]),
        (["-v", "2", "list"], ["-v", "2", "list"]),
        (["status", "12"], ["status", "12"]),
        (["sync"], ["sync"]),  # an unknown word stays: argparse names it as an invalid choice
        (["--help"], ["--help"]),
        ([], ["run"]),
    ],
)
def test_without_a_subcommand_run_is_meant(given: list[str], parsed: list[str]) -> None:
    assert with_default_action(given) == parsed


def test_values_are_parsed_to_their_types_or_refused_in_one_sentence() -> None:
    assert iso_date("2025-10-09") == dt.date(2025, 10, 9)
    with pytest.raises(argparse.ArgumentTypeError, match="'2025-13-01' is not a date in YYYY-MM-DD form"):
        iso_date("2025-13-01")
    priority = within(bounds.PRIORITY)
    assert priority("-1000") == -1000
    with pytest.raises(argparse.ArgumentTypeError, match=r"^priority must be between -1000 and 1000$"):
        priority("99999")
    with pytest.raises(argparse.ArgumentTypeError, match=r"^invalid int value: 'many'$"):
        priority("many")


def test_options_the_subcommand_does_not_take_keep_their_defaults() -> None:
    arguments = Arguments.from_options("list", {"limit": 5, "verbosity": 2, "no_color": True})
    assert arguments == Arguments(action="list", limit=5)


@pytest.mark.django_db
def test_djangos_own_options_go_before_or_after_the_subcommand() -> None:
    SyncJobFactory()
    for args in (["-v", "2", "list", "--limit", "1"], ["list", "--limit", "1", "-v", "2"]):
        out = io.StringIO()
        call_command("batch_sync", *args, stdout=out)
        assert out.getvalue().splitlines()[0].split()[:2] == ["task", "id"]


def test_call_command_gets_the_same_one_line_refusal() -> None:
    with pytest.raises(CommandError, match="argument --limit: limit must be between 1 and 500"):
        call_command("batch_sync", "list", "--limit", "0")
