"""Previous-day checks between days loaded out of order, in parallel or again (`loaded_day_neighbours_check`).

A day's pre_close continuity and row count band compare it with the previous trading day's
rows. A parallel worker loading that day in its own transaction hides them, and reloading the
previous day changes them: whichever of the two days commits last compares the pair.
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
import threading
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from batchsync import loader, services
from batchsync.check_models import DayFinding
from batchsync.models import LoadedDay, SyncJob, SyncJobStatus
from batchsync.sources.base import CsvPayload
from tests.test_checks import CLOSES, DAY, EVE, bar, csv_text, day_rows, eve_rows

ORIGIN = services.DayOrigin("csv", "f", None)  # type: ignore[arg-type]
SHIFTED = {"600001.SH": bar("600001.SH", DAY, "8.60", "8.40")}  # pre_close 8.40, EVE's close 8.50


def commit_day(day: dt.date, rows: list[dict[str, str]], *, before_commit: threading.Event | None = None,
               go: threading.Event | None = None) -> None:  # fmt: skip
    """A day as the runner commits it (COPY, checks, load record), then its neighbours' checks.

    With `before_commit` and `go`: signal the first and wait for the second before committing,
    to hold the day's transaction open while another day loads.
    """
    payload = CsvPayload(chunks=[csv_text(rows).encode()], origin=f"{day:%Y%m%d}.csv")
    with transaction.atomic():
        with connection.cursor() as cursor:
            loader.replace_day(cursor, day, payload)
        checked = services.day_checks_enforce(day, origin=payload.origin)
        services.loaded_day_record(day, ORIGIN, previous_checksum=checked.previous_checksum)
        if before_commit is not None and go is not None:
            before_commit.set()
            assert go.wait(30)
    services.loaded_day_neighbours_check(day)


def findings(day: dt.date = DAY) -> dict[str, int]:
    return {finding.check_name: finding.count for finding in DayFinding.objects.filter(trade_date=day)}


def record(day: dt.date) -> LoadedDay:
    return LoadedDay.objects.get(trade_date=day)


@pytest.mark.django_db(transaction=True)
def test_a_day_loaded_before_its_previous_day_is_compared_when_that_day_commits() -> None:
    commit_day(DAY, day_rows(**SHIFTED))
    assert findings() == {} and record(DAY).previous_checksum is None  # nothing to compare with yet

    commit_day(EVE, eve_rows())
    assert findings() == {"pre_close_continuity": 1}
    assert record(DAY).previous_checksum == record(EVE).checksum


@pytest.mark.django_db(transaction=True)
def test_two_days_in_parallel_transactions_are_compared_by_the_one_that_commits_last() -> None:
    """EVE's transaction is open while DAY loads and commits: DAY's checks cannot see EVE's rows."""
    copied, go = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def eve_worker() -> None:
        try:
            commit_day(EVE, eve_rows(), before_commit=copied, go=go)
        except BaseException as error:  # reported by the main thread
            failures.append(error)
        finally:
            connection.close()

    worker = threading.Thread(target=eve_worker)
    worker.start()
    assert copied.wait(30)
    commit_day(DAY, day_rows(**SHIFTED))  # EVE's rows are not committed: not compared
    assert findings() == {} and record(DAY).previous_checksum is None
    go.set()
    worker.join(30)
    assert not failures and not worker.is_alive()

    assert findings() == {"pre_close_continuity": 1}  # EVE's commit compared DAY with it
    assert record(DAY).previous_checksum == record(EVE).checksum


@pytest.mark.django_db(transaction=True)
def test_reloading_the_previous_day_compares_the_next_day_with_its_new_rows() -> None:
    commit_day(EVE, eve_rows())
    commit_day(DAY, day_rows())
    assert findings() == {}

    moved = [
        bar(code, EVE, "8.45", "8.45") if code == "600001.SH" else row
        for code, row in zip(CLOSES, eve_rows(), strict=True)
    ]
    commit_day(EVE, moved)  # DAY's pre_close 8.50 no longer EVE's close
    assert findings() == {"pre_close_continuity": 1}
    assert record(DAY).previous_checksum == record(EVE).checksum

    commit_day(EVE, eve_rows())  # back as it was: the finding goes
    assert findings() == {}
    assert record(DAY).previous_checksum == record(EVE).checksum


@pytest.mark.django_db(transaction=True)
def test_a_day_loaded_again_with_the_same_rows_compares_nothing_more() -> None:
    commit_day(EVE, eve_rows())
    commit_day(DAY, day_rows())
    with CaptureQueriesContext(connection) as queries:
        commit_day(EVE, eve_rows())  # same checksum: DAY compared these rows already
    assert not [query for query in queries.captured_queries if "FOR UPDATE" in query["sql"]]


@pytest.mark.django_db(transaction=True)
def test_with_both_previous_day_checks_off_nothing_is_compared_nor_asked() -> None:
    off = {"pre_close_continuity": "off", "row_count_band": "off"}
    with override_settings(BATCHSYNC={"CHECKS": off}):
        commit_day(DAY, day_rows(**SHIFTED))
        with CaptureQueriesContext(connection) as queries:
            assert services.loaded_day_neighbours_check(DAY) == []
        assert queries.captured_queries == []
        commit_day(EVE, eve_rows())
    assert findings() == {} and record(DAY).previous_checksum is None


@pytest.mark.django_db(transaction=True)
def test_a_late_comparison_counts_in_the_finished_job_of_the_day(csv_dir: Path) -> None:
    (csv_dir / f"{DAY:%Y%m%d}.csv").write_text(csv_text(day_rows(**SHIFTED)))
    (csv_dir / f"{EVE:%Y%m%d}.csv").write_text(csv_text(eve_rows()))
    for day in (DAY, EVE):  # two jobs: DAY's first, then its previous day's
        call_command("batch_sync", "run", "--start", day.isoformat(), "--end", day.isoformat(),
                     "--source", "csv", "--path", str(csv_dir), stdout=io.StringIO())  # fmt: skip
    day_job = SyncJob.objects.get(start_date=DAY)
    assert (day_job.status, day_job.warning_days) == (SyncJobStatus.SUCCEEDED, 1)
    finding = DayFinding.objects.get(trade_date=DAY)
    assert (finding.job_id, finding.day.date if finding.day else None) == (day_job.pk, DAY)

    # EVE corrected (600001.SH closed at 8.40, DAY's pre_close): DAY's warning goes, and its count.
    corrected = [bar(code, EVE, "8.40", "8.40") if code == "600001.SH" else row
                 for code, row in zip(CLOSES, eve_rows(), strict=True)]  # fmt: skip
    (csv_dir / f"{EVE:%Y%m%d}.csv").write_text(csv_text(corrected))
    call_command("batch_sync", "run", "--start", EVE.isoformat(), "--end", EVE.isoformat(), "--force",
                 "--source", "csv", "--path", str(csv_dir), stdout=io.StringIO())  # fmt: skip
    day_job.refresh_from_db()
    assert findings() == {} and day_job.warning_days == 0


# A week of trading days in a chain (each pre_close the day before's close), one break.
WEEK = [dt.date(2025, 10, day) for day in (9, 10, 13, 14, 15, 16, 17)]
BROKEN = dt.date(2025, 10, 15)


def week_rows() -> dict[dt.date, list[dict[str, str]]]:
    closes = {code: Decimal(close) for code, close in CLOSES.items()}
    days = {}
    for day in WEEK:
        rows = []
        for code, previous in closes.items():
            close = round(previous * Decimal("1.01"), 2)
            pre_close = previous + Decimal("0.05") if (day, code) == (BROKEN, "600000.SH") else previous
            rows.append(bar(code, day, str(close), str(pre_close)))
            closes[code] = close
        days[day] = rows
    return days


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("parallelism", ["1", "2"])
def test_a_job_compares_every_day_with_the_day_before_whatever_its_parallelism(
    csv_dir: Path, parallelism: str
) -> None:
    for day, rows in week_rows().items():
        (csv_dir / f"{day:%Y%m%d}.csv").write_text(csv_text(rows))
    call_command("batch_sync", "run", "--start", WEEK[0].isoformat(), "--end", WEEK[-1].isoformat(),
                 "--source", "csv", "--path", str(csv_dir), "--parallelism", parallelism,
                 stdout=io.StringIO())  # fmt: skip
    assert SyncJob.objects.get().status == SyncJobStatus.SUCCEEDED
    assert {day: findings(day) for day in WEEK if findings(day)} == {BROKEN: {"pre_close_continuity": 1}}
    records = {loaded.trade_date: loaded for loaded in LoadedDay.objects.all()}
    assert records[WEEK[0]].previous_checksum is None  # 2025-09-30 is not loaded
    for previous, day in itertools.pairwise(WEEK):
        assert records[day].previous_checksum == records[previous].checksum, day
