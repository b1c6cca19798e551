"""A queued job's place: the selector, the API's progress fields, the command's status, the admin pages."""

from __future__ import annotations

import datetime as dt
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from batchsync import services
from batchsync.models import SyncJob, SyncJobStatus
from batchsync.queue_selectors import sync_job_queue_place
from tests.factories import SyncJobFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("foreground")]
S = SyncJobStatus


def create_job(start: dt.date, end: dt.date, *, queue: bool = False, priority: int = 0) -> SyncJob:
    request = services.JobRequest(
        start_date=start, end_date=end, source="demo", source_options={}, queue=queue, priority=priority
    )
    return services.sync_job_create(request)


@pytest.fixture
def running_and_queued() -> tuple[SyncJob, SyncJob, SyncJob]:
    """A pending job holds the slot; two jobs wait, the later one with a higher priority."""
    holder = create_job(dt.date(2025, 10, 9), dt.date(2025, 10, 10))
    low = create_job(dt.date(2025, 10, 13), dt.date(2025, 10, 13), queue=True)
    high = create_job(dt.date(2025, 10, 14), dt.date(2025, 10, 14), queue=True, priority=5)
    assert (holder.status, low.status, high.status) == (S.PENDING, S.QUEUED, S.QUEUED)
    return holder, low, high


def test_a_queued_jobs_place_follows_priority_then_age(running_and_queued: tuple[SyncJob, ...]) -> None:
    holder, low, high = running_and_queued
    assert sync_job_queue_place(holder) is None
    high_place, low_place = sync_job_queue_place(high), sync_job_queue_place(low)
    assert high_place is not None and low_place is not None
    assert (high_place.position, high_place.length, high_place.holder_id) == (1, 2, holder.pk)
    assert (low_place.position, low_place.length) == (2, 2)
    assert low_place.as_fields() == {"queue_position": 2, "queue_length": 2, "queued_behind": holder.task_id}


def test_the_progress_api_and_the_status_command_show_the_place(
    running_and_queued: tuple[SyncJob, ...], admin_client: Client
) -> None:
    holder, low, _ = running_and_queued
    data = admin_client.get(f"/api/v1/sync-status/sync/batch/progress/{low.task_id}").json()["data"]
    assert (data["queue_position"], data["queue_length"], data["queued_behind"]) == (2, 2, holder.task_id)
    data = admin_client.get(f"/api/v1/sync-status/sync/batch/progress/{holder.task_id}").json()["data"]
    assert (data["queue_position"], data["queue_length"], data["queued_behind"]) == (None, None, None)
    out = StringIO()
    call_command("batch_sync", "status", low.task_id, stdout=out)
    lines = out.getvalue().splitlines()
    assert "queue_position         2" in lines
    assert f"queued_behind          {holder.task_id}" in lines


def test_the_job_page_shows_the_place_and_links_the_job_it_waits_behind(
    running_and_queued: tuple[SyncJob, ...], admin_client: Client
) -> None:
    holder, low, _ = running_and_queued
    page = admin_client.get(
        f"/admin/batchsync/syncjob/{low.pk}/change/", HTTP_ACCEPT_LANGUAGE="en"
    ).content.decode()
    assert 'id="bs-queue-place"' in page and "place 2 of 2" in page
    assert (
        f'<a href="/admin/batchsync/syncjob/{holder.pk}/change/" id="bs-queued-behind">{holder.task_id}</a>'
        in page
    )


def start_form(**overrides: Any) -> dict[str, Any]:
    return {
        "start_date": "2025-10-15",
        "end_date": "2025-10-16",
        "source": "demo",
        "reprocess": "failed",
        "parallelism": 1,
        "priority": 0,
        **overrides,
    }


def test_a_refused_start_links_the_blocking_job_and_queues_behind_it(admin_client: Client) -> None:
    holder = create_job(dt.date(2025, 10, 9), dt.date(2025, 10, 10))
    refused = admin_client.post("/admin/batchsync/syncjob/add/", start_form(_start="1")).content.decode()
    assert (
        f'<a href="/admin/batchsync/syncjob/{holder.pk}/change/" class="bs-blocking-job">{holder.task_id}</a>'
        in refused
    )
    assert 'id="bs-start-queue"' in refused
    assert SyncJob.objects.count() == 1
    queued = admin_client.post("/admin/batchsync/syncjob/add/", start_form(_queue="1", priority=7))
    job = SyncJob.objects.latest("created_at")
    assert queued.status_code == 302 and queued["Location"] == f"/admin/batchsync/syncjob/{job.pk}/change/"
    assert (job.status, job.priority) == (S.QUEUED, 7)


def test_retry_while_another_job_runs_is_offered_queued_with_a_priority(admin_client: Client) -> None:
    finished = SyncJobFactory.create(
        status=S.FAILED, start_date=dt.date(2025, 10, 9), end_date=dt.date(2025, 10, 9)
    )
    holder = create_job(dt.date(2025, 10, 13), dt.date(2025, 10, 13))
    page = admin_client.get(f"/admin/batchsync/syncjob/{finished.pk}/change/").content.decode()
    assert 'id="bs-retry-queue"' in page
    assert f'<a href="/admin/batchsync/syncjob/{holder.pk}/change/" id="bs-retry-blocker">' in page
    control = f"/admin/batchsync/syncjob/{finished.pk}/control/retry/"
    refused = admin_client.post(control, follow=True).content.decode()
    assert f'class="bs-blocking-job">{holder.task_id}</a>' in refused
    answer = admin_client.post(control, {"queue": "on", "priority": "9"})
    retry = SyncJob.objects.get(retry_of=finished)
    assert answer["Location"] == f"/admin/batchsync/syncjob/{retry.pk}/change/"
    assert (retry.status, retry.priority) == (S.QUEUED, 9)


def test_the_api_retry_takes_a_priority(admin_client: Client) -> None:
    finished = SyncJobFactory.create(
        status=S.FAILED, start_date=dt.date(2025, 10, 9), end_date=dt.date(2025, 10, 9)
    )
    create_job(dt.date(2025, 10, 13), dt.date(2025, 10, 13))
    answer = admin_client.post(
        f"/api/v1/sync-status/sync/batch/{finished.task_id}/retry",
        {"queue": True, "priority": 3},
        content_type="application/json",
    )
    assert answer.status_code == 200, answer.content
    assert answer.json()["data"]["queue_position"] == 1
    assert SyncJob.objects.get(retry_of=finished).priority == 3


def test_the_job_list_reads_every_queued_jobs_place_in_its_own_query(admin_client: Client) -> None:
    holder = create_job(dt.date(2025, 10, 9), dt.date(2025, 10, 9))

    def listed() -> tuple[int, dict[str, Any]]:
        with CaptureQueriesContext(connection) as captured:
            body = admin_client.get("/api/v1/sync-status/sync/batch").json()
        places = {
            job["task_id"]: (job["queue_position"], job["queued_behind"]) for job in body["data"]["results"]
        }
        return len(captured.captured_queries), places

    first = create_job(dt.date(2025, 10, 10), dt.date(2025, 10, 10), queue=True)
    one_queued, places = listed()
    assert places[first.task_id] == (1, holder.task_id) and places[holder.task_id] == (None, None)
    later = [create_job(dt.date(2025, 10, 13), dt.date(2025, 10, 13), queue=True, priority=p) for p in (1, 2)]
    three_queued, places = listed()
    assert three_queued == one_queued
    assert [places[job.task_id][0] for job in (later[1], later[0], first)] == [1, 2, 3]


def test_the_lists_retry_action_links_the_running_job(admin_client: Client) -> None:
    finished = SyncJobFactory.create(
        status=S.FAILED, start_date=dt.date(2025, 10, 9), end_date=dt.date(2025, 10, 9)
    )
    holder = create_job(dt.date(2025, 10, 13), dt.date(2025, 10, 13))
    answer = admin_client.post(
        "/admin/batchsync/syncjob/",
        {"action": "retry_jobs", "_selected_action": [finished.pk]},
        follow=True,
    )
    assert (
        f'<a href="/admin/batchsync/syncjob/{holder.pk}/change/" class="bs-blocking-job">'
        in answer.content.decode()
    )
    assert not SyncJob.objects.filter(retry_of=finished).exists()
