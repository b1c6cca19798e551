"""Adjustment factors: loaded with the day's bars in one transaction, adjusted prices read back."""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal
from typing import Any

import pytest
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.db.models import Count
from django.utils import translation

from batchsync import loader
from batchsync.adjusted import adjusted_bars
from batchsync.exceptions import InvalidJobRequest, LoadError
from batchsync.management.exit_status import EXIT_BAD_ARGUMENTS
from batchsync.models import AdjFactor, DailyBar, PriceAdjustment, SyncJob, SyncJobStatus
from batchsync.sources.base import RowsPayload
from batchsync.sources.tushare import DayNotPublished, TushareSource
from batchsync.sources.tushare_fake import FakeTushareServer, adj_factor_on
from tests.test_api import make_user, token_client
from tests.test_runner import bars_digest
from tests.test_tushare import demo_rows, fake, run_command

__all__ = ["fake"]  # the fake server's fixture, shared with tests/test_tushare.py

DAY = dt.date(2025, 9, 10)  # 000021.SZ goes ex-rights on this day in the fake (its factor grows 1.05-fold)
STOCK = "000021.SZ"
BEFORE = Decimal("28.977548")  # its factor up to 2025-09-09
AFTER = Decimal("30.426426")  # from 2025-09-10


def factors_of(day: dt.date) -> dict[str, Decimal]:
    return dict(AdjFactor.objects.filter(trade_date=day).values_list("ts_code", "adj_factor"))


def test_the_fake_changes_a_factor_only_on_its_ex_rights_day() -> None:
    factors = [Decimal(str(adj_factor_on(STOCK, DAY + dt.timedelta(days=shift)))) for shift in (-2, -1, 0, 1)]
    assert factors == [BEFORE, BEFORE, AFTER, AFTER]


@pytest.mark.django_db(transaction=True)
def test_the_source_fetches_the_days_factors_only_when_asked(fake: FakeTushareServer) -> None:
    assert TushareSource().fetch_day(DAY).adj_factors is None
    payload = TushareSource(with_adj_factor=True).fetch_day(DAY)
    assert payload.adj_factors is not None and len(payload.adj_factors) == 5500
    assert (STOCK, DAY, AFTER) in payload.adj_factors
    assert fake.counters.answered == 3  # daily, then daily and adj_factor
    fake.config.row_cap = 2000
    paged = TushareSource(with_adj_factor=True).fetch_day(DAY).adj_factors
    assert paged == payload.adj_factors and fake.counters.answered == 3 + 3 + 3  # 3 pages each


@pytest.mark.django_db(transaction=True)
def test_a_day_without_factors_yet_is_not_published_and_transient(fake: FakeTushareServer) -> None:
    fake.config.factors_published_until = DAY - dt.timedelta(days=1)
    with pytest.raises(DayNotPublished, match="no adj_factor for 2025-09-10 yet") as raised:
        TushareSource(with_adj_factor=True).fetch_day(DAY)
    assert raised.value.transient


@pytest.mark.django_db(transaction=True)
def test_the_command_loads_the_factors_with_the_bars(fake: FakeTushareServer) -> None:
    code, text = run_command(
        "--start", "2025-09-08", "--end", "2025-09-12", "--source", "tushare", "--with-adj-factor",
        "--parallelism", "2",
    )  # fmt: skip
    assert code == 0, text
    job = SyncJob.objects.get()
    assert (job.status, job.source_options) == (SyncJobStatus.SUCCEEDED, {"with_adj_factor": True})
    assert AdjFactor.objects.count() == 5 * 5500 == DailyBar.objects.count()
    assert factors_of(DAY - dt.timedelta(days=1))[STOCK] == BEFORE and factors_of(DAY)[STOCK] == AFTER


@pytest.mark.django_db(transaction=True)
def test_with_adj_factor_is_refused_for_a_source_without_factors() -> None:
    with translation.override("en"), pytest.raises(CommandError) as raised:
        run_command("--start", "2025-09-08", "--end", "2025-09-08", "--with-adj-factor")
    assert raised.value.returncode == EXIT_BAD_ARGUMENTS
    assert (
        str(raised.value)
        == "--with-adj-factor: The demo source takes no option with_adj_factor (it takes: -)"
    )
    assert not SyncJob.objects.exists()


def load(day: dt.date, payload: RowsPayload) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        loader.replace_day(cursor, day, payload)


def factor_rows(day: dt.date, scale: Decimal) -> list[tuple[Any, ...]]:
    return [(row[0], day, Decimal(str(adj_factor_on(row[0], day))) * scale) for row in demo_rows(day)]


@pytest.mark.django_db(transaction=True)
def test_a_bad_factor_rolls_back_the_days_bars_and_factors() -> None:
    load(DAY, RowsPayload(rows=demo_rows(DAY), origin="first", adj_factors=factor_rows(DAY, Decimal(1))))
    before = bars_digest(DAY, DAY), factors_of(DAY)
    bad = factor_rows(DAY, Decimal(2))
    bad[7] = (bad[7][0], DAY, Decimal(-1))  # adj_factor_positive
    changed = [(row[0], row[1], *row[2:5], row[5] + 1, *row[6:]) for row in demo_rows(DAY)]
    with pytest.raises(LoadError, match=r"second: adj_factor: .*adj_factor_positive"):
        load(DAY, RowsPayload(rows=changed, origin="second", adj_factors=bad))
    assert (bars_digest(DAY, DAY), factors_of(DAY)) == before


@pytest.mark.django_db(transaction=True)
def test_bad_bars_leave_the_days_factors_untouched() -> None:
    load(DAY, RowsPayload(rows=demo_rows(DAY), origin="first", adj_factors=factor_rows(DAY, Decimal(1))))
    before = bars_digest(DAY, DAY), factors_of(DAY)
    wrong_day = [
        *demo_rows(DAY)[:-1],
        (*demo_rows(DAY)[-1][:1], DAY + dt.timedelta(days=1), *demo_rows(DAY)[-1][2:]),
    ]
    with pytest.raises(LoadError, match="trade_date"):
        load(DAY, RowsPayload(rows=wrong_day, origin="second", adj_factors=factor_rows(DAY, Decimal(2))))
    assert (bars_digest(DAY, DAY), factors_of(DAY)) == before


@pytest.mark.django_db(transaction=True)
def test_a_factor_of_another_day_is_refused() -> None:
    stray = [*factor_rows(DAY, Decimal(1))[:-1], (STOCK, DAY + dt.timedelta(days=1), Decimal(1))]
    with pytest.raises(LoadError, match="1 row\\(s\\) have a trade_date other than 2025-09-10"):
        load(DAY, RowsPayload(rows=demo_rows(DAY), origin="x", adj_factors=stray))
    assert not AdjFactor.objects.exists() and not DailyBar.objects.exists()


@pytest.fixture
def ex_rights_week(fake: FakeTushareServer) -> None:
    """2025-09-08 to 12 loaded from the fake with factors (000021.SZ ex-rights on the 10th)."""
    for offset in range(5):
        day = dt.date(2025, 9, 8) + dt.timedelta(days=offset)
        load(day, TushareSource(with_adj_factor=True).fetch_day(day))


# 000021.SZ's closes: 9-08 37.89, 9-09 38.15, 9-10 38.41; factors 28.977548 then 30.426426.
# hfq = close x factor; qfq = close x factor / 30.426426 (the latest), both rounded to 4 places.
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("ex_rights_week")
def test_hfq_and_qfq_match_hand_computed_prices_around_the_ex_rights_day() -> None:
    start, end = dt.date(2025, 9, 8), dt.date(2025, 9, 10)
    hfq = adjusted_bars(STOCK, start, end, PriceAdjustment.HFQ)
    qfq = adjusted_bars(STOCK, start, end, PriceAdjustment.QFQ)
    raw = adjusted_bars(STOCK, start, end, PriceAdjustment.NONE)
    assert [bar.close for bar in hfq] == [Decimal("1097.9593"), Decimal("1105.4935"), Decimal("1168.6790")]
    assert [bar.close for bar in qfq] == [Decimal("36.0857"), Decimal("36.3333"), Decimal("38.4100")]
    assert [bar.close for bar in raw] == [Decimal("37.89"), Decimal("38.15"), Decimal("38.41")]
    assert qfq[1].open == Decimal("36.7905")  # 38.63 x 28.977548 / 30.426426
    assert [bar.adj_factor for bar in qfq] == [BEFORE, BEFORE, AFTER]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("ex_rights_week")
def test_the_bars_command_prints_adjusted_prices() -> None:
    code, text = run_command(
        "bars", "--ts-code", STOCK, "--start", "2025-09-09", "--end", "2025-09-10", "--adjust", "qfq"
    )
    assert code == 0, text
    lines = text.splitlines()
    assert lines[0].split() == ["trade_date", "open", "high", "low", "close", "raw", "close", "adj_factor"]
    assert lines[1].split()[0] == "2025-09-09" and lines[1].split()[4:] == ["36.3333", "38.1500", "28.977548"]
    assert lines[2].split()[4:] == ["38.4100", "38.4100", "30.426426"]


@pytest.mark.django_db
def test_a_day_without_a_factor_has_no_adjusted_price() -> None:
    load(DAY, RowsPayload(rows=demo_rows(DAY), origin="no factors"))
    (bar,) = adjusted_bars(STOCK, DAY, DAY, PriceAdjustment.HFQ)
    assert (bar.close, bar.adj_factor, bar.raw_close) == (None, None, Decimal("38.41"))


@pytest.mark.django_db
def test_an_unknown_mode_or_a_reversed_range_is_refused() -> None:
    with translation.override("en"):
        with pytest.raises(InvalidJobRequest, match="adjust must be one of: none, qfq, hfq"):
            adjusted_bars(STOCK, DAY, DAY, "forward")
        with pytest.raises(InvalidJobRequest, match="end_date must not be before start_date"):
            adjusted_bars(STOCK, DAY, DAY - dt.timedelta(days=1))


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_acceptance_september_with_factors_two_workers_under_120_calls_a_minute(
    fake: FakeTushareServer, settings: Any
) -> None:
    """Issue 13's acceptance run: 22 days x 5,500 bars and their factors, 44 calls, not one throttled.

    The fake counts its limit over 20 s windows (40 calls each, 120/min scaled), so the run's 44
    calls cross a full window: a burst of the two workers would be answered 40203.
    """
    settings.BATCHSYNC = {**settings.BATCHSYNC, "TUSHARE_CALLS_PER_MINUTE": 120}
    fake.config.per_minute, fake.config.window_seconds = 120, 20.0
    started = time.monotonic()
    code, text = run_command(
        "--start", "2025-09-01", "--end", "2025-09-30", "--source", "tushare", "--with-adj-factor",
        "--parallelism", "2",
    )  # fmt: skip
    elapsed = time.monotonic() - started
    assert code == 0, text
    job = SyncJob.objects.get()
    assert (job.status, job.success_days, job.rows_loaded) == (SyncJobStatus.SUCCEEDED, 22, 22 * 5500)
    assert (fake.counters.calls, fake.counters.answered, fake.counters.throttled) == (44, 44, 0)
    september = dict(
        AdjFactor.objects.filter(trade_date__month=9).values_list("trade_date").annotate(count=Count("*"))
    )
    bars = dict(DailyBar.objects.values_list("trade_date").annotate(count=Count("*")))
    assert len(september) == 22 and september == bars and set(bars.values()) == {5500}
    assert factors_of(dt.date(2025, 9, 30))["000001.SZ"] == Decimal("30.426426")  # its ex-rights day
    assert 43 * 60 / 120 <= elapsed < 40, elapsed  # paced by the shared limit, and fast enough


ADJUSTED_URL = "/api/v1/bars/adjusted"


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("ex_rights_week")
def test_the_api_answers_adjusted_bars_in_the_envelope() -> None:
    client = token_client(make_user("viewer", "view_syncjob"))
    query = {"ts_code": STOCK, "start_date": "2025-09-09", "end_date": "2025-09-10", "adjust": "qfq"}
    answer = client.get(ADJUSTED_URL, query).json()
    assert answer["status"] == "success"
    assert [
        (bar["trade_date"], bar["close"], bar["raw_close"], bar["adj_factor"]) for bar in answer["data"]
    ] == [
        ("2025-09-09", "36.3333", "38.1500", "28.977548"),
        ("2025-09-10", "38.4100", "38.4100", "30.426426"),
    ]
    hfq = client.get(ADJUSTED_URL, {**query, "adjust": "hfq"}).json()["data"]
    assert [bar["close"] for bar in hfq] == ["1105.4935", "1168.6790"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"ts_code": "000001.SZ'; --"}, "ts_code"),
        ({"adjust": "forward"}, "adjust"),
        ({"start_date": "2025-09-11"}, "end_date"),
        ({"end_date": "2025/09/10"}, "end_date"),
    ],
)
def test_the_api_refuses_bad_queries_naming_the_parameter(changes: dict[str, str], field: str) -> None:
    client = token_client(make_user("viewer", "view_syncjob"))
    query = {"ts_code": STOCK, "start_date": "2025-09-09", "end_date": "2025-09-10", **changes}
    response = client.get(ADJUSTED_URL, query)
    assert response.status_code == 400
    assert response.json()["status"] == "error" and field in response.json()["errors"]


@pytest.mark.django_db
def test_the_api_needs_the_view_permission() -> None:
    query = {"ts_code": STOCK, "start_date": "2025-09-09", "end_date": "2025-09-10"}
    assert token_client(make_user("stranger")).get(ADJUSTED_URL, query).status_code == 403
