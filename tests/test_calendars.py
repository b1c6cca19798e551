"""Trading days from exchange_calendars' XSHG (Shanghai) calendar, stored in the database."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection
from django.utils.translation import override

from batchsync import calendars
from batchsync.exceptions import InvalidJobRequest
from batchsync.models import TradingCalendar, TradingSession

pytestmark = pytest.mark.django_db
OCT_9 = dt.date(2025, 10, 9)


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


# --- the stored calendar ---------------------------------------------------------------------


def test_first_use_stores_every_session_with_the_installed_version() -> None:
    assert not TradingCalendar.objects.exists()
    calendars.trading_days("XSHG", OCT_9, OCT_9)
    stored = TradingCalendar.objects.get(name="XSHG")
    sessions = calendars.exchange_sessions("XSHG")
    assert stored.source_version == calendars.exchange_calendars_version() != ""
    assert (stored.first_session, stored.last_session) == (sessions[0], sessions[-1])
    assert list(stored.sessions.order_by("date").values_list("date", flat=True)) == sessions
    assert len(sessions) > 8000  # 1991 to the end of the calendar


def test_a_stored_calendar_is_read_without_building_it() -> None:
    calendars.trading_days("XSHG", OCT_9, OCT_9)
    calendars._calendar.cache_clear()
    assert calendars.trading_days("XSHG", dt.date(2025, 9, 30), dt.date(2025, 10, 10)) == {
        dt.date(2025, 9, 30),
        OCT_9,
        dt.date(2025, 10, 10),
    }
    assert calendars.calendar_bounds("XSHG")[0] <= dt.date(1991, 1, 2)
    assert calendars._calendar.cache_info().currsize == 0  # exchange_calendars was not asked


def test_planning_uses_the_stored_sessions() -> None:
    calendars.trading_days("XSHG", OCT_9, OCT_9)
    TradingSession.objects.filter(calendar_id="XSHG", date=OCT_9).delete()
    assert calendars.trading_days("XSHG", OCT_9, dt.date(2025, 10, 10)) == {dt.date(2025, 10, 10)}


def test_a_calendar_stored_by_another_exchange_calendars_version_is_stored_again() -> None:
    calendars.trading_days("XSHG", OCT_9, OCT_9)
    TradingSession.objects.filter(calendar_id="XSHG", date__year=2025).delete()
    TradingCalendar.objects.filter(name="XSHG").update(
        source_version="0.0.1", last_session=dt.date(2025, 12, 31)
    )
    days = calendars.trading_days("XSHG", OCT_9, dt.date(2025, 10, 10))
    assert days == {OCT_9, dt.date(2025, 10, 10)}
    stored = TradingCalendar.objects.get(name="XSHG")
    assert stored.source_version == calendars.exchange_calendars_version()
    assert stored.last_session == calendars.exchange_sessions("XSHG")[-1]
    assert stored.sessions.count() == len(calendars.exchange_sessions("XSHG"))


@pytest.mark.django_db(transaction=True)
def test_processes_planning_at_once_store_the_calendar_once() -> None:
    results: list[object] = []
    barrier = threading.Barrier(4)

    def plan() -> None:
        try:
            barrier.wait()
            results.append(len(calendars.trading_days("XSHG", dt.date(2025, 9, 1), dt.date(2025, 9, 30))))
        except Exception as error:  # reported by the assert below
            results.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=plan) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert results == [22, 22, 22, 22]
    assert TradingCalendar.objects.count() == 1
    assert TradingSession.objects.count() == len(calendars.exchange_sessions("XSHG"))


# --- warning before the calendar runs out --------------------------------------------------


def test_no_warning_while_the_calendar_reaches_past_sixty_days() -> None:
    _, last = calendars.calendar_bounds("XSHG")
    assert calendars.calendar_end_warning("XSHG", last - dt.timedelta(days=61)) is None


@override("en")
def test_a_warning_names_the_last_day_and_the_days_left() -> None:
    _, last = calendars.calendar_bounds("XSHG")
    assert "ends on" in (calendars.calendar_end_warning("XSHG", last) or "")
    assert ", in 1 day: " in (calendars.calendar_end_warning("XSHG", last - dt.timedelta(days=1)) or "")
    warning = calendars.calendar_end_warning("XSHG", last - dt.timedelta(days=60))
    assert warning == (
        f"The XSHG calendar ends on {last.isoformat()}, in 60 days: jobs past it are refused until "
        "exchange_calendars is upgraded (pip install -U exchange_calendars)"
    )


@override("en")
def test_a_warning_once_the_calendar_has_ended() -> None:
    _, last = calendars.calendar_bounds("XSHG")
    warning = calendars.calendar_end_warning("XSHG", last + dt.timedelta(days=1))
    assert warning is not None and warning.startswith(f"The XSHG calendar ended on {last.isoformat()}:")


def test_the_warning_in_chinese() -> None:
    _, last = calendars.calendar_bounds("XSHG")
    with override("zh-hans"):
        warning = calendars.calendar_end_warning("XSHG", last - dt.timedelta(days=1))
    assert warning == (
        f"XSHG 交易日历将于 {last.isoformat()} 结束（1 天后）：超出该日期的任务将被拒绝，"  # noqa: RUF001
        "直到升级 exchange_calendars（pip install -U exchange_calendars）"  # noqa: RUF001
    )
