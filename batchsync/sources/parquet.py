"""Parquet bars: one file per day, a hive-partitioned dataset (`trade_date=YYYYMMDD/`), or one big file.

pyarrow is imported inside the methods that read: it costs about 0.4 s to import, which the
command must not pay for the other sources. A day is read with its `trade_date` filter pushed
down to pyarrow.dataset (only the day's partitions and row groups are read) and written as CSV
in `BAR_COLUMNS` order, so it reaches the loader's COPY path like a csv file: PostgreSQL parses
the same text and the day gets the same rows and the same checksum as the csv source's load.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from pathlib import Path
from typing import TYPE_CHECKING

from django.utils.translation import gettext as _

from batchsync.exceptions import InvalidJobRequest, SourceError
from batchsync.loader import REQUIRED_COLUMNS
from batchsync.sources.base import BAR_COLUMNS, CsvPayload, FileSource

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as pads

NUMERIC_COLUMNS = frozenset(BAR_COLUMNS) - {"ts_code", "trade_date"}
HIVE_PREFIX = "trade_date="
_DAY_FILE = re.compile(r"^(\d{4}-\d{2}-\d{2}|\d{8})\.parquet$")


def day_file_names(day: dt.date) -> tuple[str, str]:
    """The two accepted names of `day`'s file: `YYYY-MM-DD.parquet` and `YYYYMMDD.parquet`."""
    return f"{day.isoformat()}.parquet", f"{day.strftime('%Y%m%d')}.parquet"


class ParquetSource(FileSource):
    """Reads a day of bars from Parquet at `path` (a directory or one file)."""

    name = "parquet"

    def validate(self) -> None:
        if self.path is None:
            raise InvalidJobRequest(
                "path", _("The parquet source needs a directory or file path (--path DIR_OR_FILE)")
            )
        try:
            found = self.path.exists()
        except OSError as error:
            raise InvalidJobRequest(
                "path", _("Unusable path: %(reason)s") % {"reason": error.strerror or error}
            ) from None
        if not found:
            raise InvalidJobRequest("path", _("Not found: %(path)s") % {"path": self.path})

    def fetch_day(self, day: dt.date) -> CsvPayload:
        self.validate()
        assert self.path is not None
        if self.path.is_file():
            return _day_csv(self.path, day, filtered=True)
        day_file = self._day_file(day)
        if day_file is not None:
            # One file per day: read whole, so a row of another date fails the day in the loader.
            return _day_csv(day_file, day, filtered=False)
        entries = list(self.path.iterdir())
        if any(entry.is_dir() and entry.name.startswith(HIVE_PREFIX) for entry in entries):
            return _day_csv(self.path, day, filtered=True, hive=True)
        if any(_DAY_FILE.match(entry.name) for entry in entries) or not any(
            entry.suffix == ".parquet" for entry in entries
        ):
            iso_name, compact_name = day_file_names(day)
            expected = self.path / iso_name
            raise SourceError(
                _("missing file: %(file)s (or %(alt)s) for trading day %(day)s")
                % {"file": expected, "alt": compact_name, "day": day.isoformat()},
                file=str(expected),
            )
        return _day_csv(self.path, day, filtered=True)

    def _day_file(self, day: dt.date) -> Path | None:
        """`day`'s file in either name form; both present is an error (they may differ)."""
        assert self.path is not None
        found = [self.path / name for name in day_file_names(day) if (self.path / name).is_file()]
        if len(found) > 1:
            raise SourceError(
                _("two files for %(day)s: %(first)s and %(second)s; keep only one")
                % {"day": day.isoformat(), "first": found[0], "second": found[1].name},
                file=str(found[0]),
            )
        return found[0] if found else None


def _day_csv(path: Path, day: dt.date, *, filtered: bool, hive: bool = False) -> CsvPayload:
    """Read `day`'s rows at `path` (filter pushed down when `filtered`) as a CSV payload."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.dataset as pads

    origin = str(path)
    try:
        partitioning = (
            pads.partitioning(pa.schema([("trade_date", pa.string())]), flavor="hive") if hive else None
        )
        dataset = pads.dataset(path, format="parquet", partitioning=partitioning)
        columns = _mapped_columns(dataset.schema, origin)
        trade_date = columns["trade_date"]
        expression = _day_filter(dataset.schema.field(trade_date).type, trade_date, day, origin)
        table = dataset.to_table(
            columns={name: pads.field(source) for name, source in columns.items()},
            filter=expression if filtered else None,
        )
        if filtered and table.num_rows == 0:
            # Not an empty day to load: the day is missing (no partition, no row of that date).
            raise SourceError(
                _("%(file)s: no rows for trading day %(day)s") % {"file": origin, "day": day.isoformat()},
                file=origin,
            )
        buffer = io.BytesIO()
        pacsv.write_csv(table, buffer)
    except (pa.ArrowException, OSError) as error:
        raise SourceError(
            _("%(file)s: cannot read as Parquet: %(reason)s") % {"file": origin, "reason": error},
            file=origin,
        ) from error
    return CsvPayload(chunks=[buffer.getvalue()], origin=origin)


def _mapped_columns(schema: pa.Schema, origin: str) -> dict[str, str]:
    """Our column -> the file's column (any letter case), in `BAR_COLUMNS` order; checks types."""
    import pyarrow.types as patypes

    by_lower: dict[str, str] = {}
    for name in schema.names:
        by_lower.setdefault(name.lower(), name)
    missing = [name for name in BAR_COLUMNS if name in REQUIRED_COLUMNS and name not in by_lower]
    if missing:
        raise SourceError(
            _("%(file)s: missing column(s) %(columns)s; expected %(expected)s")
            % {"file": origin, "columns": ", ".join(missing), "expected": ",".join(BAR_COLUMNS)},
            file=origin,
        )
    columns = {name: by_lower[name] for name in BAR_COLUMNS if name in by_lower}
    for name, source in columns.items():
        kind = schema.field(source).type
        if name in NUMERIC_COLUMNS:
            fits = patypes.is_integer(kind) or patypes.is_floating(kind) or patypes.is_decimal(kind)
            expected = _("a number (integer, float or decimal)")
        elif name == "ts_code":
            fits = patypes.is_string(kind) or patypes.is_large_string(kind)
            expected = _("a string")
        else:
            fits = True  # trade_date: its type is checked when the day's filter is built
            expected = ""
        if not fits:
            raise SourceError(
                _("%(file)s: column %(column)s has type %(type)s, expected %(expected)s")
                % {"file": origin, "column": source, "type": kind, "expected": expected},
                file=origin,
            )
    return columns


def _day_filter(kind: pa.DataType, name: str, day: dt.date, origin: str) -> pads.Expression:
    """The expression selecting `day` in the trade_date column `name` of type `kind`."""
    import pyarrow as pa
    import pyarrow.dataset as pads
    import pyarrow.types as patypes

    column = pads.field(name)
    compact = day.strftime("%Y%m%d")
    if patypes.is_string(kind) or patypes.is_large_string(kind):
        return column.isin([compact, day.isoformat()])
    if patypes.is_integer(kind):
        return column == pa.scalar(int(compact), type=kind)
    if patypes.is_date(kind):
        return column == pa.scalar(day, type=kind)
    if patypes.is_timestamp(kind):
        start = dt.datetime.combine(day, dt.time())
        return (column >= pa.scalar(start, type=kind)) & (
            column < pa.scalar(start + dt.timedelta(days=1), type=kind)
        )
    raise SourceError(
        _("%(file)s: column %(column)s has type %(type)s, expected a date, a string or an integer YYYYMMDD")
        % {"file": origin, "column": name, "type": kind},
        file=origin,
    )
