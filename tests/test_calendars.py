"""Trading days from exchange_calendars' XSHG (Shanghai) calendar."""

from __future__ import annotations

import datetime as dt

import pytest

from batchsync import calendars
from batchsync.exceptions import InvalidJobRequest


def test_national_day_2025_is_closed_and_october_9_open() -> None:
    days = calendars.trading_days("XSHG", dt.date(2025, 9, 30), dt.date(2025, 10, 10))
    assert sorted(days) == [dt.date(2025, 9, 30), dt.date(2025, 10, 9), dt.date(2025, 10, 10)]


def test_september_2025_has_22_trading_days_and_no_weekends() -> None:
    days = calendars.trading_days("XSHG", dt.date(2025, 9, 1), dt.date(2025, 9, 30))
    assert len(days) == 22
    assert all(day.weekday() < 5 for day in days)
    assert dt.date(2025, 9, 1) in days and dt.date(2025, 9, 30) in days


def test_the_range_is_inclusive_and_a_weekend_is_empty() -> None:
    assert calendars.trading_days("XSHG", dt.date(2025, 10, 9), dt.date(2025, 10, 9)) == {
        dt.date(2025, 10, 9)
    }
    assert calendars.trading_days("XSHG", dt.date(2025, 10, 11), dt.date(2025, 10, 12)) == set()


def test_dates_before_the_calendar_are_refused_with_its_bounds() -> None:
    first, last = calendars.calendar_bounds("XSHG")
    assert first <= dt.date(1991, 1, 2) and last >= dt.date(2025, 12, 31)
    with pytest.raises(InvalidJobRequest) as caught:
        calendars.trading_days("XSHG", dt.date(1985, 1, 1), dt.date(1991, 6, 1))
    assert caught.value.field == "start_date"
    assert first.isoformat() in caught.value.message and last.isoformat() in caught.value.message


def test_dates_after_the_calendar_are_refused_on_end_date() -> None:
    _, last = calendars.calendar_bounds("XSHG")
    with pytest.raises(InvalidJobRequest) as caught:
        calendars.trading_days("XSHG", last, last + dt.timedelta(days=400))
    assert caught.value.field == "end_date"


def test_an_unknown_calendar_is_an_invalid_request() -> None:
    with pytest.raises(InvalidJobRequest) as caught:
        calendars.trading_days("NOPE", dt.date(2025, 10, 1), dt.date(2025, 10, 9))
    assert caught.value.field == "calendar"
    assert "NOPE" in caught.value.message


def test_another_exchange_calendar_can_be_used() -> None:
    # New York is open on 2025-10-01 (China's National Day), closed on the weekend.
    days = calendars.trading_days("XNYS", dt.date(2025, 10, 1), dt.date(2025, 10, 5))
    assert sorted(days) == [dt.date(2025, 10, 1), dt.date(2025, 10, 2), dt.date(2025, 10, 3)]
