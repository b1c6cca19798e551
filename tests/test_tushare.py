"""The tushare source against the fake server: paging, units, errors, the shared rate limit, the command."""

from __future__ import annotations

import datetime as dt
import io
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection

from batchsync import sources
from batchsync.exceptions import InvalidJobRequest, SourceError, SourceJobStop
from batchsync.models import SyncDay, SyncDayStatus, SyncError, SyncJob, SyncJobStatus
from batchsync.sources import tushare as tushare_module
from batchsync.sources.base import BAR_COLUMNS
from batchsync.sources.demo import demo_day_csv
from batchsync.sources.tushare import DayNotPublished, TushareSource
from batchsync.sources.tushare_fake import FakeTushareConfig, FakeTushareServer, fake_tushare_start
from tests.test_runner import bars_digest

TOKEN = "secret-token-0123456789"
DAY = dt.date(2025, 9, 1)


@pytest.fixture
def fake(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTushareServer]:
    """A fake server on a free port, the source pointed at it with its token, a high shared limit."""
    server = fake_tushare_start(FakeTushareConfig(token=TOKEN, per_minute=100_000))
    settings.BATCHSYNC = {
        **settings.BATCHSYNC,
        "TUSHARE_API_URL": server.url,
        "TUSHARE_CALLS_PER_MINUTE": 100_000,
        "SOURCE_RETRY_BACKOFF_SECONDS": 0.02,
    }
    monkeypatch.setenv("TUSHARE_TOKEN", TOKEN)
    yield server
    server.shutdown()
    server.server_close()


def demo_rows(day: dt.date) -> list[tuple[Any, ...]]:
    """The demo CSV of `day` as the typed rows the source must produce."""
    rows = []
    for line in demo_day_csv(day).decode().splitlines()[1:]:
        code, trade_date, *numbers = line.split(",")
        rows.append((code, dt.datetime.strptime(trade_date, "%Y%m%d").date(), *map(Decimal, numbers)))
    return rows


@pytest.mark.django_db(transaction=True)
def test_a_day_is_paged_whole_and_converted_to_our_columns(fake: FakeTushareServer) -> None:
    fake.config.row_cap = 2000
    payload = TushareSource().fetch_day(DAY)
    assert list(payload.rows) == demo_rows(DAY)
    assert fake.counters.answered == 3


@pytest.mark.django_db(transaction=True)
def test_an_empty_answer_is_not_published_yet_and_transient(fake: FakeTushareServer) -> None:
    fake.config.published_until = DAY
    with pytest.raises(DayNotPublished) as raised:
        TushareSource().fetch_day(DAY + dt.timedelta(days=1))
    assert raised.value.transient and "not published yet" in raised.value.message


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("setup", "kind", "transient", "text"),
    [
        ({"token": "other"}, SourceJobStop, False, "refused the token (code 40101"),
        ({"no_permission": True}, SourceJobStop, False, "no permission for the daily API (code 40203"),
        ({"per_minute": 1}, SourceError, True, "throttled by tushare (code 40203: 抱歉"),
        ({"fail_next": 1}, SourceError, True, "HTTP 500"),
    ],
)
def test_errors_are_mapped_to_stop_fail_or_retry(
    fake: FakeTushareServer, setup: dict[str, Any], kind: type[SourceError], transient: bool, text: str
) -> None:
    for name, value in setup.items():
        setattr(fake.config, name, value)
    if setup.get("per_minute") == 1:
        fake.config.window_seconds = 60.0
        TushareSource().fetch_day(DAY)  # the minute's one call
    with pytest.raises(kind) as raised:
        TushareSource().fetch_day(DAY)
    assert raised.value.transient is transient and text in raised.value.message
    assert TOKEN not in raised.value.message


@pytest.mark.django_db(transaction=True)
def test_timeouts_and_unreachable_servers_are_transient(fake: FakeTushareServer, settings: Any) -> None:
    settings.BATCHSYNC = {**settings.BATCHSYNC, "TUSHARE_API_URL": "http://127.0.0.1:9/dataapi"}
    with pytest.raises(SourceError) as raised:
        TushareSource().fetch_day(DAY)
    assert raised.value.transient and "unreachable" in raised.value.message


def test_a_missing_token_is_refused_before_a_job_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TUSHARE_TOKEN", raising=False)
    with pytest.raises(InvalidJobRequest, match="TUSHARE_TOKEN"):
        TushareSource().validate()


@pytest.mark.django_db(transaction=True)
def test_four_workers_share_one_limit_without_a_throttled_answer(
    fake: FakeTushareServer, settings: Any
) -> None:
    """600 calls/min in a 6 s window at the server; the shared limit keeps 4 threads just under it."""
    fake.config.per_minute, fake.config.window_seconds, fake.config.row_cap = 600, 6.0, 5
    settings.BATCHSYNC = {**settings.BATCHSYNC, "TUSHARE_CALLS_PER_MINUTE": 600}
    source = TushareSource()
    errors: list[BaseException] = []
    until = time.monotonic() + 8.0

    def call_until_done() -> None:
        try:
            while time.monotonic() < until:
                source._call("daily", BAR_COLUMNS, DAY, 0, "rate-test")
        except BaseException as error:  # surfaced by the assertion below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=call_until_done) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and fake.counters.throttled == 0
    times = fake.counters.call_times
    achieved = (len(times) - 1) / (times[-1] - times[0]) * 60.0
    assert 0.9 * 600 <= achieved <= 600


def run_command(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("batch_sync", *args, stdout=out, stderr=out)
    except SystemExit as exited:
        return int(exited.code or 0), out.getvalue()
    return 0, out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_batch_sync_loads_days_from_tushare_with_two_workers(fake: FakeTushareServer) -> None:
    fake.config.row_cap = 3000
    code, text = run_command(
        "--start", "2025-09-01", "--end", "2025-09-05", "--source", "tushare", "--parallelism", "2"
    )  # fmt: skip
    assert code == 0, text
    job = SyncJob.objects.get()
    assert (job.status, job.success_days, job.rows_loaded) == (SyncJobStatus.SUCCEEDED, 5, 5 * 5500)
    assert TOKEN not in str(job.source_options) and TOKEN not in text
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {', '.join(BAR_COLUMNS)} FROM daily_bar WHERE trade_date = %s ORDER BY ts_code", [DAY]
        )
        loaded = [tuple(row) for row in cursor.fetchall()]
    assert loaded == demo_rows(DAY)
    assert bars_digest(DAY, DAY + dt.timedelta(days=4))[0] == 5 * 5500
    assert fake.counters.answered == 10 and fake.counters.throttled == 0


@pytest.mark.django_db(transaction=True)
def test_a_bad_token_fails_the_job_once_clearly(fake: FakeTushareServer) -> None:
    fake.config.token = "the-right-one"
    code, text = run_command(
        "--start", "2025-09-01", "--end", "2025-09-05", "--source", "tushare", "--parallelism", "2"
    )  # fmt: skip
    assert code == 1, text
    job = SyncJob.objects.get()
    assert job.status == SyncJobStatus.FAILED
    errors = list(SyncError.objects.filter(job=job).values_list("error", flat=True))
    assert errors == ["tushare refused the token (code 40101: 您的token不对，请确认。); check TUSHARE_TOKEN"]  # noqa: RUF001
    assert set(SyncDay.objects.filter(job=job).values_list("status", flat=True)) == {SyncDayStatus.FAILED}
    assert fake.counters.calls <= 2  # one per worker at most, not one per day
    assert TOKEN not in text


@pytest.mark.django_db(transaction=True)
def test_a_day_not_published_yet_fails_retryably_and_keeps_its_old_rows(fake: FakeTushareServer) -> None:
    assert run_command("--start", "2025-09-02", "--end", "2025-09-02")[0] == 0  # demo bars first
    before = bars_digest(dt.date(2025, 9, 2), dt.date(2025, 9, 2))
    fake.config.published_until = DAY
    code, text = run_command("--start", "2025-09-01", "--end", "2025-09-02", "--source", "tushare", "--force")
    assert code == 1, text
    job = SyncJob.objects.order_by("-id").first()
    assert job is not None and (job.success_days, job.failed_days) == (1, 1)
    day = SyncDay.objects.get(job=job, date=dt.date(2025, 9, 2))
    assert "not published yet" in day.last_error
    assert bars_digest(dt.date(2025, 9, 2), dt.date(2025, 9, 2)) == before
    assert fake.counters.answered == 1 + 4  # the published day, then the first try and 3 retries


@pytest.mark.django_db(transaction=True)
def test_http_500_answers_are_retried_and_the_days_load(fake: FakeTushareServer) -> None:
    fake.config.fail_next = 2
    code, text = run_command("--start", "2025-09-01", "--end", "2025-09-02", "--source", "tushare")
    assert code == 0, text
    assert fake.counters.failed == 2 and bars_digest(DAY, dt.date(2025, 9, 2))[0] == 2 * 5500


def test_a_token_in_the_job_options_is_refused() -> None:
    with pytest.raises(InvalidJobRequest) as refused:
        sources.source_options_check("tushare", {"token": TOKEN})
    assert refused.value.field == "token" and TOKEN not in refused.value.message


@pytest.mark.django_db(transaction=True)
def test_a_slow_answer_past_the_timeout_is_transient(
    fake: FakeTushareServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tushare_module, "TIMEOUT_SECONDS", 0.2)
    fake.config.delay_seconds = 1.0
    with pytest.raises(SourceError) as raised:
        TushareSource().fetch_day(DAY)
    assert raised.value.transient and "unreachable" in raised.value.message
