"""A test-only source that injects faults at chosen points of a day: delays, crashes, errors.

The bars are the demo source's, so a clean run is known exactly. Each fault point writes an
event line to `<marker_dir>/events` first ("fetch 2025-09-03 <pid>"), so a test can wait for a
worker to be exactly there before it kills, freezes or disconnects it. Counters live in files,
so "the first N attempts" holds across worker processes.

Registered in subprocesses with BATCHSYNC_EXTRA_SOURCES=fault=tests.faultsource.FaultSource;
options come from the job's source_options, else from env BATCHSYNC_FAULTS (JSON), which is
how a test drives the plain `batch_sync --source fault` command.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from batchsync.exceptions import SourceError
from batchsync.sources.base import CsvPayload, Source
from batchsync.sources.demo import demo_day_csv

OPTION_NAMES = frozenset(
    {
        "marker_dir",  # where events and counters go (required for counted faults)
        "fetch_delay",  # seconds to sleep in fetch_day, before the day's transaction
        "copy_pause",  # seconds to sleep halfway through the COPY stream (inside the transaction)
        "delay_dates",  # ISO dates the delays apply to (default: every day)
        "delay_attempts",  # delays only on the first N fetches of a date (0: always)
        "crash_on",  # ISO dates whose worker kills itself (SIGKILL) every time
        "crash_at",  # "fetch" or "copy": where it dies
        "transient",  # the first N fetches of each date raise a transient SourceError
        "fail_on",  # ISO dates that fail permanently
    }
)


class FaultSource(Source):
    """Demo bars with faults injected where the options say."""

    name = "fault"

    def __init__(self, **options: Any) -> None:
        if not options:
            options = json.loads(os.environ.get("BATCHSYNC_FAULTS", "{}"))
        unknown = set(options) - OPTION_NAMES
        if unknown:
            raise ValueError(f"unknown fault options: {sorted(unknown)}")
        super().__init__(**options)
        self.marker_dir = Path(options["marker_dir"]) if options.get("marker_dir") else None
        self.fetch_delay = float(options.get("fetch_delay", 0))
        self.copy_pause = float(options.get("copy_pause", 0))
        self.delay_dates = set(options.get("delay_dates", []))
        self.delay_attempts = int(options.get("delay_attempts", 0))
        self.crash_on = set(options.get("crash_on", []))
        self.crash_at = options.get("crash_at", "fetch")
        self.transient = int(options.get("transient", 0))
        self.fail_on = set(options.get("fail_on", []))

    def _event(self, name: str, day: dt.date) -> None:
        if self.marker_dir is not None:
            with (self.marker_dir / "events").open("a") as handle:
                handle.write(f"{name} {day.isoformat()} {os.getpid()} {time.time():.3f}\n")

    def _count(self, name: str, day: dt.date) -> int:
        """Bump and return a per-date counter shared by all processes (one byte per call)."""
        if self.marker_dir is None:
            return 1
        path = self.marker_dir / f"{name}-{day.isoformat()}"
        with path.open("ab") as handle:
            handle.write(b".")
        return path.stat().st_size

    def _crash(self, point: str, day: dt.date) -> None:
        if day.isoformat() in self.crash_on and self.crash_at == point:
            self._event("crash", day)
            os.kill(os.getpid(), signal.SIGKILL)

    def fetch_day(self, day: dt.date) -> CsvPayload:
        fetches = self._count("fetch", day)
        self._event("fetch", day)
        self._crash("fetch", day)
        if day.isoformat() in self.fail_on:
            raise SourceError(f"fault: {day} is refused by the source")
        if fetches <= self.transient:
            raise SourceError(f"fault: {day} timed out (fetch {fetches})", transient=True)
        delayed = (not self.delay_dates or day.isoformat() in self.delay_dates) and (
            not self.delay_attempts or fetches <= self.delay_attempts
        )
        if delayed and self.fetch_delay:
            time.sleep(self.fetch_delay)
        data = demo_day_csv(day)
        return CsvPayload(chunks=self._chunks(day, data, delayed), origin=f"fault:{day.isoformat()}")

    def _chunks(self, day: dt.date, data: bytes, delayed: bool) -> Iterator[bytes]:
        # Three parts: the loader holds one chunk back, so when the third is asked for, the
        # DELETE has run and the first third of the rows has gone to COPY.
        first = data.index(b"\n", len(data) // 3) + 1
        second = data.index(b"\n", 2 * len(data) // 3) + 1
        yield data[:first]
        yield data[first:second]
        self._event("copy", day)
        self._crash("copy", day)
        if delayed and self.copy_pause:
            time.sleep(self.copy_pause)
        yield data[second:]
