"""The job list's live rows: the `rows/` fragment endpoint and the list's scripts."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from batchsync.models import SyncJobStatus
from tests.factories import SyncJobFactory

pytestmark = pytest.mark.django_db
ROWS_URL = "/admin/batchsync/syncjob/rows/"


def test_rows_answers_the_live_cells_of_the_asked_jobs(admin_client: Client) -> None:
    running = SyncJobFactory.create(
        status=SyncJobStatus.RUNNING, total_days=4, processed_days=1, success_days=1
    )
    done = SyncJobFactory.create(status=SyncJobStatus.SUCCEEDED)
    SyncJobFactory.create(status=SyncJobStatus.QUEUED)  # not asked for
    body = admin_client.get(ROWS_URL, {"ids": f"{running.pk},{done.pk},x"}).json()
    assert set(body["rows"]) == {str(running.pk), str(done.pk)}
    row = body["rows"][str(running.pk)]
    assert row["active"] is True and body["rows"][str(done.pk)]["active"] is False
    assert set(row["cells"]) == {"live_status", "live_progress", "timing", "eta"}
    assert f'data-bs-job="{running.pk}" data-bs-active="1"' in row["cells"]["live_status"]
    assert 'style="width: 25.0%"' in row["cells"]["live_progress"]


def test_the_list_loads_its_live_scripts_and_marks_each_row(admin_client: Client) -> None:
    job = SyncJobFactory.create(status=SyncJobStatus.RUNNING)
    html = admin_client.get("/admin/batchsync/syncjob/").content.decode()
    for asset in ("batchsync/live_events.js", "batchsync/job_list.js", "batchsync/live.css"):
        assert asset in html
    assert f'data-bs-job="{job.pk}"' in html
    assert 'data-bs-events-url="/api/v1/sync-status/sync/batch/events"' in html


def test_rows_needs_the_view_permission(client: Client) -> None:
    User.objects.create_user("nobody", password="pw", is_staff=True)
    client.login(username="nobody", password="pw")
    assert client.get(ROWS_URL, {"ids": "1"}).status_code == 403
