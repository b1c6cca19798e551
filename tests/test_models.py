"""Database constraints of the models, checked by PostgreSQL itself (no model validation in between)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction

from batchsync.models import (
    ACTIVE_STATUSES,
    DailyBar,
    SkipReason,
    SyncDay,
    SyncDayStatus,
    SyncJob,
    SyncJobStatus,
    SyncLock,
)
from tests.factories import SyncDayFactory, SyncJobFactory

pytestmark = pytest.mark.django_db

DAY = dt.date(2025, 10, 9)


def insert_raises(constraint: str, create: Any) -> None:
    """PostgreSQL refuses `create()` naming `constraint` (in a savepoint, so the test goes on)."""
    with transaction.atomic(), pytest.raises(IntegrityError, match=constraint):
        create()


# --- SyncJob ------------------------------------------------------------------------------


def test_job_start_after_end_is_refused_by_the_database() -> None:
    insert_raises(
        "syncjob_start_lte_end",
        lambda: SyncJobFactory.create(start_date=dt.date(2025, 10, 9), end_date=dt.date(2025, 10, 8)),
    )
    assert SyncJobFactory.create(start_date=DAY, end_date=DAY).pk


@pytest.mark.parametrize("active", ACTIVE_STATUSES)
def test_a_second_active_job_is_refused_by_the_partial_unique_index(active: str) -> None:
    SyncJobFactory.create(status=SyncJobStatus.RUNNING)
    insert_raises("syncjob_one_active", lambda: SyncJobFactory.create(status=active))


def test_finished_queued_and_paused_jobs_do_not_hold_the_slot() -> None:
    for status in (
        SyncJobStatus.SUCCEEDED,
        SyncJobStatus.FAILED,
        SyncJobStatus.CANCELLED,
        SyncJobStatus.QUEUED,
        SyncJobStatus.QUEUED,
        SyncJobStatus.PAUSED,
    ):
        SyncJobFactory.create(status=status)
    running = SyncJobFactory.create(status=SyncJobStatus.RUNNING)
    assert SyncJob.objects.active().get() == running


def test_an_update_into_the_running_slot_is_refused_too() -> None:
    SyncJobFactory.create(status=SyncJobStatus.RUNNING)
    other = SyncJobFactory.create(status=SyncJobStatus.QUEUED)
    insert_raises(
        "syncjob_one_active",
        lambda: SyncJob.objects.filter(pk=other.pk).update(status=SyncJobStatus.PENDING),
    )


def test_job_counts_must_add_up() -> None:
    insert_raises(
        "syncjob_processed_is_sum",
        lambda: SyncJobFactory.create(
            total_days=5, processed_days=3, success_days=1, failed_days=1, skipped_days=0
        ),
    )
    insert_raises(
        "syncjob_processed_lte_total",
        lambda: SyncJobFactory.create(total_days=1, processed_days=2, success_days=2),
    )
    insert_raises("syncjob_status_valid", lambda: SyncJobFactory.create(status="exploded"))


def test_only_one_lock_row_exists() -> None:
    assert SyncLock.objects.get().pk == 1  # created by a data migration
    insert_raises("synclock_singleton", lambda: SyncLock.objects.create(id=2))


# --- SyncDay ------------------------------------------------------------------------------


@pytest.mark.parametrize("reason", [reason for reason in SkipReason if reason != SkipReason.NONE])
def test_a_skipped_day_carries_its_reason(reason: str) -> None:
    day = SyncDayFactory.create(status=SyncDayStatus.SKIPPED, skip_reason=reason)
    assert day.get_skip_reason_display()


def test_skip_reason_is_required_when_skipped_and_forbidden_otherwise() -> None:
    job = SyncJobFactory.create()
    insert_raises(
        "syncday_skip_reason_iff_skipped",
        lambda: SyncDay.objects.create(job=job, date=DAY, status=SyncDayStatus.SKIPPED),
    )
    insert_raises(
        "syncday_skip_reason_iff_skipped",
        lambda: SyncDay.objects.create(
            job=job, date=DAY, status=SyncDayStatus.FAILED, skip_reason=SkipReason.NON_TRADING
        ),
    )
    insert_raises(
        "syncday_skip_reason_iff_skipped",
        lambda: SyncDay.objects.create(
            job=job, date=DAY, status=SyncDayStatus.SKIPPED, skip_reason="holiday"
        ),
    )


def test_a_job_has_each_date_once() -> None:
    day = SyncDayFactory.create(date=DAY)
    insert_raises("syncday_unique_job_date", lambda: SyncDayFactory.create(job=day.job, date=DAY))
    assert SyncDayFactory.create(date=DAY).pk  # another job may have the same date


# --- DailyBar -----------------------------------------------------------------------------


def bar(**values: Any) -> DailyBar:
    fields: dict[str, Any] = {
        "trade_date": DAY,
        "ts_code": "600000.SH",
        "open": Decimal("10.12"),
        "high": Decimal("10.50"),
        "low": Decimal("9.80"),
        "close": Decimal("10.30"),
        "vol": Decimal("12345.67"),
        "amount": Decimal("12714.504"),
        **values,
    }
    return DailyBar.objects.create(**fields)


def test_bar_key_is_trade_date_and_ts_code() -> None:
    bar()
    insert_raises("daily_bar_pkey", bar)
    bar(ts_code="000001.SZ")
    bar(trade_date=DAY - dt.timedelta(days=1))
    assert DailyBar.objects.count() == 3
    assert DailyBar.objects.get(pk=(DAY, "600000.SH")).close == Decimal("10.30")


def test_bar_codes_compare_bytewise_in_the_key() -> None:
    """ts_code is COLLATE "C" in the table and its key: memcmp, not the server locale's strcoll."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coll.collname FROM pg_index i"
            " JOIN pg_class idx ON idx.oid = i.indexrelid"
            " JOIN pg_collation coll ON coll.oid = i.indcollation[1]"
            " WHERE idx.relname = 'daily_bar_pkey'"
        )
        assert cursor.fetchone() == ("C",)
        cursor.execute(
            "SELECT collation_name FROM information_schema.columns"
            " WHERE table_name = 'daily_bar' AND column_name = 'ts_code'"
        )
        assert cursor.fetchone() == ("C",)


def test_bar_numbers_are_exact_decimals() -> None:
    bar(
        close=Decimal("1234567890.1234"),
        pct_chg=Decimal("-9.9901"),
        amount=Decimal("1234567890123456789.125"),
    )
    saved = DailyBar.objects.get()
    assert saved.close == Decimal("1234567890.1234")
    assert saved.pct_chg == Decimal("-9.9901")
    assert saved.amount == Decimal("1234567890123456789.125")
    assert (saved.pre_close, saved.change) == (None, None)


def test_bar_checks_low_not_above_high_and_no_negative_volume() -> None:
    insert_raises("daily_bar_low_lte_high", lambda: bar(low=Decimal("11"), high=Decimal("10")))
    insert_raises("daily_bar_vol_valid", lambda: bar(vol=Decimal("-1")))
    insert_raises("daily_bar_amount_valid", lambda: bar(amount=Decimal("-0.001")))
    insert_raises("daily_bar_open_valid", lambda: bar(open=Decimal("0")))
    insert_raises("daily_bar_vol_valid", lambda: bar(vol=Decimal("1.001")))  # no silent rounding
    assert bar(low=Decimal("10"), high=Decimal("10"), vol=Decimal("0"), amount=Decimal("0")).pk
