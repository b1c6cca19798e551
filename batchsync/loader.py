"""COPY one day of bars into `daily_bar`, replacing what the day had. Knows nothing of jobs.

The caller owns the transaction: `replace_day` deletes the day's rows and COPYs the new ones
on the given cursor, so if anything fails the caller's rollback restores the old rows.

CSV payloads go to COPY byte for byte: Python reads the header (to name the columns and
reject a bad one) and counts newlines in C (`bytes.count`), nothing per row. PostgreSQL parses
and checks every value; its error context gives the line and column, which `LoadError` keeps.
The COPY filters on the day (`WHERE trade_date = day`), so a row of another date can never
touch another day's bars; the newline count then proves no row was dropped by that filter.
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

from batchsync import sql
from batchsync.adj_factors import adj_factors_replace
from batchsync.exceptions import LoadError
from batchsync.models import DailyBar
from batchsync.sources.base import BAR_COLUMNS, CsvPayload, DayPayload, RowsPayload

REQUIRED_COLUMNS = frozenset({"ts_code", "trade_date", "open", "high", "low", "close", "vol", "amount"})
TRADE_DATE_INDEX = BAR_COLUMNS.index("trade_date")
_CONTEXT = re.compile(r"COPY \w+, line (?P<line>\d+)(?:, column (?P<column>\w+))?")
_COLUMN_IN_MESSAGE = re.compile(r'column "(?P<column>\w+)"')
_NEWLINES = b"\r\n"
_REREAD_BYTES = 1 << 20
# Leading bytes of the compressed formats a data file is most likely to arrive in.
_COMPRESSED_MAGIC: dict[bytes, str] = {
    b"\x1f\x8b": "gzip",
    b"PK\x03\x04": "zip",
    b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz",
    b"\x28\xb5\x2f\xfd": "zstd",
    b"7z\xbc\xaf\x27\x1c": "7z",
}

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


def replace_day(cursor: Any, day: dt.date, payload: DayPayload) -> int:
    """Replace `day`'s bars with `payload` on `cursor`'s transaction; return the rows loaded.

    `cursor` is a psycopg 3 cursor (or Django's wrapper of one). Raises `LoadError` naming the
    origin, line, column and reason of the first bad row; the caller must then roll back, which
    puts the day's old rows back.
    """
    cursor.execute(sql.BARS_DELETE_DAY, [day])
    is_csv = isinstance(payload, CsvPayload)
    try:
        if isinstance(payload, CsvPayload):
            copied, in_payload = _copy_csv(cursor, day, payload)
        else:
            copied, in_payload = _copy_rows(cursor, day, payload)
    except (psycopg.DataError, psycopg.IntegrityError, psycopg.ProgrammingError) as error:
        # Bad data (SQLSTATE classes 22, 23, 42). Connection errors propagate: callers retry those.
        raise _load_error(error, payload.origin, is_csv=is_csv) from error
    if copied != in_payload:
        raise _wrong_date_error(payload, day, in_payload - copied)
    if copied == 0:
        where = f"{payload.origin}: line 2" if is_csv else payload.origin
        raise LoadError(
            f"{where}: no rows for {day.isoformat()} (only a header); a trading day needs its bars",
            file=payload.origin,
            line=2 if is_csv else None,
        )
    if isinstance(payload, RowsPayload) and payload.adj_factors is not None:
        adj_factors_replace(cursor, day, payload.adj_factors, payload.origin)
    return copied


def _copy_csv(cursor: Any, day: dt.date, payload: CsvPayload) -> tuple[int, int]:
    """Stream the CSV bytes to COPY; return (rows loaded, data lines sent).

    Trailing blank lines are dropped (an editor's extra newline is not a bad row): the last
    chunk is held back until the next non-blank one arrives, then trimmed at the end.
    """
    chunks = iter(payload.chunks)
    try:
        return _copy_csv_chunks(cursor, day, payload, chunks)
    finally:
        # A stream over a file or a connection (the postgres source) is released now, not at GC.
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


def _copy_csv_chunks(
    cursor: Any, day: dt.date, payload: CsvPayload, chunks: Iterator[bytes]
) -> tuple[int, int]:
    """`_copy_csv`'s work on the opened stream."""
    pending, rest = _split_header(chunks, payload.origin)
    columns = _header_columns(pending, payload.origin)
    newlines = 0
    with cursor.copy(sql.bars_copy(columns, day, "(FORMAT csv, HEADER true)")) as copy:
        for chunk in rest:
            if not chunk.strip(_NEWLINES):
                pending += chunk
                continue
            copy.write(pending)
            newlines += pending.count(b"\n")
            pending = chunk
        tail = pending.rstrip(_NEWLINES)
        copy.write(tail)
        newlines += tail.count(b"\n")
    # The header ends with the first newline; each further one ends a row and starts the next.
    return int(cursor.rowcount), newlines


def _copy_rows(cursor: Any, day: dt.date, payload: RowsPayload) -> tuple[int, int]:
    """Write Python rows (in `BAR_COLUMNS` order) with COPY; return (rows loaded, rows sent)."""
    sent = 0
    with cursor.copy(sql.bars_copy(BAR_COLUMNS, day, "")) as copy:
        for row in payload.rows:
            sent += 1
            if len(row) != len(BAR_COLUMNS):
                raise LoadError(
                    f"{payload.origin}: row {sent}: {len(row)} values, expected {len(BAR_COLUMNS)} "
                    f"({','.join(BAR_COLUMNS)})",
                    file=payload.origin,
                    line=sent,
                )
            if _as_date(row[TRADE_DATE_INDEX]) != day:
                raise LoadError(
                    f"{payload.origin}: row {sent}, column trade_date: {row[TRADE_DATE_INDEX]!s} "
                    f"is not the day being loaded ({day.isoformat()})",
                    file=payload.origin,
                    line=sent,
                    column="trade_date",
                )
            copy.write_row(row)
    return int(cursor.rowcount), sent


def _as_date(value: Any) -> dt.date | None:
    """A row's trade_date as a date (`date`, `YYYYMMDD` or `YYYY-MM-DD`), or None if it is not one."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        return None


def _split_header(chunks: Iterator[bytes], origin: str) -> tuple[bytes, Iterator[bytes]]:
    """Read chunks until the header line is complete; return the bytes read and the rest."""
    head = b""
    for chunk in chunks:
        head += chunk
        if b"\n" in head:
            break
    _reject_binary(head, origin)
    if b"\n" in head:
        return head, chunks
    if not head.strip():
        raise LoadError(
            f"{origin}: line 1: the file is empty, expected the header " + ",".join(BAR_COLUMNS),
            file=origin,
            line=1,
        )
    if b"\r" in head.rstrip(_NEWLINES):
        raise LoadError(
            f"{origin}: line 1: lines end with a bare carriage return; use LF or CRLF line endings",
            file=origin,
            line=1,
        )
    return head, chunks


def _reject_binary(head: bytes, origin: str) -> None:
    """`LoadError` when the file is compressed or its first line is not UTF-8 text.

    Checked before any CSV parsing, so a gzip file or random bytes get a reason a person can
    act on instead of the csv module's or COPY's complaint about some byte.
    """
    for magic, kind in _COMPRESSED_MAGIC.items():
        if head.startswith(magic):
            raise LoadError(
                f"{origin}: compressed file ({kind}), not CSV text; decompress it first",
                file=origin,
            )
    first_line = head.split(b"\n", 1)[0]
    nul = first_line.find(b"\x00")
    if nul >= 0:
        raise LoadError(
            f"{origin}: line 1: not UTF-8 text (binary data: a NUL byte at offset {nul})",
            file=origin,
            line=1,
        )
    try:
        first_line.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise LoadError(
            f"{origin}: line 1: not UTF-8 text (byte 0x{first_line[error.start]:02x} at offset "
            f"{error.start}); save the file as UTF-8",
            file=origin,
            line=1,
        ) from None


def _header_columns(head: bytes, origin: str) -> list[str]:
    """The columns the header names, in its order; `LoadError` when it cannot be our data."""
    expected = ",".join(BAR_COLUMNS)
    line = head.split(b"\n", 1)[0].decode("utf-8-sig", errors="replace").strip()
    if not line:
        raise LoadError(
            f"{origin}: line 1: the first line is blank, expected the header {expected}",
            file=origin,
            line=1,
        )
    try:
        names = [name.strip() for name in next(csv.reader([line]))]
    except csv.Error as error:
        raise LoadError(f"{origin}: line 1: cannot read the header ({error})", file=origin, line=1) from None
    columns = [name.lower() for name in names]
    if not set(columns) & set(BAR_COLUMNS):
        raise LoadError(
            f"{origin}: line 1: no header (the line names none of the columns); expected {expected}",
            file=origin,
            line=1,
        )
    unknown = [name for name in names if name.lower() not in BAR_COLUMNS]
    missing = [name for name in BAR_COLUMNS if name in REQUIRED_COLUMNS and name not in columns]
    repeated = sorted({name for name in columns if columns.count(name) > 1})
    if unknown or missing or repeated:
        problems = []
        if unknown:
            problems.append("unknown column(s) " + ", ".join(unknown))
        if missing:
            problems.append("missing column(s) " + ", ".join(missing))
        if repeated:
            problems.append("repeated column(s) " + ", ".join(repeated))
        raise LoadError(
            f"{origin}: line 1: bad header ({'; '.join(problems)}); expected {expected}",
            file=origin,
            line=1,
        )
    return columns


def _load_error(error: psycopg.Error, origin: str, *, is_csv: bool) -> LoadError:
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


def _wrong_date_error(payload: DayPayload, day: dt.date, count: int) -> LoadError:
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
    return _first_line_where(lines, "trade_date", lambda value: _as_date(value) != day)


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
