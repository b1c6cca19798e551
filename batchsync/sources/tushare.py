"""tushare pro's `daily` API as a source: one trading day's whole market per call, paged.

The token comes from the TUSHARE_TOKEN environment variable only, so it is never stored in a
job row, a log line, an error or an API answer.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import json
import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, ClassVar

from django.utils.translation import gettext as _

from batchsync.conf import get_settings
from batchsync.exceptions import InvalidJobRequest, SourceError, SourceJobStop
from batchsync.sources.base import BAR_COLUMNS, RowsPayload, Source, SourceOption
from batchsync.sources.tushare_rate import tushare_call_slot_take, tushare_limit_key

TOKEN_ENV = "TUSHARE_TOKEN"
PAGE_ROWS = 6000  # about what one call returns at most; has_more says when a day has more
TIMEOUT_SECONDS = 30.0
BAD_TOKEN = 40101
LIMITED = 40203
NO_PERMISSION = 2002
ADJ_FACTOR_FIELDS = ("ts_code", "trade_date", "adj_factor")  # the adj_factor API's, loaded as sent
PER_MINUTE_MARK = "每分钟"  # the per-minute limit's text; 40203 without it is a missing permission


class DayNotPublished(SourceError):
    """The vendor has no rows for a trading day yet (published after the close): retry later."""

    def __init__(self, message: str, *, file: str = "") -> None:
        super().__init__(message, transient=True, file=file)


def tushare_token() -> str:
    """The token from the environment ('' when unset)."""
    return os.environ.get(TOKEN_ENV, "").strip()


class TushareSource(Source):
    """Daily bars from tushare pro (or anything speaking its protocol, e.g. the fake server)."""

    name = "tushare"
    # The URL and token come from the environment; with_adj_factor also loads the day's factors.
    options_taken: ClassVar[Mapping[str, SourceOption]] = {"with_adj_factor": SourceOption(bool)}

    def validate(self) -> None:
        if not tushare_token():
            raise InvalidJobRequest(
                "source", _("The tushare source needs your token in the TUSHARE_TOKEN environment variable")
            )

    def fetch_day(self, day: dt.date) -> RowsPayload:
        origin = f"tushare:{day.strftime('%Y%m%d')}"
        rows = self._fetch_all("daily", BAR_COLUMNS, day, origin)
        if not rows:
            raise DayNotPublished(
                f"{origin}: no bars for {day.isoformat()} yet (not published yet; tushare publishes a "
                f"day's bars between 15:00 and 16:00 Beijing time); the day will be retried",
                file=origin,
            )
        if not self.options.get("with_adj_factor"):
            return RowsPayload(rows=rows, origin=origin)
        factors = self._fetch_all("adj_factor", ADJ_FACTOR_FIELDS, day, origin)
        if not factors:
            raise DayNotPublished(
                f"{origin}: no adj_factor for {day.isoformat()} yet (not published yet; tushare "
                f"publishes a day's factors before the next open); the day will be retried",
                file=origin,
            )
        return RowsPayload(rows=rows, origin=origin, adj_factors=factors)

    def _fetch_all(
        self, api_name: str, columns: tuple[str, ...], day: dt.date, origin: str
    ) -> list[tuple[Any, ...]]:
        """Every page of `api_name` for `day`, as rows in `columns` order."""
        rows: list[tuple[Any, ...]] = []
        offset = 0
        while True:
            data = self._call(api_name, columns, day, offset, origin)
            rows.extend(_rows_of(data, columns, origin))
            if not data.get("has_more") or not data.get("items"):
                return rows
            offset += len(data["items"])

    def _call(
        self, api_name: str, columns: tuple[str, ...], day: dt.date, offset: int, origin: str
    ) -> dict[str, Any]:
        """One POST of the protocol; the answer's `data`, or a `SourceError` saying what went wrong."""
        token = tushare_token()
        body = {
            "api_name": api_name,
            "token": token,
            "params": {"trade_date": day.strftime("%Y%m%d"), "limit": PAGE_ROWS, "offset": offset},
            "fields": ",".join(columns),
        }
        url = get_settings().tushare_api_url
        request = urllib.request.Request(
            url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
        )
        tushare_call_slot_take(tushare_limit_key(token, url))
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as answer:
                envelope = json.loads(answer.read())
        except urllib.error.HTTPError as error:
            transient = error.code >= 500 or error.code == 429
            failed = f"{origin}: HTTP {error.code} from {url}"
            raise SourceError(failed, transient=transient, file=origin) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException) as error:
            reason = getattr(error, "reason", error)
            failed = f"{origin}: {url} unreachable ({reason})"
            raise SourceError(failed, transient=True, file=origin) from None
        except json.JSONDecodeError:
            failed = f"{origin}: {url} answered something that is not JSON"
            raise SourceError(failed, transient=True, file=origin) from None
        return _data_or_raise(envelope, origin, api_name)


def _data_or_raise(envelope: Any, origin: str, api_name: str = "daily") -> dict[str, Any]:
    """The `data` of a successful answer; errors mapped to transient, day-failing or job-stopping ones."""
    if not isinstance(envelope, dict):
        raise SourceError(f"{origin}: the answer is not a JSON object", file=origin)
    code = envelope.get("code")
    message = str(envelope.get("msg") or "")
    if code == BAD_TOKEN:
        raise SourceJobStop(
            f"tushare refused the token (code 40101: {message}); check TUSHARE_TOKEN", file=origin
        )
    if code == LIMITED and PER_MINUTE_MARK in message:
        throttled = f"{origin}: throttled by tushare (code 40203: {message})"
        raise SourceError(throttled, transient=True, file=origin)
    if code in (LIMITED, NO_PERMISSION):
        raise SourceJobStop(
            f"tushare: this token has no permission for the {api_name} API (code {code}: {message})",
            file=origin,
        )
    if code != 0:
        raise SourceError(f"{origin}: tushare error code {code}: {message}", file=origin)
    data = envelope.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("items"), list):
        raise SourceError(f"{origin}: the answer has no data.items", file=origin)
    return data


def _rows_of(data: dict[str, Any], columns: tuple[str, ...], origin: str) -> list[tuple[Any, ...]]:
    """The answer's items in `columns` order, trade_date a date, the numbers after it Decimals (as sent)."""
    fields = list(data.get("fields") or [])
    missing = [name for name in columns if name not in fields]
    if missing:
        raise SourceError(f"{origin}: the answer lacks the fields {','.join(missing)}", file=origin)
    positions = [fields.index(name) for name in columns]
    date_at = columns.index("trade_date")
    rows: list[tuple[Any, ...]] = []
    for item in data["items"]:
        values: list[Any] = [item[at] for at in positions]
        for index in range(date_at + 1, len(values)):
            values[index] = None if values[index] is None else Decimal(str(values[index]))
        with contextlib.suppress(ValueError):  # else the loader names the row and the bad trade_date
            values[date_at] = dt.datetime.strptime(str(values[date_at]), "%Y%m%d").date()
        rows.append(tuple(values))
    return rows
