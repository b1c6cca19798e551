"""Honest progress (issue 16, point 1): days loaded of days to load, skipped days apart, everywhere."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation
from rest_framework.test import APIClient

from batchsync import selectors, services
from batchsync.management.output import job_list_lines, job_status_lines
from batchsync.models import SyncDay, SyncDayStatus, SyncJob, SyncJobStatus
from tests.factories import SyncJobFactory

BATCH = "/api/v1/sync-status/sync/batch"


def paused_20_year_job(**fields: object) -> SyncJob:
    """A 20-year job paused with 11 days loaded: 7,305 days, 2,624 of them skipped (non-trading)."""
    values: dict[str, object] = {
        "status": SyncJobStatus.PAUSED,
        "start_date": dt.date(2005, 1, 1),
        "end_date": dt.date(2024, 12, 31),
        "total_days": 7305,
        "skipped_days": 2624,
        "success_days": 11,
        "processed_days": 2635,
        "started_at": timezone.now() - dt.timedelta(minutes=3),
        "active_seconds": 142.0,
        **fields,
    }
    return SyncJobFactory.create(**values)


TWENTY_YEARS = services.JobRequest(
    start_date=dt.date(2005, 1, 1), end_date=dt.date(2024, 12, 31), source="demo", source_options={}
)


def test_a_new_job_shows_nothing_loaded_although_its_skipped_days_are_processed() -> None:
    job = SyncJob(status=SyncJobStatus.PENDING, total_days=7305, skipped_days=2624, processed_days=2624)
    assert job.progress_percent == 35.9  # the seed's figure, kept for its clients
    assert (job.days_to_load, job.days_loaded, job.load_percent) == (4681, 0, 0.0)


def test_loaded_of_to_load_and_its_percent() -> None:
    job = SyncJob(
        status=SyncJobStatus.PAUSED, total_days=7305, skipped_days=2624, success_days=11, processed_days=2635
    )
    assert (job.days_to_load, job.days_loaded, job.days_left, job.load_percent) == (4681, 11, 4670, 0.2)
    nothing_to_load = SyncJob(status=SyncJobStatus.SUCCEEDED, total_days=9, skipped_days=9, processed_days=9)
    assert nothing_to_load.load_percent == 100.0
    with translation.override("en"):
        assert selectors.sync_job_load_summary(job) == "loaded 11 of 4,681 to load · 2,624 skipped"
        failed = SyncJob(total_days=10, success_days=6, failed_days=2, skipped_days=1, processed_days=9)
        assert selectors.sync_job_load_summary(failed) == "loaded 6 of 9 to load · 2 failed · 1 skipped"
    with translation.override("zh-hans"):
        assert selectors.sync_job_load_summary(job) == "已加载 11 / 待加载 4,681 天 · 跳过 2,624 天"


def test_the_paused_message_counts_loaded_days() -> None:
    job = SyncJob(
        status=SyncJobStatus.PAUSED, total_days=7305, skipped_days=2624, success_days=11, processed_days=2635
    )
    with translation.override("en"):
        assert job.message == "Paused with 11 of 4681 days loaded; resume to continue"
    with translation.override("zh-hans"):
        assert job.message == "已暂停：已加载 11 / 4681 天；恢复后继续"  # noqa: RUF001


@pytest.mark.django_db
def test_a_new_20_year_job_starts_at_0_percent_loaded() -> None:
    job = services.sync_job_create(TWENTY_YEARS)
    assert job.total_days == 7305 and job.skipped_days > 2400  # weekends and holidays
    assert job.progress_percent > 30  # the seed's figure counts the skipped days as done
    assert (job.days_loaded, job.load_percent) == (0, 0.0)
    assert job.days_to_load == job.total_days - job.skipped_days
    with translation.override("en"):
        assert job.message == "Batch sync job started; 7305 days to sync"  # a real start: the seed's


@pytest.mark.django_db
def test_after_resume_the_message_says_resumed_and_how_many_days_are_left() -> None:
    job = services.sync_job_create(TWENTY_YEARS)
    eleven = SyncDay.objects.filter(job=job, status=SyncDayStatus.PENDING).order_by("date")[:11]
    SyncDay.objects.filter(pk__in=list(eleven.values_list("pk", flat=True))).update(
        status=SyncDayStatus.SUCCEEDED, rows=5500
    )
    SyncJob.objects.filter(pk=job.pk).update(started_at=timezone.now())  # it ran before its pause
    paused = services.sync_job_pause(SyncJob.objects.get(pk=job.pk), requested_by="alice")
    assert paused.status == SyncJobStatus.PAUSED and paused.days_loaded == 11
    left = paused.days_to_load - 11
    with translation.override("en"):
        assert paused.message == f"Paused with 11 of {paused.days_to_load} days loaded; resume to continue"
    resumed = services.sync_job_resume(paused, requested_by="alice")
    assert resumed.status == SyncJobStatus.PENDING
    with translation.override("en"):
        assert resumed.message == f"Batch sync job resumed; {left} days left to load"
    with translation.override("zh-hans"):
        assert resumed.message == f"批量同步任务已恢复，还有 {left} 天待加载"  # noqa: RUF001


@pytest.mark.django_db
def test_the_api_adds_the_loaded_figures_beside_the_seeds_progress_percent(admin_user: User) -> None:
    job = paused_20_year_job()
    client = APIClient()
    client.force_authenticate(admin_user)
    data = client.get(f"{BATCH}/progress/{job.task_id}", HTTP_ACCEPT_LANGUAGE="en").json()["data"]
    assert data["progress_percent"] == 36.1  # unchanged for the seed's clients
    assert (data["days_to_load"], data["days_loaded"], data["load_percent"]) == (4681, 11, 0.2)
    assert data["load_summary"] == "loaded 11 of 4,681 to load · 2,624 skipped"
    listed = client.get(BATCH).json()["data"]["results"][0]
    assert listed["days_loaded"] == 11 and listed["load_percent"] == 0.2


@pytest.mark.django_db
def test_admin_list_page_and_dashboard_headline_loaded_of_to_load(admin_client: Client) -> None:
    admin_client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    job = paused_20_year_job()
    headline = "loaded 11 of 4,681 to load · 2,624 skipped"
    listing = admin_client.get(reverse("admin:batchsync_syncjob_changelist")).content.decode()
    assert headline in listing and 'style="width: 0.2%"' in listing
    page = admin_client.get(reverse("admin:batchsync_syncjob_change", args=[job.pk])).content.decode()
    assert (
        f'<p class="bs-load__headline" id="bs-load-summary" data-field="load_summary">{headline}</p>' in page
    )
    assert 'aria-valuenow="0.2"' in page  # the bar: loaded of to load, not 36.1 % processed
    dashboard = admin_client.get(reverse("sync-dashboard")).content.decode()
    assert f'<p class="bs-load__headline" id="bs-current-load">{headline}</p>' in dashboard
    assert 'id="bs-current-success">11</span> / 4681' in dashboard


@pytest.mark.django_db
def test_the_command_lists_and_prints_loaded_of_to_load() -> None:
    job = paused_20_year_job()
    lines = job_list_lines([job])
    assert lines[0].split() == [
        "task",
        "id",
        "status",
        "range",
        "days",
        "loaded",
        "to_load",
        "failed",
        "skipped",
        "progress",
    ]
    assert lines[1].split()[1:] == [
        "paused",
        "2005-01-01..2024-12-31",
        "7305",
        "11",
        "4681",
        "0",
        "2624",
        "0.2%",
    ]
    with translation.override("en"):
        status = job_status_lines(job)
    fields = dict(line.split(None, 1) for line in status if len(line.split(None, 1)) == 2)
    assert (
        fields["days_to_load"] == "4681" and fields["days_loaded"] == "11" and fields["load_percent"] == "0.2"
    )
    assert fields["load_summary"] == "loaded 11 of 4,681 to load · 2,624 skipped"


@pytest.mark.django_db
def test_the_command_status_shows_the_loaded_figures(capsys: pytest.CaptureFixture[str]) -> None:
    job = paused_20_year_job()
    call_command("batch_sync", "status", job.task_id)
    out = capsys.readouterr().out
    assert "load_summary" in out and "loaded 11 of 4,681 to load" in out
