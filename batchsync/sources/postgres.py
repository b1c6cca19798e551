"""Another PostgreSQL server's table or query, copied a day at a time straight into `daily_bar`.

The day is never held in Python: the payload's chunks are read from the upstream's
`COPY (SELECT ...) TO STDOUT (FORMAT csv, HEADER true)` while the loader writes them to our
`COPY daily_bar FROM STDIN`, in the day's transaction, so an upstream failure mid-stream rolls
the day back. The upstream session opens when the loader first reads (one per worker thread, autocommit,
kept for the next day) and is closed when a day fails or is abandoned mid-COPY.

Passwords never enter a job: a `source_url` carrying one is refused (command, API and admin
alike); libpq takes it from PGPASSWORD, ~/.pgpass (PGPASSFILE) or a pg_service.conf service.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
from django.utils.translation import gettext as _
from psycopg import errors as pg_errors
from psycopg import pq
from psycopg import sql as pgsql
from psycopg.conninfo import conninfo_to_dict

from batchsync import sql
from batchsync.exceptions import InvalidJobRequest, SourceError
from batchsync.loader import REQUIRED_COLUMNS
from batchsync.sources.base import BAR_COLUMNS, CsvPayload, Source, SourceOption

TRADE_DATE_PARAMETER = "%(trade_date)s"
CHUNK_BYTES = 1 << 16  # upstream COPY rows gathered into chunks of about 64 KiB
CONNECT_TIMEOUT_SECONDS = 10
_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$")
_MAPPING_ITEM = re.compile(r"^\s*(?P<ours>\w+)\s*=\s*(?P<theirs>[^=,]+?)\s*$")


def upstream_label(source_url: str) -> str:
    """`postgres://user@host:port/dbname` of a connection string, never with its password."""
    try:
        parts = conninfo_to_dict(source_url)
    except psycopg.ProgrammingError:
        return "postgres://(unreadable connection string)"
    if "service" in parts and "host" not in parts:
        return f"postgres service {parts['service']}"
    user = f"{parts['user']}@" if parts.get("user") else ""
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"postgres://{user}{parts.get('host', '')}{port}/{parts.get('dbname', '')}"


def upstream_has_password(source_url: str) -> bool:
    """Whether a connection string carries a password (unreadable ones are treated as if they did)."""
    try:
        return "password" in conninfo_to_dict(source_url)
    except psycopg.ProgrammingError:
        return True


def column_mapping_parse(text: str) -> dict[str, str]:
    """`ours=theirs,...` as {our column: upstream column}; `ValueError` saying what is wrong."""
    mapping: dict[str, str] = {}
    for item in filter(str.strip, text.split(",")):
        match = _MAPPING_ITEM.match(item)
        if match is None:
            raise ValueError(_("%(item)s is not ours=theirs") % {"item": item.strip()[:60]})
        ours = match["ours"].lower()
        if ours not in BAR_COLUMNS:
            raise ValueError(
                _("%(column)s is not a daily_bar column (%(columns)s)")
                % {"column": ours[:60], "columns": ",".join(BAR_COLUMNS)}
            )
        if ours in mapping:
            raise ValueError(_("%(column)s is mapped twice") % {"column": ours})
        mapping[ours] = match["theirs"]
    return mapping


def _copy_out_chunks(upstream: psycopg.Connection[Any], statement: bytes) -> Iterator[bytes]:
    """Run a `COPY ... TO STDOUT` on libpq directly; its rows joined into ~64 KiB chunks.

    libpq hands over one row per call: psycopg's `Copy` costs about 4 us of Python per row
    (half the day's time, docs/benchmarks.md), a blocking `get_copy_data` a tenth of that.
    """
    pgconn = upstream.pgconn
    pgconn.send_query(statement)
    started = pgconn.get_result()
    if started is None or started.status != pq.ExecStatus.COPY_OUT:
        _drain(pgconn)
        raise _result_error(started, pgconn)
    pending = bytearray()
    while True:
        size, row = pgconn.get_copy_data(0)
        if size < 0:
            break
        pending += row
        if len(pending) >= CHUNK_BYTES:
            yield bytes(pending)
            pending.clear()
    if size == -2:  # the connection broke (or libpq failed) mid-COPY
        raise _result_error(None, pgconn)
    ended = pgconn.get_result()
    _drain(pgconn)
    if ended is None or ended.status != pq.ExecStatus.COMMAND_OK:
        raise _result_error(ended, pgconn)
    if pending:
        yield bytes(pending)


def _drain(pgconn: pq.abc.PGconn) -> None:
    """Read the results left after a COPY, so the session is ready for the next statement."""
    while pgconn.get_result() is not None:
        pass


def _result_error(result: pq.abc.PGresult | None, pgconn: pq.abc.PGconn) -> psycopg.Error:
    """The psycopg error of a failed result (with its diagnostics), or of a broken connection."""
    if result is None or result.status != pq.ExecStatus.FATAL_ERROR:
        message = pgconn.get_error_message().strip() or "the upstream connection broke"
        return psycopg.OperationalError(message)
    return pg_errors.error_from_result(result, encoding="utf-8")


class PostgresSource(Source):
    """`source_url` plus a `table` (filtered on its trade_date) or a `query` taking %(trade_date)s."""

    name = "postgres"
    options_taken = {
        "source_url": SourceOption(str),
        "table": SourceOption(str),
        "query": SourceOption(str),
        "columns": SourceOption(str),
    }

    def __init__(
        self,
        source_url: str = "",
        table: str = "",
        query: str = "",
        columns: str = "",
        **options: Any,
    ) -> None:
        super().__init__(source_url=source_url, table=table, query=query, columns=columns, **options)
        self.source_url = source_url
        self.table = table
        self.query = query
        self.columns = columns
        self._sessions = threading.local()  # one upstream session per worker thread

    def validate(self) -> None:
        if not self.source_url:
            raise InvalidJobRequest(
                "source_url", _("The postgres source needs a connection URL (--source-url postgres://...)")
            )
        try:
            parts = conninfo_to_dict(self.source_url)
        except psycopg.ProgrammingError:
            # libpq's reason may quote the string, password included: say only that it is unusable.
            raise InvalidJobRequest("source_url", _("Not a PostgreSQL URL or connection string")) from None
        if "password" in parts:
            raise InvalidJobRequest(
                "source_url",
                _(
                    "Put no password in source_url: give it in PGPASSWORD, ~/.pgpass or a "
                    "pg_service.conf service of the server (docs/sources.md)"
                ),
            )
        if bool(self.table) == bool(self.query):
            raise InvalidJobRequest("table", _("The postgres source needs a table or a query, one of them"))
        if self.table and not _TABLE_NAME.match(self.table):
            raise InvalidJobRequest(
                "table", _("Not a table name (name or schema.name): %(table)s") % {"table": self.table[:60]}
            )
        if self.query and TRADE_DATE_PARAMETER not in self.query:
            raise InvalidJobRequest(
                "query",
                _("The query must select one day with %(parameter)s") % {"parameter": TRADE_DATE_PARAMETER},
            )
        try:
            column_mapping_parse(self.columns)
        except ValueError as error:
            raise InvalidJobRequest("columns", str(error)) from None

    @property
    def origin(self) -> str:
        """The upstream and what is read from it, as errors name it (never the password)."""
        return f"{upstream_label(self.source_url)} {self.table or 'query'}"

    def fetch_day(self, day: dt.date) -> CsvPayload:
        self.validate()
        return CsvPayload(chunks=self._day_chunks(day), origin=f"{self.origin} {day.isoformat()}")

    def _day_chunks(self, day: dt.date) -> Iterator[bytes]:
        """The day as CSV with our header, read from the upstream's COPY in ~64 KiB chunks."""
        origin = f"{self.origin} {day.isoformat()}"
        params = {"trade_date": day.isoformat()}  # untyped: compares with a date or timestamp column
        finished = False
        try:
            upstream = self._upstream()
            with upstream.cursor() as cursor:
                selected = self._selected(cursor, params, origin)
            text = psycopg.ClientCursor(upstream).mogrify(
                sql.upstream_copy_out(selected, self._day_select()), params
            )
            yield from _copy_out_chunks(upstream, text.encode(upstream.info.encoding))
            finished = True
        except psycopg.Error as error:
            reason = (error.diag.message_primary or str(error)).strip() or type(error).__name__
            raise SourceError(
                _("%(origin)s: upstream failed: %(reason)s") % {"origin": origin, "reason": reason},
                transient=isinstance(error, psycopg.OperationalError),
                file=origin,
            ) from None
        finally:
            if not finished:  # failed or abandoned mid-COPY: never reuse that session
                self._upstream_close()

    def _upstream(self) -> psycopg.Connection[Any]:
        """This thread's upstream session, autocommit (no transaction held between days), kept."""
        upstream: psycopg.Connection[Any] | None = getattr(self._sessions, "upstream", None)
        if upstream is None or upstream.closed:
            upstream = psycopg.connect(
                self.source_url,
                autocommit=True,
                connect_timeout=CONNECT_TIMEOUT_SECONDS,
                options="-c DateStyle=ISO,YMD",
                application_name="batchsync postgres source",
            )
            self._sessions.upstream = upstream
        return upstream

    def close(self) -> None:
        """Close this thread's upstream session (each worker's run has its own source)."""
        self._upstream_close()

    def _upstream_close(self) -> None:
        upstream: psycopg.Connection[Any] | None = getattr(self._sessions, "upstream", None)
        self._sessions.upstream = None
        if upstream is not None:
            upstream.close()

    def _day_select(self) -> pgsql.Composable:
        """The upstream SELECT of one day: the query as given, or the table filtered on its trade_date."""
        if self.query:
            return pgsql.SQL(self.query)  # the operator's own SQL, run on their server
        trade_date = column_mapping_parse(self.columns).get("trade_date", "trade_date")
        return sql.upstream_table_day(self.table, trade_date)

    def _selected(self, cursor: psycopg.Cursor[Any], params: dict[str, str], origin: str) -> pgsql.Composable:
        """`upstream.theirs AS ours, ...` for each of our columns the upstream has (the csv header rules)."""
        # The table itself (its trade_date may be missing or named otherwise), or the day's query.
        read = (
            pgsql.Identifier(*self.table.split("."))
            if self.table
            else pgsql.SQL("({})").format(self._day_select())
        )
        cursor.execute(sql.upstream_columns_probe(read), params)
        available = {column.name for column in cursor.description or ()}
        mapping = column_mapping_parse(self.columns)
        pairs = [(ours, mapping.get(ours, ours)) for ours in BAR_COLUMNS]
        present = [(ours, theirs) for ours, theirs in pairs if theirs in available]
        missing = [
            f"{ours}" + (f" (as {theirs})" if theirs != ours else "")
            for ours, theirs in pairs
            if ours in REQUIRED_COLUMNS and theirs not in available
        ]
        if missing:
            raise SourceError(
                _("%(origin)s: missing column(s) %(missing)s; map them with columns=ours=theirs,...")
                % {"origin": origin, "missing": ", ".join(missing)},
                file=origin,
            )
        return pgsql.SQL(", ").join(
            pgsql.SQL("upstream.{} AS {}").format(pgsql.Identifier(theirs), pgsql.Identifier(ours))
            for ours, theirs in present
        )
