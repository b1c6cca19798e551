"""Demo bars after a fixed delay per day, like a remote API: for benchmarks and rehearsals.

Not registered by default; enable it with
`BATCHSYNC_EXTRA_SOURCES=latency=batchsync.sources.latency.LatencySource` (or settings).
The delay is spent in `fetch_day`, before the day's transaction, as a network call would be.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from django.utils.translation import gettext as _

from batchsync.exceptions import InvalidJobRequest
from batchsync.sources.base import CsvPayload, Source, SourceOption
from batchsync.sources.demo import demo_day_csv


class LatencySource(Source):
    """The demo source's bars, each day delivered `seconds` after it was asked for."""

    name = "latency"
    options_taken = {"seconds": SourceOption(float)}
    options_unfingerprinted = frozenset({"seconds"})  # pacing only: the same rows

    def __init__(self, seconds: float = 0.5, **options: Any) -> None:
        super().__init__(seconds=seconds, **options)
        self.seconds = seconds

    def validate(self) -> None:
        if not isinstance(self.seconds, int | float) or not 0 <= self.seconds <= 600:
            raise InvalidJobRequest("seconds", _("seconds must be a number from 0 to 600"))

    def fetch_day(self, day: dt.date) -> CsvPayload:
        time.sleep(float(self.seconds))
        return CsvPayload(chunks=[demo_day_csv(day)], origin=f"latency:{day.isoformat()}")
