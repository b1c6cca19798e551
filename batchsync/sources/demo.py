"""Deterministic synthetic bars for 5,500 symbols: the default source, so no data is needed."""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Mapping
from functools import lru_cache
from typing import ClassVar

from batchsync.sources.base import BAR_COLUMNS, CsvPayload, Source, SourceOption

SYMBOL_COUNT = 5500


@lru_cache(maxsize=1)
def demo_symbols() -> tuple[tuple[str, float], ...]:
    """5,500 A-share style codes in ts_code order, each with a stable base price.

    Sorted like an exchange's daily file: rows then reach the (trade_date, ts_code) primary
    key in ascending order, so PostgreSQL appends to its rightmost leaf instead of splitting
    pages in the middle (about half the index cost of an unsorted day).
    """
    codes = sorted(
        [f"{600000 + i:06d}.SH" for i in range(1800)]
        + [f"{688000 + i:06d}.SH" for i in range(700)]
        + [f"{1 + i:06d}.SZ" for i in range(1500)]
        + [f"{300001 + i:06d}.SZ" for i in range(1500)]
    )
    rng = random.Random(20251009)
    return tuple((code, round(rng.uniform(3.0, 120.0), 2)) for code in codes)


def _close_on(base: float, phase: float, ordinal: int) -> float:
    """A smooth, date-only price path, so pre_close is the close of the weekday before."""
    return round(base * (1.0 + 0.25 * math.sin(ordinal / 37.0 + phase)), 2)


def demo_day_csv(day: dt.date) -> bytes:
    """The day's bars as tushare-style CSV; identical bytes for the same date on every run."""
    rng = random.Random(day.toordinal())
    ordinal = day.toordinal()
    # pre_close is the close of the weekday before (Friday's on a Monday), so the data checks'
    # `pre_close_continuity` holds except after a holiday (docs/checks.md).
    previous = ordinal - (3 if day.weekday() == 0 else 2 if day.weekday() == 6 else 1)
    lines = [",".join(BAR_COLUMNS)]
    trade_date = day.strftime("%Y%m%d")
    for index, (code, base) in enumerate(demo_symbols()):
        phase = index * 0.61803
        close = _close_on(base, phase, ordinal)
        pre_close = _close_on(base, phase, previous)
        open_ = round(pre_close * (1.0 + rng.uniform(-0.02, 0.02)), 2)
        high = round(max(open_, close) * (1.0 + rng.uniform(0.0, 0.02)), 2)
        low = round(min(open_, close) * (1.0 - rng.uniform(0.0, 0.02)), 2)
        change = round(close - pre_close, 2)
        pct_chg = round(100.0 * change / pre_close, 4)
        vol = round(rng.uniform(1_000, 2_000_000), 2)
        amount = round(vol * close / 10.0, 3)
        lines.append(
            f"{code},{trade_date},{open_:.2f},{high:.2f},{low:.2f},{close:.2f},{pre_close:.2f},"
            f"{change:.2f},{pct_chg:.4f},{vol:.2f},{amount:.3f}"
        )
    lines.append("")
    return "\n".join(lines).encode()


class DemoSource(Source):
    """Synthetic bars computed from the date alone."""

    name = "demo"
    options_taken: ClassVar[Mapping[str, SourceOption]] = {}  # none

    def fetch_day(self, day: dt.date) -> CsvPayload:
        return CsvPayload(chunks=[demo_day_csv(day)], origin=f"demo:{day.isoformat()}")
