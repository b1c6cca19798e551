"""The one small interface every data source implements, and the payloads it returns."""

from __future__ import annotations

import abc
import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

# Columns of tushare's `daily` endpoint, in its order; also the CSV header sources produce.
BAR_COLUMNS: tuple[str, ...] = (
    "ts_code",
    "trade_date",
    "open",
    "high",
    "low",
    "close",
    "pre_close",
    "change",
    "pct_chg",
    "vol",
    "amount",
)


@dataclass(frozen=True)
class CsvPayload:
    """A day as CSV text with a header row, passed to COPY unchanged."""

    chunks: Iterable[bytes]
    origin: str
    path: Path | None = field(default=None)


@dataclass(frozen=True)
class RowsPayload:
    """A day as Python rows in `BAR_COLUMNS` order (for API-backed sources)."""

    rows: Iterable[Sequence[Any]]
    origin: str


DayPayload = CsvPayload | RowsPayload


class Source(abc.ABC):
    """A provider of one day of bars at a time; `fetch_day` is all the runner calls."""

    name: ClassVar[str]

    def __init__(self, **options: Any) -> None:
        self.options = options

    def validate(self) -> None:  # noqa: B027 - optional hook, most sources need nothing
        """Raise `InvalidJobRequest` when the options cannot work (checked before a job starts)."""

    @abc.abstractmethod
    def fetch_day(self, day: dt.date) -> DayPayload:
        """Return the day's bars; raise `SourceError` (transient or not) when it cannot."""
