"""Trading days from a maintained exchange calendar (exchange_calendars; XSHG by default).

exchange_calendars builds its calendars with pandas, which costs a command 0.3-0.5 s of
imports. So the sessions are stored in `TradingCalendar`/`TradingSession` the first time a
calendar is used, and read from there as long as the installed exchange_calendars is the
version that produced them.
"""

from __future__ import annotations

import datetime as dt
import warnings
from functools import lru_cache
from importlib import metadata
from typing import Any

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from batchsync import sql
from batchsync.exceptions import InvalidJobRequest
from batchsync.models import TradingCalendar, TradingSession

CALENDAR_START = "1991-01-01"
# Warn this many days before a calendar's last session: syncing past it is refused.
CALENDAR_END_WARNING_DAYS = 60


@lru_cache(maxsize=8)
def _calendar(name: str) -> Any:
    import exchange_calendars

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return exchange_calendars.get_calendar(name, start=CALENDAR_START)


@lru_cache(maxsize=1)
def exchange_calendars_version() -> str:
    """The installed exchange_calendars version (read from its metadata, without importing it)."""
    return metadata.version("exchange_calendars")


def exchange_sessions(name: str) -> list[dt.date]:
    """Every session of calendar `name` as exchange_calendars has it (slow: imports pandas)."""
    try:
        calendar = _calendar(name)
    except Exception as error:  # exchange_calendars raises its own InvalidCalendarName
        raise InvalidJobRequest("calendar", _("Unknown calendar %(name)s") % {"name": name}) from error
    return [session.date() for session in calendar.sessions]


def calendar_stored(name: str) -> TradingCalendar:
    """Calendar `name` from the table, stored (again) first if missing or from another version."""
    version = exchange_calendars_version()
    stored = TradingCalendar.objects.filter(name=name, source_version=version).first()
    return stored if stored is not None else _calendar_store(name, version)


def _calendar_store(name: str, version: str) -> TradingCalendar:
    """Replace the stored sessions of `name` with exchange_calendars' own.

    One transaction under an advisory lock on the name: processes planning at once store it
    once, and readers see the old sessions or the new ones, never a mix.
    """
    sessions = exchange_sessions(name)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(sql.ADVISORY_XACT_LOCK, [f"batchsync.calendar:{name}"])
        stored = TradingCalendar.objects.filter(name=name, source_version=version).first()
        if stored is not None:  # another process stored it while this one waited
            return stored
        TradingSession.objects.filter(calendar_id=name).delete()
        stored, _created = TradingCalendar.objects.update_or_create(
            name=name,
            defaults={
                "first_session": sessions[0],
                "last_session": sessions[-1],
                "source_version": version,
                "stored_at": timezone.now(),
            },
        )
        TradingSession.objects.bulk_create(
            [TradingSession(calendar_id=name, date=day) for day in sessions], batch_size=5000
        )
    return stored


def calendar_bounds(name: str) -> tuple[dt.date, dt.date]:
    """First and last day the calendar knows."""
    stored = calendar_stored(name)
    return stored.first_session, stored.last_session


def trading_days(name: str, start: dt.date, end: dt.date) -> set[dt.date]:
    """The sessions of calendar `name` between `start` and `end`, inclusive."""
    first, last = calendar_bounds(name)
    if start < first or end > last:
        raise InvalidJobRequest(
            "end_date" if end > last else "start_date",
            _("The %(name)s calendar covers %(first)s to %(last)s only")
            % {"name": name, "first": first.isoformat(), "last": last.isoformat()},
        )
    sessions = TradingSession.objects.filter(calendar_id=name, date__range=(start, end))
    return set(sessions.values_list("date", flat=True))


def calendar_end_warning(name: str, today: dt.date) -> str | None:
    """A warning when calendar `name` ends within `CALENDAR_END_WARNING_DAYS` of `today`, else None."""
    last = calendar_bounds(name)[1]
    days = (last - today).days
    if days > CALENDAR_END_WARNING_DAYS:
        return None
    upgrade = _(
        "jobs past it are refused until exchange_calendars is upgraded (pip install -U exchange_calendars)"
    )
    if days < 0:
        return _("The %(name)s calendar ended on %(last)s: %(upgrade)s") % {
            "name": name,
            "last": last.isoformat(),
            "upgrade": upgrade,
        }
    left = ngettext("in %(days)s day", "in %(days)s days", days) % {"days": days}
    return _("The %(name)s calendar ends on %(last)s, %(left)s: %(upgrade)s") % {
        "name": name,
        "last": last.isoformat(),
        "left": left,
        "upgrade": upgrade,
    }
