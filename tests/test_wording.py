"""Wording (issue 16, point 8): labels that say what happens, sentences, units, dates, / and a favicon."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation

from batchsync import services
from batchsync.exceptions import InvalidTransition
from batchsync.models import SyncJob, SyncJobStatus
from batchsync.operations import OPERATIONS
from batchsync.templatetags.batchsync_display import format_duration
from tests.factories import SyncErrorFactory, SyncJobFactory

RETRY = OPERATIONS["retry"]


def finished_job(status: str, *, failed: int, pending: int) -> SyncJob:
    """A finished 10-day job: `failed` failed days, `pending` never run, the rest loaded."""
    return SyncJobFactory.create(
        status=status,
        total_days=10,
        failed_days=failed,
        success_days=10 - failed - pending,
        processed_days=10 - pending,
        current_date=dt.date(2025, 10, 5),
        started_at=timezone.now() - dt.timedelta(minutes=3),
        finished_at=timezone.now(),
        active_seconds=142.0,
    )


@pytest.mark.django_db
def test_retry_is_named_for_what_it_loads() -> None:
    with translation.override("en"):
        only_failed = finished_job(SyncJobStatus.FAILED, failed=2, pending=0)
        assert str(RETRY.label_for(only_failed)) == "Retry failed days"
        cancelled = finished_job(SyncJobStatus.CANCELLED, failed=1, pending=4)
        assert str(RETRY.label_for(cancelled)) == "Load remaining days"
        nothing_failed = finished_job(SyncJobStatus.CANCELLED, failed=0, pending=4)
        assert str(RETRY.label_for(nothing_failed)) == "Load remaining days"
        assert str(RETRY.action_label) == "Load remaining days of selected jobs"
    with translation.override("zh-hans"):
        assert str(RETRY.label_for(nothing_failed)) == "加载剩余日期"


@pytest.mark.django_db
def test_the_job_page_labels_its_retry_button_and_the_last_day_of_a_finished_job(
    admin_client: Client,
) -> None:
    admin_client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    cancelled = finished_job(SyncJobStatus.CANCELLED, failed=0, pending=4)
    html = admin_client.get(reverse("admin:batchsync_syncjob_change", args=[cancelled.pk])).content.decode()
    assert 'id="bs-op-retry">Load remaining days</button>' in html
    assert "Retry failed days" not in html
    # Finished: "last day worked on" (CSS shows it by the page's status), never "current date" alone.
    assert 'data-status="cancelled"' in html
    assert '<span class="bs-label-finished">last day worked on</span>' in html
    failed = finished_job(SyncJobStatus.FAILED, failed=2, pending=0)
    html = admin_client.get(reverse("admin:batchsync_syncjob_change", args=[failed.pk])).content.decode()
    assert 'id="bs-op-retry">Retry failed days</button>' in html
    # The list shows a day (under the progress bar) only while a job works on it.
    cancelled.current_date = cancelled.start_date
    cancelled.save(update_fields=["current_date"])
    listing = admin_client.get(reverse("admin:batchsync_syncjob_changelist")).content.decode()
    assert "bs-list-progress" in listing and "bs-list-current" not in listing
    SyncJobFactory.create(status=SyncJobStatus.RUNNING, current_date=dt.date(2025, 10, 7))
    listing = admin_client.get(reverse("admin:batchsync_syncjob_changelist")).content.decode()
    assert listing.count('<span class="bs-list-current">2025-10-07</span>') == 1


@pytest.mark.django_db
def test_a_refused_operation_says_where_the_job_stands_in_a_sentence() -> None:
    done = SyncJobFactory.create(status=SyncJobStatus.SUCCEEDED)
    with translation.override("en"), pytest.raises(InvalidTransition) as raised:
        services.sync_job_resume(done)
    assert raised.value.message == f"Cannot resume job {done.task_id}: it has already finished (succeeded)"
    queued = SyncJobFactory.create(status=SyncJobStatus.QUEUED)
    with translation.override("en"), pytest.raises(InvalidTransition) as raised:
        services.sync_job_resume(queued)
    assert raised.value.message.endswith(": it is queued behind the running job")
    with translation.override("zh-hans"), pytest.raises(InvalidTransition) as raised:
        services.sync_job_resume(done)
    assert raised.value.message == f"无法恢复任务 {done.task_id}：它已经结束（成功）"  # noqa: RUF001


def test_durations_are_in_the_pages_language() -> None:
    with translation.override("en"):
        assert [format_duration(s) for s in (3.24, 142, 3723)] == ["3.2s", "2m 22s", "1h 02m 03s"]
    with translation.override("zh-hans"):
        assert [format_duration(s) for s in (3.24, 142, 3723)] == ["3.2秒", "2分22秒", "1小时02分03秒"]


@pytest.mark.django_db
def test_the_chinese_dashboard_shows_chinese_units_and_an_empty_one_no_last_0_jobs(
    admin_client: Client,
) -> None:
    empty = admin_client.get(reverse("sync-dashboard"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Last 0 jobs" not in empty and "<h2>Jobs <span" in empty
    finished_job(SyncJobStatus.SUCCEEDED, failed=0, pending=0)
    chinese = admin_client.get(reverse("sync-dashboard"), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "2分22秒" in chinese and "2m 22s" not in chinese


@pytest.mark.django_db
def test_the_root_redirects_to_the_dashboard(client: Client) -> None:
    response = client.get("/")
    assert response.status_code == 302 and response["Location"] == reverse("sync-dashboard")


@pytest.mark.django_db
def test_admin_lists_show_times_in_iso_form(admin_client: Client) -> None:
    error = SyncErrorFactory.create(created_at=timezone.make_aware(dt.datetime(2026, 11, 29, 6, 16, 5)))
    html = admin_client.get(
        reverse("admin:batchsync_syncerror_changelist"), HTTP_ACCEPT_LANGUAGE="en"
    ).content.decode()
    assert "2026-11-29 06:16:05" in html and "2025-10-03" in html
    assert "a.m." not in html and "Nov. 29" not in html
    assert error.job.task_id in html


@pytest.mark.django_db
def test_every_page_links_the_favicon(admin_client: Client, client: Client) -> None:
    link = '<link rel="icon" href="/static/batchsync/favicon.svg" type="image/svg+xml">'
    job = SyncJobFactory.create()
    for url in (
        reverse("admin:batchsync_syncjob_changelist"),
        reverse("admin:batchsync_syncjob_change", args=[job.pk]),
        reverse("sync-dashboard"),
    ):
        assert link in admin_client.get(url).content.decode(), url
    assert link in client.get(reverse("sync-login")).content.decode()
    icon = client.get("/static/batchsync/favicon.svg")
    assert icon.status_code == 200 and b"<svg" in b"".join(icon.streaming_content)  # type: ignore[attr-defined]
    assert User.objects.count() == 1
