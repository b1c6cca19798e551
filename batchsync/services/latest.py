"""The latest trading day a source has published, the newest one loaded, and the `--latest` range.

"Published" is per source: its bars of a trading day count as published from the source's
publication time (BATCHSYNC PUBLICATION_TIMES, else PUBLICATION_TIME) in the exchange's time
zone (BATCHSYNC EXCHANGE_TIMEZONE) on that day.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db.models import Max
from django.utils.translation import gettext as _

from batchsync import calendars
from batchsync.conf import get_settings
from batchsync.exceptions import InvalidJobRequest
from batchsync.models import LoadedDay, TradingSession


def exchange_timezone() -> ZoneInfo:
    """The exchange's time zone (BATCHSYNC EXCHANGE_TIMEZONE)."""
    name = get_settings().exchange_timezone
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise InvalidJobRequest(
            "exchange_timezone", _("Unknown time zone %(name)s") % {"name": name}
        ) from error


def publication_time(source: str) -> dt.time:
    """When `source` has published a trading day's bars, in the exchange's time zone."""
    config = get_settings()
    text = config.publication_times.get(source, config.publication_time)
    try:
        return dt.time.fromisoformat(text)
    except ValueError as error:
        raise InvalidJobRequest(
            "publication_time", _("Invalid publication time %(time)s: use HH:MM") % {"time": text}
        ) from error


def trading_days_back(day: dt.date, count: int, *, calendar: str | None = None) -> list[dt.date]:
    """The last `count` trading days on or before `day`, newest first (fewer at the calendar's start)."""
    name = calendar or get_settings().calendar
    stored = calendars.calendar_stored(name)
    if day > stored.last_session:
        raise InvalidJobRequest(
            "latest",
            _("The %(name)s calendar covers %(first)s to %(last)s only")
            % {
                "name": name,
                "first": stored.first_session.isoformat(),
                "last": stored.last_session.isoformat(),
            },
        )
    sessions = TradingSession.objects.filter(calendar_id=name, date__lte=day).order_by("-date")
    return list(sessions.values_list("date", flat=True)[:count])


def latest_published_trading_day(source: str, now: dt.datetime) -> dt.date:
    """The latest trading day whose data `source` should have published by `now` (aware)."""
    local = now.astimezone(exchange_timezone())
    last = local.date() if local.time() >= publication_time(source) else local.date() - dt.timedelta(days=1)
    days = trading_days_back(last, 1)
    if not days:
        raise InvalidJobRequest("latest", _("No trading day before %(day)s") % {"day": last.isoformat()})
    return days[0]


def newest_loaded_trading_day(source: str) -> dt.date | None:
    """The newest trading day whose rows `source` loaded (LoadedDay provenance), or None."""
    newest: dt.date | None = LoadedDay.objects.filter(source=source).aggregate(newest=Max("trade_date"))[
        "newest"
    ]
    return newest


@dataclass(frozen=True)
class LatestRange:
    """The range a `--latest` run covers: new days, after the look-back days it reloads."""

    start_date: dt.date
    end_date: dt.date
    newest_loaded: dt.date | None
    published: dt.date
    lookback_days: int  # trading days reloaded (forced) before the new ones

    @property
    def force(self) -> bool:
        """Reloading look-back days means replacing them."""
        return self.lookback_days > 0


def latest_range(source: str, now: dt.datetime, lookback_days: int | None = None) -> LatestRange | None:
    """What `--latest` loads for `source` at `now`; None when it is up to date.

    From the day after the newest trading day loaded from `source` to the latest published one,
    plus `lookback_days` (default BATCHSYNC LATEST_LOOKBACK_DAYS) trading days up to the newest
    loaded one, reloaded. Nothing loaded yet: only the latest published day. Up to date means no
    new day is published: look-back days are reloaded only along with new ones.
    """
    lookback = get_settings().latest_lookback_days if lookback_days is None else lookback_days
    published = latest_published_trading_day(source, now)
    newest = newest_loaded_trading_day(source)
    if newest is None:
        return LatestRange(published, published, None, published, 0)
    if newest >= published:
        return None
    start = newest + dt.timedelta(days=1)
    reloaded = trading_days_back(newest, lookback) if lookback > 0 else []
    if reloaded:
        start = reloaded[-1]
    return LatestRange(start, published, newest, published, len(reloaded))
