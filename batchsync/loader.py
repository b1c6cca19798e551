"""COPY one day of bars into `daily_bar`, replacing what the day had. Knows nothing of jobs.

The caller owns the transaction: `replace_day` deletes the day's rows and COPYs the new ones
on the given cursor, so if anything fails the caller's rollback restores the old rows.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterable, Iterator
from typing import Any

import psycopg
from psycopg import sql

from batchsync.exceptions import LoadError
from batchsync.sources.base import BAR_COLUMNS, CsvPayload, DayPayload, RowsPayload

TABLE = "daily_bar"
REQUIRED_COLUMNS = frozenset({"ts_code", "trade_date", "open", "high", "low", "close", "vol", "amount"})
_CONTEXT = re.compile(r"COPY \w+, line (?P<line>\d+)(?:, column (?P<column>\w+))?")


def replace_day(cursor: Any, day: dt.date, payload: DayPayload) -> int:
    """Replace `day`'s bars with `payload` on `cursor`'s transaction; return the rows loaded.

    `cursor` is a psycopg 3 cursor (or Django's wrapper of one). Raises `LoadError` naming the
    origin, line and column of the first bad row; the caller must then roll back.
    """
    cursor.execute(f"DELETE FROM {TABLE} WHERE trade_date = %s", [day])
    try:
        if isinstance(payload, CsvPayload):
            copied = _copy_csv(cursor, payload)
        else:
            copied = _copy_rows(cursor, payload)
    except (psycopg.DataError, psycopg.IntegrityError, psycopg.ProgrammingError) as error:
        # Bad data (class 22/23/42). Connection errors propagate: the caller retries those.
        raise _load_error(error, payload.origin, is_csv=isinstance(payload, CsvPayload)) from error
    cursor.execute(f"SELECT count(*) FROM {TABLE} WHERE trade_date = %s", [day])
    (for_day,) = cursor.fetchone()
    if for_day != copied:
        raise _wrong_date_error(payload, day, copied - for_day)
    return copied


def _copy_csv(cursor: Any, payload: CsvPayload) -> int:
    """Stream the CSV bytes straight to COPY; only the header is parsed here."""
    chunks = iter(payload.chunks)
    first, rest = _split_header(chunks, payload.origin)
    columns = _header_columns(first, payload.origin)
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv, HEADER true)").format(
        sql.Identifier(TABLE), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with cursor.copy(statement) as copy:
        copy.write(first)
        for chunk in rest:
            copy.write(chunk)
    return int(cursor.rowcount)


def _copy_rows(cursor: Any, payload: RowsPayload) -> int:
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(TABLE), sql.SQL(", ").join(map(sql.Identifier, BAR_COLUMNS))
    )
    with cursor.copy(statement) as copy:
        for row in payload.rows:
            if len(row) != len(BAR_COLUMNS):
                raise LoadError(
                    f"{payload.origin}: row has {len(row)} values, expected {len(BAR_COLUMNS)}",
                    file=payload.origin,
                )
            copy.write_row(row)
    return int(cursor.rowcount)


def _split_header(chunks: Iterator[bytes], origin: str) -> tuple[bytes, Iterator[bytes]]:
    """Read chunks until the first line is complete; return the bytes read and the rest."""
    head = b""
    for chunk in chunks:
        head += chunk
        if b"\n" in head:
            return head, chunks
    if not head.strip():
        raise LoadError(f"{origin}: line 1: file is empty, expected a header row", file=origin, line=1)
    return head, chunks


def _header_columns(head: bytes, origin: str) -> list[str]:
    line = head.split(b"\n", 1)[0].decode("utf-8-sig", errors="replace").strip()
    columns = [name.strip().lower() for name in next(csv.reader([line]))]
    unknown = [name for name in columns if name not in BAR_COLUMNS]
    missing = sorted(REQUIRED_COLUMNS - set(columns))
    if unknown or missing or len(set(columns)) != len(columns):
        problems = []
        if unknown:
            problems.append("unknown columns " + ", ".join(unknown))
        if missing:
            problems.append("missing columns " + ", ".join(missing))
        if len(set(columns)) != len(columns):
            problems.append("repeated columns")
        raise LoadError(
            f"{origin}: line 1: bad header ({'; '.join(problems)}); expected " + ",".join(BAR_COLUMNS),
            file=origin,
            line=1,
        )
    return columns


def _load_error(error: psycopg.Error, origin: str, *, is_csv: bool) -> LoadError:
    """Turn PostgreSQL's COPY error into `origin: line N, column C: reason`."""
    reason = (error.diag.message_primary or str(error)).strip()
    match = _CONTEXT.search(error.diag.context or "")
    line = int(match["line"]) if match else None
    column = (match["column"] or "") if match else ""
    where = origin
    if line is not None:
        # COPY counts the CSV header as line 1, so its numbers are the file's line numbers.
        where += f": line {line}" if is_csv else f": row {line}"
    if column:
        where += f", column {column}"
    detail = (error.diag.message_detail or "").strip()
    message = f"{where}: {reason}" + (f" ({detail})" if detail else "")
    return LoadError(message, file=origin, line=line, column=column)


def _wrong_date_error(payload: DayPayload, day: dt.date, count: int) -> LoadError:
    """Name the first row whose trade_date is not `day` (re-reading the file when there is one)."""
    line = None
    if isinstance(payload, CsvPayload) and payload.path is not None:
        line = _first_line_not_on(payload.path.read_text(encoding="utf-8-sig"), day)
    where = payload.origin + (f": line {line}, column trade_date" if line else "")
    return LoadError(
        f"{where}: {count} row(s) have a trade_date other than {day.isoformat()}",
        file=payload.origin,
        line=line,
        column="trade_date",
    )


def _first_line_not_on(text: str, day: dt.date) -> int | None:
    reader = csv.reader(io.StringIO(text))
    header = [name.strip().lower() for name in next(reader, [])]
    if "trade_date" not in header:
        return None
    index = header.index("trade_date")
    wanted = {day.strftime("%Y%m%d"), day.isoformat()}
    for number, row in enumerate(reader, start=2):
        if len(row) > index and row[index].strip() not in wanted:
            return number
    return None


def csv_lines(rows: Iterable[Iterable[Any]]) -> bytes:
    """Format rows as CSV with the standard header (used by tests and benchmarks)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(BAR_COLUMNS)
    writer.writerows(rows)
    return out.getvalue().encode()
