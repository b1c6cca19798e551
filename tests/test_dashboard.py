"""The /sync/ dashboard: login, permission, the running (or last) job in the seed's form, last 20 jobs."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.translation import override

from batchsync import calendars, services
from batchsync.models import SyncJob, SyncJobStatus, TradingCalendar
from batchsync.views import seed_status_block
from tests.factories import SyncErrorFactory, SyncJobFactory

DASHBOARD = "/sync/"
PANEL = "/sync/panel/"


@pytest.fixture
def follower(client: Client) -> Client:
    """A non-staff user who may only view jobs: the people the dashboard is for."""
    user = User.objects.create_user("follower", password="follow-pw-123")
    user.user_permissions.add(Permission.objects.get(codename="view_syncjob"))
    client.force_login(user)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def running_job(**fields: object) -> SyncJob:
    now = timezone.now()
    values: dict[str, object] = {
        "status": SyncJobStatus.RUNNING,
        "total_days": 10,
        "processed_days": 3,
        "success_days": 2,
        "skipped_days": 1,
        "current_date": dt.date(2025, 10, 3),
        "started_at": now - dt.timedelta(minutes=5),
        "running_since": now - dt.timedelta(minutes=5),
        "estimated_completion": now + dt.timedelta(minutes=10),
        "start_date": dt.date(2025, 10, 1),
        "end_date": dt.date(2025, 10, 10),
        **fields,
    }
    job: SyncJob = SyncJobFactory.create(**values)
    return job


@pytest.mark.django_db
def test_dashboard_needs_a_login_and_the_view_permission(client: Client) -> None:
    response = client.get(DASHBOARD)
    assert response.status_code == 302 and response["Location"] == "/sync/login/?next=/sync/"
    assert client.get(PANEL).status_code == 401
    User.objects.create_user("nobody", password="nobody-pw-123")
    login = client.post("/sync/login/?next=/sync/", {"username": "nobody", "password": "nobody-pw-123"})
    assert login.status_code == 302 and login["Location"] == "/sync/"
    assert client.get(DASHBOARD).status_code == 403
    assert client.get(PANEL).status_code == 403


@pytest.mark.django_db
def test_a_non_staff_follower_logs_in_on_the_dashboards_own_form(client: Client) -> None:
    user = User.objects.create_user("follower", password="follow-pw-123")
    user.user_permissions.add(Permission.objects.get(codename="view_syncjob"))
    page = client.get("/sync/login/?next=/sync/")
    assert page.status_code == 200 and 'name="password"' in page.content.decode()
    response = client.post(
        "/sync/login/", {"username": "follower", "password": "follow-pw-123", "next": "/sync/"}
    )
    assert response.status_code == 302 and response["Location"] == "/sync/"
    assert client.get(DASHBOARD).status_code == 200
    assert client.post("/sync/logout/").status_code == 302
    assert client.get(DASHBOARD).status_code == 302


@pytest.mark.django_db
def test_dashboard_follows_the_running_job_in_the_seeds_form(follower: Client) -> None:
    for days_ago in range(25):
        SyncJobFactory.create(created_at=timezone.now() - dt.timedelta(days=days_ago + 1))
    job = running_job(created_at=timezone.now() - dt.timedelta(days=30))  # oldest, but running
    SyncErrorFactory.create(job=job, date=dt.date(2025, 10, 2), error="connection timeout")
    html = follower.get(DASHBOARD).content.decode()
    block = re.search(r'<pre class="bs-seed" id="bs-seed">(.*?)</pre>', html, re.S)
    assert block is not None
    eta = timezone.localtime(job.estimated_completion).strftime("%H:%M:%S")
    lines = block.group(1).splitlines()
    assert lines[0] == "🔄 Syncing 2025-10-03... (30.0%)"
    assert lines[1:4] == [
        "Progress: 3/10 (30.0%)",
        "Succeeded: 2, failed: 0, skipped: 1",
        f"Estimated completion: {eta}",
    ]
    assert lines[4:] == ["", "⚠️ Recent errors:", "  2025-10-02: connection timeout"]
    assert "Running job" in html and job.task_id in html
    # The seed's block keeps its form; the bar and the headline are days loaded of days to load.
    assert 'style="width: 22.2%"' in html
    assert "loaded 2 of 9 to load · 1 skipped" in html
    assert 'id="bs-current-success">2<' in html and 'id="bs-current-failed">0<' in html
    # The last 20 jobs, newest first, with their outcome; not the 21st.
    rows = re.findall(r'<tr data-task-id="([^"]+)">', html)
    expected = [j.task_id for j in SyncJob.objects.order_by("-created_at", "-id")[:20]]
    assert rows == expected and job.task_id not in rows
    assert "Batch sync finished: 0 succeeded, 0 failed, 0 skipped" in html
    # Not staff: no links into the admin.
    assert "/admin/" not in html


@pytest.mark.django_db
def test_dashboard_shows_the_last_job_when_none_runs(follower: Client) -> None:
    SyncJobFactory.create(created_at=timezone.now() - dt.timedelta(hours=2))
    last = SyncJobFactory.create(
        status=SyncJobStatus.FAILED,
        total_days=9,
        processed_days=9,
        success_days=5,
        failed_days=1,
        skipped_days=3,
        started_at=timezone.now() - dt.timedelta(minutes=16),
        active_seconds=930,
    )
    html = follower.get(DASHBOARD).content.decode()
    assert "Last job" in html
    block = re.search(r'<pre class="bs-seed" id="bs-seed">(.*?)</pre>', html, re.S)
    assert block is not None
    assert block.group(1).splitlines()[0] == (
        "❌ Batch sync finished: 5 succeeded, 1 failed, 3 skipped, took 15m 30s"
    )
    assert last.task_id in html
    assert follower.get(PANEL).content.decode().count('<tr data-task-id="') == 2


@pytest.mark.django_db
def test_dashboard_with_no_job_yet(follower: Client) -> None:
    html = follower.get(DASHBOARD).content.decode()
    assert 'id="bs-no-jobs"' in html


@pytest.mark.django_db
def test_panel_is_the_live_fragment_and_staff_get_admin_links(admin_client: Client) -> None:
    job = running_job()
    html = admin_client.get(PANEL, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert html.startswith('<div class="bs-dashboard-panel" data-active="1" data-status="running">')
    assert "<html" not in html
    assert f'href="/admin/batchsync/syncjob/{job.pk}/change/"' in html
    page = admin_client.get(DASHBOARD).content.decode()
    assert 'data-panel-url="/sync/panel/"' in page and "batchsync/dashboard.js" in page


@pytest.mark.django_db
def test_dashboard_queries_do_not_grow_with_jobs_or_errors(follower: Client) -> None:
    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert follower.get(PANEL).status_code == 200
        return len(queries)

    job = running_job()
    SyncJobFactory.create_batch(3)
    few = count()
    SyncJobFactory.create_batch(30)
    SyncErrorFactory.create_batch(10, job=job)
    assert count() == few


@pytest.mark.django_db
def test_seed_block_in_chinese_matches_the_seeds_text() -> None:
    job = running_job()
    errors = [SyncErrorFactory.create(job=job, date=dt.date(2025, 10, 2), error="connection timeout")]
    eta = timezone.localtime(job.estimated_completion).strftime("%H:%M:%S")
    with override("zh-hans"):
        block = seed_status_block(job, errors)
    assert block.splitlines() == [
        "🔄 正在同步 2025-10-03... (30.0%)",
        "进度: 3/10 (30.0%)",
        "成功: 2, 失败: 0, 跳过: 1",
        f"预计完成: {eta}",
        "",
        "⚠️ 最近错误:",
        "  2025-10-02: connection timeout",
    ]


@pytest.mark.usefixtures("foreground")
@pytest.mark.django_db
def test_dashboard_follows_a_job_started_through_the_services(follower: Client) -> None:
    request = services.JobRequest(
        start_date=dt.date(2025, 10, 1), end_date=dt.date(2025, 10, 9), source="demo", source_options={}
    )
    job = services.sync_job_create(request)
    html = follower.get(PANEL).content.decode()
    assert 'data-active="1"' in html and job.task_id in html
    assert "Batch sync job started; 9 days to sync" in html


@pytest.mark.django_db
def test_dashboard_warns_while_the_calendar_ends_within_sixty_days(follower: Client) -> None:
    calendars.calendar_bounds("XSHG")  # stores it
    last = timezone.localdate() + dt.timedelta(days=20)
    TradingCalendar.objects.filter(name="XSHG").update(last_session=last)
    page = follower.get(DASHBOARD).content.decode()
    assert re.search(
        rf'<p class="bs-calendar-warning" role="alert">⚠️ The XSHG calendar ends on {last.isoformat()}, '
        r"in 20 days: jobs past it are refused until exchange_calendars is upgraded",
        page,
    )
    TradingCalendar.objects.filter(name="XSHG").update(last_session=last + dt.timedelta(days=60))
    assert "bs-calendar-warning" not in follower.get(DASHBOARD).content.decode()
