"""`--latest`: the latest published trading day, the newest loaded one, and the range between."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import translation

from batchsync import services
from batchsync.exceptions import SyncUpToDate
from batchsync.models import LoadedDay, SyncDayStatus, SyncJob, SyncJobStatus
from batchsync.services.latest import trading_days_back

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture(autouse=True)
def english() -> Iterator[None]:
    """Messages in English (the site's default language is Chinese)."""
    with translation.override("en"):
        yield


def shanghai(day: str, time: str) -> dt.datetime:
    return dt.datetime.fromisoformat(f"{day}T{time}").replace(tzinfo=SHANGHAI)


def command(*args: str) -> str:
    out = io.StringIO()
    call_command("batch_sync", *args, stdout=out)
    return out.getvalue()


def loaded_days() -> list[dt.date]:
    return list(LoadedDay.objects.order_by("trade_date").values_list("trade_date", flat=True))


def newest_job() -> SyncJob:
    job = SyncJob.objects.order_by("-id").first()
    assert job is not None
    return job


@pytest.mark.django_db
def test_the_calendar_has_the_national_day_holiday_between_09_30_and_10_09() -> None:
    assert trading_days_back(dt.date(2025, 10, 9), 3) == [
        dt.date(2025, 10, 9),
        dt.date(2025, 9, 30),
        dt.date(2025, 9, 29),
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("now", "published"),
    [
        (shanghai("2025-10-09", "17:00"), dt.date(2025, 10, 9)),  # at the publication time
        (shanghai("2025-10-09", "16:59"), dt.date(2025, 9, 30)),  # before it: the holiday's eve
        (shanghai("2025-10-12", "20:00"), dt.date(2025, 10, 10)),  # a Sunday: Friday's
        (dt.datetime(2025, 10, 9, 9, 0, tzinfo=dt.UTC), dt.date(2025, 10, 9)),  # 17:00 in Shanghai
    ],
)
def test_latest_published_trading_day_follows_the_publication_time_in_the_exchange_zone(
    now: dt.datetime, published: dt.date
) -> None:
    assert services.latest_published_trading_day("tushare", now) == published


@pytest.mark.django_db
def test_publication_times_are_per_source(settings: object) -> None:
    settings.BATCHSYNC = {"PUBLICATION_TIME": "18:00", "PUBLICATION_TIMES": "tushare=16:00"}  # type: ignore[attr-defined]
    now = shanghai("2025-10-09", "17:00")
    assert services.latest_published_trading_day("tushare", now) == dt.date(2025, 10, 9)
    assert services.latest_published_trading_day("demo", now) == dt.date(2025, 9, 30)


@pytest.mark.usefixtures("foreground")
@pytest.mark.django_db(transaction=True)
def test_latest_after_a_load_through_09_30_loads_exactly_10_09_on_10_09_after_publication() -> None:
    """The acceptance: 10-01..10-08 is the National Day holiday, so 10-09 is the next trading day."""
    command("run", "--start", "2025-09-29", "--end", "2025-09-30")
    assert services.newest_loaded_trading_day("demo") == dt.date(2025, 9, 30)

    before = command("run", "--latest", "--now", "2025-10-09T16:30:00+08:00")
    assert (
        before.strip()
        == "Up to date: demo has loaded 2025-09-30, the latest trading day published by 2025-10-09 16:30 CST"
    )
    assert SyncJob.objects.count() == 1

    text = command("run", "--latest", "--now", "2025-10-09T17:30:00+08:00")
    job = newest_job()
    assert (job.start_date, job.end_date, job.status) == (
        dt.date(2025, 10, 1),
        dt.date(2025, 10, 9),
        SyncJobStatus.SUCCEEDED,
    )
    assert list(job.days.filter(status=SyncDayStatus.SUCCEEDED).values_list("date", flat=True)) == [
        dt.date(2025, 10, 9)
    ]
    assert job.skipped_days == 8 and job.failed_days == 0
    assert loaded_days() == [dt.date(2025, 9, 29), dt.date(2025, 9, 30), dt.date(2025, 10, 9)]
    assert f"Job {job.task_id} succeeded" in text

    again = command("run", "--latest", "--now", "2025-10-09T17:31:00+08:00")
    assert again.startswith("Up to date: demo has loaded 2025-10-09")


@pytest.mark.usefixtures("foreground")
@pytest.mark.django_db(transaction=True)
def test_lookback_reloads_the_newest_loaded_trading_days_with_the_new_ones() -> None:
    command("run", "--start", "2025-09-29", "--end", "2025-09-30")
    first = LoadedDay.objects.get(trade_date=dt.date(2025, 9, 30)).job_id
    command("run", "--latest", "--lookback", "1", "--now", "2025-10-09T18:00:00+08:00")
    job = newest_job()
    assert (job.start_date, job.end_date, job.reprocess) == (
        dt.date(2025, 9, 30),
        dt.date(2025, 10, 9),
        "all",
    )
    assert job.success_days == 2
    assert LoadedDay.objects.get(trade_date=dt.date(2025, 9, 30)).job_id == job.pk != first


@pytest.mark.django_db
def test_latest_with_nothing_loaded_loads_only_the_latest_published_day(settings: object) -> None:
    settings.BATCHSYNC = {"LATEST_LOOKBACK_DAYS": 5}  # type: ignore[attr-defined]
    request = services.sync_request_build(latest=True, source="demo", now=shanghai("2025-10-10", "19:00"))
    assert (request.start_date, request.end_date, request.reprocess) == (
        dt.date(2025, 10, 10),
        dt.date(2025, 10, 10),
        "failed",
    )


@pytest.mark.django_db
def test_up_to_date_is_raised_by_the_one_request_builder(tmp_path: Path) -> None:
    LoadedDay.objects.create(
        trade_date=dt.date(2025, 10, 9), source="demo", options_fingerprint="x", rows=1, checksum="x"
    )
    with pytest.raises(SyncUpToDate):
        services.sync_request_build(latest=True, source="demo", now=shanghai("2025-10-10", "16:00"))
    # Another source's days do not count as this source's.
    request = services.sync_request_build(
        latest=True,
        source="csv",
        path=str(tmp_path),
        confine_paths=False,
        now=shanghai("2025-10-10", "16:00"),
    )
    assert (request.start_date, request.end_date) == (dt.date(2025, 10, 9), dt.date(2025, 10, 9))


@pytest.mark.django_db
def test_latest_with_dates_is_one_line_and_exit_2() -> None:
    with pytest.raises(CommandError) as refused:
        command("run", "--latest", "--start", "2025-10-09")
    assert str(refused.value) == "--latest: latest computes the dates: do not give start or end dates"
    assert refused.value.returncode == 2
    with pytest.raises(CommandError) as missing:
        command("run", "--end", "2025-10-09")
    assert str(missing.value) == "Error: the following arguments are required: --start"
