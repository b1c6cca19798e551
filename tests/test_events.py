"""A job's timeline (issue 16, point 6): who did what, recorded by the services; cancel asks first."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation
from rest_framework.test import APIClient

from batchsync import runner, services
from batchsync.models import SyncJob, SyncJobEvent, SyncJobStatus
from tests.factories import SyncJobFactory

BATCH = "/api/v1/sync-status/sync/batch"
WEEK = (dt.date(2025, 10, 13), dt.date(2025, 10, 17))  # five trading days


def create_job(*, requested_by: str = "alice", queue: bool = False) -> SyncJob:
    request = services.JobRequest(
        start_date=WEEK[0],
        end_date=WEEK[1],
        source="demo",
        source_options={},
        requested_by=requested_by,
        queue=queue,
    )
    return services.sync_job_create(request)


def timeline(job: SyncJob) -> list[tuple[str, str, str]]:
    """(kind, actor, status it led to) of each event, oldest first."""
    return [
        (event.kind, event.actor, event.detail.get("status", ""))
        for event in SyncJobEvent.objects.timeline(job.pk)
    ]


@pytest.mark.django_db
def test_operator_transitions_record_who_made_them() -> None:
    job = create_job()
    services.sync_job_pause(job, requested_by="bob")
    services.sync_job_resume(job, requested_by="carol")
    services.sync_job_cancel(job, requested_by="dave")
    assert timeline(job) == [
        ("created", "alice", "pending"),
        ("paused", "bob", "paused"),
        ("resumed", "carol", "pending"),
        ("cancelled", "dave", "cancelled"),
    ]
    created = SyncJobEvent.objects.timeline(job.pk).first()
    assert created is not None and created.detail["to_load"] == 5 and created.detail["days"] == 5


@pytest.mark.django_db
def test_a_run_records_started_by_its_worker_and_finished_with_its_outcome(foreground: None) -> None:
    job = create_job()
    worker = runner.new_worker_id()
    finished = runner.sync_job_run(job.pk, worker_id=worker).job
    assert finished.status == SyncJobStatus.SUCCEEDED
    events = list(SyncJobEvent.objects.timeline(job.pk))
    assert [event.kind for event in events] == ["created", "started", "finished"]
    assert events[1].actor == f"worker {worker}"
    assert events[2].detail == {"status": "succeeded", "loaded": 5, "to_load": 5, "failed": 0, "skipped": 0}


@pytest.mark.django_db
def test_retry_queue_and_dequeue_are_on_the_timelines() -> None:
    running = create_job()
    queued = create_job(requested_by="erin", queue=True)
    assert queued.status == SyncJobStatus.QUEUED
    services.sync_job_cancel(running, requested_by="alice")  # frees the slot: the queued job moves up
    assert timeline(queued) == [
        ("created", "erin", "queued"),
        ("queued", "erin", ""),
        ("dequeued", "", "pending"),
    ]
    retry = services.sync_job_retry(running, requested_by="frank", queue=True)
    assert timeline(running)[-1] == ("retried", "frank", retry.status)
    assert SyncJobEvent.objects.timeline(running.pk).last().detail["new_job"] == retry.task_id  # type: ignore[union-attr]
    assert SyncJobEvent.objects.timeline(retry.pk).first().detail["retry_of"] == running.task_id  # type: ignore[union-attr]


@pytest.mark.django_db
def test_the_reaper_records_a_recovery_after_a_dead_worker() -> None:
    job = create_job()
    services.sync_job_join(job.pk, "gone-worker")
    SyncJob.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now() - dt.timedelta(minutes=5))
    recovered = services.sync_jobs_recover_stalled()
    assert [j.pk for j in recovered] == [job.pk]
    kinds = timeline(job)
    assert kinds[-1] == ("recovered", "reaper", "running")
    assert ("started", "worker gone-worker", "") in kinds


@pytest.mark.django_db
def test_admin_api_and_command_record_their_actor(admin_client: Client, admin_user: User) -> None:
    job = create_job()
    response = admin_client.post(
        reverse("admin:batchsync_syncjob_control", args=[job.pk, "pause"]), follow=True
    )
    assert response.status_code == 200
    api = APIClient()
    api.force_authenticate(admin_user)
    assert api.post(f"{BATCH}/{job.task_id}/resume", {}, format="json").status_code == 200
    call_command("batch_sync", "pause", job.task_id)
    assert [actor for _, actor, _ in timeline(job)] == ["alice", "admin", "admin", "cli"]


@pytest.mark.django_db
def test_the_api_serves_the_timeline(admin_user: User) -> None:
    job = create_job()
    services.sync_job_pause(job, requested_by="bob")
    api = APIClient()
    api.force_authenticate(admin_user)
    body = api.get(f"{BATCH}/{job.task_id}/timeline", HTTP_ACCEPT_LANGUAGE="en").json()
    assert body["status"] == "success" and body["data"]["count"] == 2
    paused = body["data"]["results"][1]
    assert {key: paused[key] for key in ("kind", "label", "actor", "detail", "text")} == {
        "kind": "paused",
        "label": "paused",
        "actor": "bob",
        "detail": {"status": "paused"},
        "text": "now paused",
    }
    assert api.get(f"{BATCH}/no-such-job/timeline").status_code == 404
    chinese = api.get(f"{BATCH}/{job.task_id}/timeline", HTTP_ACCEPT_LANGUAGE="zh-hans").json()
    assert chinese["data"]["results"][0]["label"] == "已创建"


@pytest.mark.django_db
def test_the_job_page_and_the_command_show_the_timeline(
    admin_client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    admin_client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    job = create_job()
    services.sync_job_pause(job, requested_by="bob")
    page = admin_client.get(reverse("admin:batchsync_syncjob_change", args=[job.pk])).content.decode()
    assert 'id="bs-timeline"' in page
    assert 'data-event="paused"' in page and "by bob" in page and "now paused" in page
    with translation.override("en"):
        call_command("batch_sync", "status", job.task_id)
    out = capsys.readouterr().out
    events = out[out.index("events:") :].splitlines()
    assert events[1].endswith("created by alice (now pending; 5 days to load)")
    assert events[2].endswith("paused by bob (now paused)")


@pytest.mark.django_db
def test_cancel_on_the_page_asks_first_and_cancels_only_when_confirmed(admin_client: Client) -> None:
    admin_client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    job = create_job()
    url = reverse("admin:batchsync_syncjob_control", args=[job.pk, "cancel"])
    asked = admin_client.post(url)
    html = asked.content.decode()
    assert asked.status_code == 200 and "Are you sure?" in html
    assert f"Cancel job {job.task_id}? Its workers stop after the day in flight" in html
    assert 'name="confirmed" value="1"' in html and 'id="bs-confirm-no"' in html
    assert SyncJob.objects.get(pk=job.pk).status == SyncJobStatus.PENDING
    assert not SyncJobEvent.objects.filter(job=job, kind="cancelled").exists()
    done = admin_client.post(url, {"confirmed": "1"})
    assert done.status_code == 302
    assert SyncJob.objects.get(pk=job.pk).status == SyncJobStatus.CANCELLED
    assert timeline(job)[-1] == ("cancelled", "admin", "cancelled")
    # Pause stops nothing for good: no question.
    other = SyncJobFactory.create(status=SyncJobStatus.PAUSED)
    resumed = admin_client.post(reverse("admin:batchsync_syncjob_control", args=[other.pk, "resume"]))
    assert resumed.status_code == 302


@pytest.mark.django_db
def test_the_timeline_fragment_polls_while_the_job_lives_and_stops_once_it_finished(
    admin_client: Client,
) -> None:
    admin_client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    job = create_job()
    url = reverse("admin:batchsync_syncjob_timeline", args=[job.pk])
    live = admin_client.get(url).content.decode()
    assert live.lstrip().startswith('<section class="bs-panel" id="bs-timeline" hx-get="')
    assert f'hx-get="{url}"' in live and 'data-event="created"' in live
    services.sync_job_cancel(job, requested_by="bob")
    finished = admin_client.get(url).content.decode()
    assert "hx-get" not in finished and 'data-event="cancelled"' in finished and "by bob" in finished
    page = admin_client.get(reverse("admin:batchsync_syncjob_change", args=[job.pk])).content.decode()
    assert "/static/batchsync/vendor/htmx-2.0.11.min.js" in page
    assert admin_client.get(reverse("admin:batchsync_syncjob_timeline", args=[987654])).status_code == 404
