"""Findings are visible: the job's message, `batch_sync status`, the API (days list, /findings), the admin."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import translation

from batchsync.check_models import DayFinding
from batchsync.models import DailyBar, SyncError, SyncJob, SyncJobStatus
from tests.test_checks import DAY, EVE, bar, csv_text, day_rows, eve_rows

RANGE = ("--start", EVE.isoformat(), "--end", DAY.isoformat(), "--parallelism", "1")


def _command(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    code = 0
    try:
        call_command("batch_sync", *args, stdout=out, stderr=out)
    except SystemExit as exited:
        code = int(exited.code or 0)
    return code, out.getvalue()


@pytest.fixture
def warned_job(csv_dir: Path) -> SyncJob:
    """EVE clean, DAY with one pre_close that is not EVE's close: loaded, with a warning."""
    (csv_dir / f"{EVE:%Y%m%d}.csv").write_text(csv_text(eve_rows()))
    shifted = day_rows(**{"600001.SH": bar("600001.SH", DAY, "8.60", "8.40")})
    (csv_dir / f"{DAY:%Y%m%d}.csv").write_text(csv_text(shifted))
    code, out = _command("run", *RANGE, "--source", "csv", "--path", str(csv_dir))
    assert code == 0, out
    job = SyncJob.objects.get()
    assert (job.status, job.success_days, job.warning_days) == (SyncJobStatus.SUCCEEDED, 2, 1)
    return job


@pytest.mark.django_db(transaction=True)
def test_a_warned_day_loads_and_its_finding_shows_in_message_status_api_and_admin(
    warned_job: SyncJob, admin_client: Client
) -> None:
    with translation.override("en"):
        assert warned_job.message.endswith("; 1 day with warnings")
    with translation.override("zh-hans"):
        assert warned_job.message.endswith("1 天有警告")
    assert DailyBar.objects.filter(trade_date=DAY).count() == 3

    _, status = _command("status", warned_job.task_id)
    assert "findings               1 day(s) with warnings" in status
    example = "'600001.SH' (pre_close=8.40, previous_close=8.50)"
    assert f"  2025-10-09: pre_close_continuity (warn) 1 row(s), e.g. {example}" in status

    days = admin_client.get(reverse("sync-batch-days", kwargs={"task_id": warned_job.task_id})).json()
    by_date = {day["date"]: day for day in days["data"]["results"]}
    assert (by_date["2025-10-09"]["findings"], by_date["2025-10-09"]["finding_checks"]) == (
        1,
        ["pre_close_continuity"],
    )
    assert (by_date["2025-09-30"]["findings"], by_date["2025-09-30"]["finding_checks"]) == (0, [])

    url = reverse("findings")
    query = {
        "job": warned_job.task_id,
        "check": "pre_close_continuity",
        "start_date": "2025-10-01",
        "end_date": "2025-10-31",
    }
    found = admin_client.get(url, query).json()
    assert found["status"] == "success" and found["data"]["count"] == 1
    finding = found["data"]["results"][0]
    assert (
        finding["trade_date"],
        finding["check"],
        finding["severity"],
        finding["count"],
        finding["job"],
    ) == ("2025-10-09", "pre_close_continuity", "warn", 1, warned_job.task_id)
    assert finding["examples"][0]["ts_code"] == "600001.SH"
    assert admin_client.get(url, {"check": "high_low_range"}).json()["data"]["count"] == 0
    assert admin_client.get(url, {"end_date": "2025-10-08"}).json()["data"]["count"] == 0
    bad = admin_client.get(url, {"start_date": "2025-10-09", "end_date": "2025-10-01"})
    assert bad.status_code == 400 and "end_date" in bad.json()["errors"]
    assert admin_client.get(url, {"check": "nope"}).status_code == 400
    assert admin_client.get(url, {"job": "no-such-job"}).status_code == 404

    page = admin_client.get(
        reverse("admin:batchsync_syncjob_change", args=[warned_job.pk]), HTTP_ACCEPT_LANGUAGE="en"
    )
    html = page.content.decode()
    assert 'data-date="2025-10-09" data-state="succeeded" data-warnings="pre_close_continuity (1)"' in html
    assert html.count("bs-warned") == 1
    listing = admin_client.get(reverse("admin:batchsync_dayfinding_changelist"))
    assert listing.status_code == 200 and "pre_close_continuity" in listing.content.decode()
    detail = admin_client.get(
        reverse("admin:batchsync_dayfinding_change", args=[DayFinding.objects.get().pk]),
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert detail.status_code == 200 and "previous_close" in detail.content.decode()


@pytest.mark.django_db(transaction=True)
def test_an_error_day_fails_the_job_names_the_check_and_keeps_the_old_rows(
    warned_job: SyncJob, csv_dir: Path
) -> None:
    before = list(DailyBar.objects.filter(trade_date=DAY).order_by("ts_code").values_list("ts_code", "high"))
    path = csv_dir / f"{DAY:%Y%m%d}.csv"
    path.write_text(csv_text(day_rows(**{"600000.SH": {"high": "10.05"}})))
    code, out = _command(
        "run",
        "--start",
        DAY.isoformat(),
        "--end",
        DAY.isoformat(),
        "--source",
        "csv",
        "--path",
        str(csv_dir),
        "--force",
    )
    assert code == 1, out
    error = SyncError.objects.get(date=DAY)
    assert (error.file, error.line) == (str(path), 3)
    assert error.error.startswith(f"{path}: line 3, column high") and "high_low_range" in error.error
    assert "'600000.SH' (high=10.05, open=10.00, low=9.90, close=10.10)" in error.error
    after = list(DailyBar.objects.filter(trade_date=DAY).order_by("ts_code").values_list("ts_code", "high"))
    assert after == before
    assert list(DayFinding.objects.values_list("check_name", flat=True)) == ["pre_close_continuity"]  # kept
