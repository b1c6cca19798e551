"""The progress display: tqdm's bar on a terminal, one plain line per finished day otherwise."""

from __future__ import annotations

import datetime as dt
import io

from django.core.management.base import OutputWrapper

from batchsync.management.printer import ProgressPrinter
from tests.factories import SyncJobFactory


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _job(processed: int, day: int):
    return SyncJobFactory.build(
        total_days=4,
        processed_days=processed,
        success_days=processed,
        current_date=dt.date(2025, 9, day),
    )


def test_a_pipe_gets_one_line_per_finished_day_and_nothing_for_a_claim() -> None:
    stream = io.StringIO()
    printer = ProgressPrinter(OutputWrapper(stream))
    for processed, day in ((0, 1), (1, 2), (1, 2), (2, 3)):  # the third call: a claim, no new day
        printer(_job(processed, day))
    printer.finish()
    assert stream.getvalue().splitlines() == [
        "[0/4 loaded] 0.0% current=2025-09-01 failed=0 skipped=0 eta=-",
        "[1/4 loaded] 25.0% current=2025-09-02 failed=0 skipped=0 eta=-",
        "[2/4 loaded] 50.0% current=2025-09-03 failed=0 skipped=0 eta=-",
    ]


def test_a_terminal_gets_a_bar_redrawn_in_place_and_ended_by_finish() -> None:
    stream = Terminal()
    printer = ProgressPrinter(OutputWrapper(stream))
    for processed, day in ((0, 1), (1, 2), (4, 4)):
        printer(_job(processed, day))
    printer.finish()
    printer(_job(4, 4))  # a worker thread after the end: nothing more is drawn
    screen = stream.getvalue()
    assert "\n" not in screen.rstrip("\n") and screen.endswith("\n")
    frames = [frame.rstrip() for frame in screen.rstrip("\n").split("\r") if frame]
    assert frames[0] == "  0.0% |                    | 0/4 loaded 2025-09-01 failed 0 skipped 0 ETA -"
    assert frames[1] == " 25.0% |#####               | 1/4 loaded 2025-09-02 failed 0 skipped 0 ETA -"
    assert frames[-1] == "100.0% |####################| 4/4 loaded 2025-09-04 failed 0 skipped 0 ETA -"
