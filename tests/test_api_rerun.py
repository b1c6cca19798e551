"""POST .../batch/<task_id>/rerun (batchsync/api/rerun.py): a new job of exactly the chosen days."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from batchsync import dispatch, services
from batchsync.models import SyncJob, SyncJobStatus
from tests.test_api import BATCH, error_body, make_user, token_client

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_throttles_and_foreground() -> Iterator[None]:
    cache.clear()
    with dispatch.handoff(foreground=True):
        yield


@pytest.fixture
def job() -> SyncJob:
    request = services.JobRequest(dt.date(2025, 9, 22), dt.date(2025, 9, 30), "demo", {})
    job = services.sync_job_create(request)
    return services.sync_job_cancel(job)


def rerun(client: APIClient, job: SyncJob, body: object) -> object:
    return client.post(f"{BATCH}/{job.task_id}/rerun", body, format="json")


def test_rerun_creates_a_job_of_exactly_the_chosen_days(job: SyncJob) -> None:
    changer = token_client(make_user("changer", "view_syncjob", "change_syncjob"))
    response = rerun(changer, job, {"days": ["2025-09-26", "2025-09-23"]})
    assert response.status_code == 200, response.content  # type: ignore[attr-defined]
    data = response.json()["data"]  # type: ignore[attr-defined]
    new = SyncJob.objects.get(task_id=data["task_id"])
    assert (data["retry_of"], data["reprocess"], data["total"], data["requested_by"]) == (
        job.task_id,
        "all",
        2,
        "changer",
    )
    assert sorted(new.days.values_list("date", flat=True)) == [dt.date(2025, 9, 23), dt.date(2025, 9, 26)]


def test_rerun_answers_409_while_a_job_runs_unless_queued(job: SyncJob) -> None:
    SyncJob.objects.filter(pk=job.pk).update(status=SyncJobStatus.RUNNING)
    changer = token_client(make_user("changer", "view_syncjob", "change_syncjob"))
    refused = rerun(changer, job, {"days": ["2025-09-23"]})
    assert refused.status_code == 409  # type: ignore[attr-defined]
    assert refused.json()["running_job"]["task_id"] == job.task_id  # type: ignore[attr-defined]
    response = rerun(changer, job, {"days": ["2025-09-23"], "queue": True})
    assert response.json()["data"]["status"] == "queued"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"days": []}, "days"),
        ({"days": ["2025-9-23"]}, "days"),
        ({"days": ["2025-10-01"]}, "days"),  # outside the job's range
        ({"days": ["2025-09-23"], "queue": "yes"}, "queue"),
        ({"days": ["2025-09-23"], "force": True}, "force"),
        ({}, "days"),
    ],
)
def test_rerun_refuses_bad_bodies_naming_the_field(job: SyncJob, body: dict[str, object], field: str) -> None:
    changer = token_client(make_user("changer", "view_syncjob", "change_syncjob"))
    answer = error_body(rerun(changer, job, body), 400)
    assert field in str(answer.get("errors", answer["message"])), answer


def test_rerun_needs_the_change_permission(job: SyncJob) -> None:
    viewer = token_client(make_user("viewer", "view_syncjob", "add_syncjob"))
    error_body(rerun(viewer, job, {"days": ["2025-09-23"]}), 403)
    error_body(rerun(viewer, SyncJob(task_id="2020-01-01_2020-01-02_1"), {"days": ["2020-01-01"]}), 403)
    assert SyncJob.objects.count() == 1
