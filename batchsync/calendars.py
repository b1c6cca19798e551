"""Trading days from a maintained exchange calendar (exchange_calendars; XSHG by default)."""

from __future__ import annotations

import datetime as dt
import warnings
from functools import lru_cache
from typing import Any

from django.utils.translation import gettext as _

from batchsync.exceptions import InvalidJobRequest

CALENDAR_START = "1991-01-01"


@lru_cache(maxsize=8)
def _calendar(name: str) -> Any:
    import exchange_calendars

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return exchange_calendars.get_calendar(name, start=CALENDAR_START)


def calendar_bounds(name: str) -> tuple[dt.date, dt.date]:
    """First and last day the calendar knows."""
    calendar = _calendar(name)
    return calendar.first_session.date(), calendar.last_session.date()


def trading_days(name: str, start: dt.date, end: dt.date) -> set[dt.date]:
    """The sessions of calendar `name` between `start` and `end`, inclusive."""
    try:
        calendar = _calendar(name)
    except Exception as error:  # exchange_calendars raises its own InvalidCalendarName
        raise InvalidJobRequest("calendar", _("Unknown calendar %(name)s") % {"name": name}) from error
    first, last = calendar_bounds(name)
    if start < first or end > last:
        raise InvalidJobRequest(
            "end_date" if end > last else "start_date",
            _("The %(name)s calendar covers %(first)s to %(last)s only")
            % {"name": name, "first": first.isoformat(), "last": last.isoformat()},
        )
    sessions = calendar.sessions_in_range(start.isoformat(), end.isoformat())
    return {session.date() for session in sessions}
