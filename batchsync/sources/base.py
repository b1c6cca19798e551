"""The one small interface every data source implements, and the payloads it returns."""

from __future__ import annotations

import abc
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
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
    # The day's adjustment factors (ts_code, trade_date, adj_factor), loaded in the bars'
    # transaction into `adj_factor`; None: the source does not load factors.
    adj_factors: Sequence[Sequence[Any]] | None = field(default=None)


DayPayload = CsvPayload | RowsPayload


@dataclass(frozen=True)
class SourceOption:
    """An option a source takes: its JSON type, and whether it names a file or directory of the server.

    Path options given through the API or the admin must lie under BATCHSYNC_FILE_ROOTS.
    """

    kind: type
    is_path: bool = False

    def accepts(self, value: Any) -> bool:
        """Whether `value` has this option's type (a float option takes an integer too, no boolean does)."""
        if isinstance(value, bool):
            return self.kind is bool
        if self.kind is float:
            return isinstance(value, int | float)
        return isinstance(value, self.kind)


class Source(abc.ABC):
    """A provider of one day of bars at a time; `fetch_day` is all the runner calls."""

    name: ClassVar[str]
    # Every option the source takes, by name: anything else is refused before a job starts.
    # None (undeclared, e.g. an older custom source): options are passed on unchecked, and a
    # source that reads files of the server must declare its path options to be confined.
    options_taken: ClassVar[Mapping[str, SourceOption] | None] = None
    # Options left out of the day's provenance fingerprint: secrets, and options that do not
    # change the rows (pacing, timeouts). Names like token/password/secret are always left out.
    options_unfingerprinted: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, **options: Any) -> None:
        self.options = options

    def validate(self) -> None:  # noqa: B027 - optional hook, most sources need nothing
        """Raise `InvalidJobRequest` when the options cannot work (checked before a job starts)."""

    def close(self) -> None:  # noqa: B027 - optional hook, most sources hold nothing
        """Release what the source keeps between days (a connection); called at the end of a run."""

    @abc.abstractmethod
    def fetch_day(self, day: dt.date) -> DayPayload:
        """Return the day's bars; raise `SourceError` (transient or not) when it cannot."""


class FileSource(Source):
    """A source that reads files of the server under its `path` option (csv, parquet).

    The path is declared `is_path`, so jobs started through the API or the admin keep it under
    BATCHSYNC_FILE_ROOTS.
    """

    options_taken = {"path": SourceOption(str, is_path=True)}

    def __init__(self, path: str | Path | None = None, **options: Any) -> None:
        super().__init__(path=str(path) if path else "", **options)
        self.path = Path(path) if path else None
