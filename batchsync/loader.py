"""COPY one day of bars into `daily_bar`, replacing what the day had. Knows nothing of jobs.

The caller owns the transaction: `replace_day` deletes the day's rows and COPYs the new ones
on the given cursor, so if anything fails the caller's rollback restores the old rows.

CSV payloads go to COPY byte for byte: Python reads the header (to name the columns and
reject a bad one) and counts newlines in C (`bytes.count`), nothing per row. PostgreSQL parses
and checks every value; its error context gives the line and column, which `LoadError` keeps (`load_errors`).
The COPY filters on the day (`WHERE trade_date = day`), so a row of another date can never
touch another day's bars; the newline count then proves no row was dropped by that filter.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterator
from typing import Any

import psycopg

from batchsync import sql
from batchsync.adj_factors import adj_factors_replace
from batchsync.exceptions import LoadError
from batchsync.load_errors import as_date, load_error, wrong_date_error
from batchsync.load_errors import csv_line_of as csv_line_of  # re-exported: runner names it here
from batchsync.sources.base import BAR_COLUMNS, CsvPayload, DayPayload, RowsPayload

REQUIRED_COLUMNS = frozenset({"ts_code", "trade_date", "open", "high", "low", "close", "vol", "amount"})
TRADE_DATE_INDEX = BAR_COLUMNS.index("trade_date")
_NEWLINES = b"\r\n"
# Leading bytes of the compressed formats a data file is most likely to arrive in.
_COMPRESSED_MAGIC: dict[bytes, str] = {
    b"\x1f\x8b": "gzip",
    b"PK\x03\x04": "zip",
    b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz",
    b"\x28\xb5\x2f\xfd": "zstd",
    b"7z\xbc\xaf\x27\x1c": "7z",
}


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
        raise load_error(error, payload.origin, is_csv=is_csv) from error
    if copied != in_payload:
        raise wrong_date_error(payload, day, in_payload - copied)
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
            if as_date(row[TRADE_DATE_INDEX]) != day:
                raise LoadError(
                    f"{payload.origin}: row {sent}, column trade_date: {row[TRADE_DATE_INDEX]!s} "
                    f"is not the day being loaded ({day.isoformat()})",
                    file=payload.origin,
                    line=sent,
                    column="trade_date",
                )
            copy.write_row(row)
    return int(cursor.rowcount), sent


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
