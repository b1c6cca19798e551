"""Readable load errors: PostgreSQL's COPY errors and the table's constraints as `file: line, column: reason`.

What `loader` raises when COPY refuses a row: the line and column from the error's context,
the constraint's reason in words, and, when a row's date or code needs a line number that
COPY does not give, the CSV read again (streamed) to find it.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import decimal
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import psycopg
from psycopg import errors as pg_errors

from batchsync.exceptions import LoadError
from batchsync.models import DailyBar
from batchsync.sources.base import CsvPayload, DayPayload

_CONTEXT = re.compile(r"COPY \w+, line (?P<line>\d+)(?:, column (?P<column>\w+))?")
_COLUMN_IN_MESSAGE = re.compile(r'column "(?P<column>\w+)"')
_REREAD_BYTES = 1 << 20

# Readable reasons for the table's constraints (names from batchsync.models.DailyBar); the
# per-column `daily_bar_<column>_valid` ones are explained by `bar_value_reason`.
_CONSTRAINT_REASONS: dict[str, tuple[str, str]] = {
    "daily_bar_low_lte_high": ("low", "low is greater than high"),
    "daily_bar_pkey": ("ts_code", "the same ts_code appears twice for the day"),
}
_VALUE_CONSTRAINT = re.compile(r"daily_bar_(?P<column>\w+)_valid")
_FAILING_ROW = re.compile(r"Failing row contains \((?P<values>.*)\)\.?$", re.DOTALL)
_TABLE_COLUMNS = [field.column for field in DailyBar._meta.concrete_fields]
_POSITIVE_COLUMNS = frozenset({"open", "high", "low", "close", "pre_close"})
_NONNEGATIVE_COLUMNS = frozenset({"vol", "amount"})


def as_date(value: Any) -> dt.date | None:
    """A row's trade_date as a date (`date`, `YYYYMMDD` or `YYYY-MM-DD`), or None if it is not one."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        return None


def load_error(error: psycopg.Error, origin: str, *, is_csv: bool) -> LoadError:
    """Turn PostgreSQL's COPY error into `origin: line N, column C: reason (detail)`."""
    diag = error.diag
    reason = (diag.message_primary or str(error)).strip()
    detail = (diag.message_detail or "").strip()
    match = _CONTEXT.search(diag.context or "")
    line = int(match["line"]) if match else None
    column = (match["column"] or "") if match else ""
    if not column:
        named = _COLUMN_IN_MESSAGE.search(reason)
        column = diag.column_name or (named["column"] if named else "")
    constraint = diag.constraint_name or ""
    value_constraint = _VALUE_CONSTRAINT.fullmatch(constraint)
    if value_constraint:
        column = value_constraint["column"]
        reason = bar_value_reason(column, _failing_value(detail, column))
        detail = ""
    elif constraint in _CONSTRAINT_REASONS:
        constraint_column, readable = _CONSTRAINT_REASONS[constraint]
        column = column or constraint_column
        reason = f"{readable} ({reason})"
    elif isinstance(error, pg_errors.NotNullViolation):
        reason = f"{column or 'a required column'} is empty ({reason})"
    elif isinstance(error, pg_errors.CharacterNotInRepertoire):
        reason = f"not UTF-8 text ({reason})"
    if isinstance(error, pg_errors.BadCopyFileFormat) and (
        "newline" in reason or "carriage return" in reason
    ):
        reason += "; use the same line ending (LF or CRLF) on every line"
    where = origin
    if line is not None:
        # With HEADER the header is line 1, so COPY's numbers are the file's line numbers.
        where += f": line {line}" if is_csv else f": row {line}"
    if column:
        where += f", column {column}"
    message = f"{where}: {reason}" + (f" [{detail}]" if detail else "")
    return LoadError(message, file=origin, line=line, column=column)


def _failing_value(detail: str, column: str) -> str | None:
    """The value of `column` in PostgreSQL's `Failing row contains (...)` detail, if it is there."""
    match = _FAILING_ROW.search(detail)
    if not match or column not in _TABLE_COLUMNS:
        return None
    values = match["values"].split(", ")
    if len(values) != len(_TABLE_COLUMNS):
        return None
    return values[_TABLE_COLUMNS.index(column)]


def bar_value_reason(column: str, value: str | None) -> str:
    """Why `daily_bar_<column>_valid` refused `value`: NaN, its sign, its decimals or its size."""
    field = DailyBar._meta.get_field(column)
    scale = getattr(field, "decimal_places", 0)
    positive = column in _POSITIVE_COLUMNS
    bound = " greater than 0" if positive else " of 0 or more" if column in _NONNEGATIVE_COLUMNS else ""
    rule = f"{column} must be a number{bound} with at most {scale} decimal places"
    if value is None:
        return rule
    try:
        number = decimal.Decimal(value)
    except decimal.InvalidOperation:
        return f"{rule}, not {value}"
    if number.is_nan():
        return f"{column} is NaN (not a number); {rule}"
    if positive and number <= 0:
        return f"{column} is {value}; it must be greater than 0"
    if column in _NONNEGATIVE_COLUMNS and number < 0:
        return f"{column} is {value}; it must not be negative"
    if -number.normalize(decimal.Context(prec=200)).as_tuple().exponent > scale:  # type: ignore[operator]
        return (
            f"{column} is {value}: more than {scale} decimal places, which the column would round; "
            "refused rather than rounded"
        )
    return f"{column} is {value}: out of range; {rule}"


def wrong_date_error(payload: DayPayload, day: dt.date, count: int) -> LoadError:
    """Name the first row whose trade_date is not `day` (reading the CSV again when possible)."""
    line = _first_wrong_date_line(payload, day) if isinstance(payload, CsvPayload) else None
    where = payload.origin + (f": line {line}, column trade_date" if line else "")
    return LoadError(
        f"{where}: {count} row(s) have a trade_date other than {day.isoformat()}; "
        "a file holds exactly one trading day",
        file=payload.origin,
        line=line,
        column="trade_date",
    )


def _first_wrong_date_line(payload: CsvPayload, day: dt.date) -> int | None:
    """The line of the first row whose trade_date is not `day`, from the CSV read again."""
    return _reread(payload, lambda lines: _first_line_not_on(lines, day))


def csv_line_of(payload: DayPayload, ts_code: str) -> int | None:
    """The CSV line of `ts_code`'s row, read again (only for an error message), or None."""
    if not isinstance(payload, CsvPayload):
        return None
    return _reread(payload, lambda lines: _first_line_where(lines, "ts_code", lambda code: code == ts_code))


def _reread(payload: CsvPayload, find: Callable[[Iterator[str]], int | None]) -> int | None:
    """Read the CSV once more, streamed from its file or its chunks held in memory, to find a line.

    Never the whole file at once: a big file's error must not cost its size in memory.
    """
    if payload.path is not None:
        try:
            with payload.path.open("rb") as handle:
                return find(_text_lines(iter(lambda: handle.read(_REREAD_BYTES), b"")))
        except OSError:
            return None  # gone or unreadable since the COPY: the message goes without a line
    if isinstance(payload.chunks, Sequence):
        return find(_text_lines(payload.chunks))
    return None


def _text_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """The chunks decoded as UTF-8, one line (with its newline) at a time."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="replace")
    partial = ""
    for chunk in chunks:
        lines = (partial + decoder.decode(chunk)).split("\n")
        partial = lines.pop()
        for line in lines:
            yield line + "\n"
    partial += decoder.decode(b"", final=True)
    if partial:
        yield partial


def _first_line_not_on(lines: Iterator[str], day: dt.date) -> int | None:
    return _first_line_where(lines, "trade_date", lambda value: as_date(value) != day)


def _first_line_where(lines: Iterator[str], column: str, matches: Callable[[str], bool]) -> int | None:
    """The line number of the first row whose `column` value `matches`, or None."""
    reader = csv.reader(lines)
    try:
        header = [name.strip().lower() for name in next(reader, [])]
        if column not in header:
            return None
        index = header.index(column)
        for row in reader:
            if len(row) > index and matches(row[index]):
                return reader.line_num
    except csv.Error:
        return None
    return None
