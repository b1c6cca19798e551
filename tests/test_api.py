"""REST API: the seed's contract, job control, history, auth, validation, i18n, query counts."""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.core.cache import cache
from django.db import connection, connections
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.signing import SignedPackage
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from batchsync import dispatch, tasks
from batchsync.models import SyncDay, SyncDayStatus, SyncError, SyncJob, SyncJobStatus
from tests.factories import SyncDayFactory, SyncErrorFactory, SyncJobFactory

BATCH = "/api/v1/sync-status/sync/batch"
SEED_TASK_ID = "2025-10-01_2025-10-09_1697587200"
SEED_START_BODY = '{\n    "start_date": "2025-10-01",\n    "end_date": "2025-10-09"\n  }'

# The seed's two example responses, verbatim ("API完整示例").
SEED_START_RESPONSE: dict[str, Any] = {
    "status": "success",
    "data": {
        "task_id": "2025-10-01_2025-10-09_1697587200",
        "total_days": 9,
        "message": "批量同步任务已启动，将同步 9 天的数据",  # noqa: RUF001
    },
}
SEED_PROGRESS_RESPONSE: dict[str, Any] = {
    "status": "success",
    "data": {
        "status": "running",
        "total": 9,
        "current": 3,
        "success": 2,
        "failed": 0,
        "skipped": 1,
        "current_date": "2025-10-03",
        "message": "正在同步 2025-10-03... (33.3%)",
        "progress_percent": 33.3,
        "start_time": "2025-10-18T04:00:00",
        "estimated_completion": "2025-10-18T04:20:00",
        "errors": [],
    },
}
# The seed's "新增字段" and error item.
SEED_EXTRA_PROGRESS_FIELDS = {"end_time", "duration_seconds"}
SEED_ERROR_ITEM = {"date": "2025-10-03", "error": "connection timeout", "time": "2025-10-18T04:05:30"}


def shape(value: Any) -> Any:
    """The structure of a JSON value: keys and value types, not the values."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(item) for item in value[:1]]
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def make_user(username: str, *codenames: str) -> User:
    user = User.objects.create_user(username)
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="batchsync", codename__in=codenames)
    )
    return user


def token_client(user: User) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture(autouse=True)
def _fresh_throttles() -> None:
    cache.clear()


@pytest.fixture
def operator(db: None) -> APIClient:
    return token_client(make_user("operator", "view_syncjob", "add_syncjob", "change_syncjob"))


@pytest.fixture
def viewer(db: None) -> APIClient:
    return token_client(make_user("viewer", "view_syncjob"))


@pytest.fixture
def stranger(db: None) -> APIClient:
    return token_client(make_user("stranger"))


@pytest.fixture
def seed_job(db: None) -> SyncJob:
    """The seed's progress example as a real job: running, 3 of 9 days done, at 2025-10-03."""
    started = timezone.now() - dt.timedelta(minutes=5)
    job: SyncJob = SyncJobFactory.create(
        task_id=SEED_TASK_ID,
        status=SyncJobStatus.RUNNING,
        total_days=9,
        processed_days=3,
        success_days=2,
        skipped_days=1,
        current_date=dt.date(2025, 10, 3),
        started_at=started,
        running_since=started,
        estimated_completion=started + dt.timedelta(minutes=20),
    )
    # 10-01 skipped (a holiday), 10-02 and 10-03 loaded, 10-04 held by a live worker, rest pending.
    states = [SyncDayStatus.SKIPPED, SyncDayStatus.SUCCEEDED, SyncDayStatus.SUCCEEDED, SyncDayStatus.RUNNING]
    for offset in range(9):
        status = states[offset] if offset < len(states) else SyncDayStatus.PENDING
        SyncDayFactory.create(
            job=job,
            date=dt.date(2025, 10, 1) + dt.timedelta(days=offset),
            status=status,
            skip_reason="non_trading" if status == SyncDayStatus.SKIPPED else "",
            lease_expires_at=timezone.now() + dt.timedelta(hours=1)
            if status == SyncDayStatus.RUNNING
            else None,
        )
    return job


def error_body(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.content
    body: dict[str, Any] = response.json()
    assert body["status"] == "error"
    assert isinstance(body["message"], str) and body["message"]
    assert set(body) <= {"status", "message", "errors"}
    return body


# --- the seed's contract -----------------------------------------------------------------


def test_seed_start_example_replayed(operator: APIClient) -> None:
    response = operator.post(BATCH, SEED_START_BODY, content_type="application/json")
    assert response.status_code == 200
    body = response.json()
    assert shape(body) == shape(SEED_START_RESPONSE)
    assert re.fullmatch(r"2025-10-01_2025-10-09_\d+", body["data"]["task_id"])
    assert body["data"]["total_days"] == 9
    assert body["data"]["message"] == "批量同步任务已启动，将同步 9 天的数据"  # noqa: RUF001
    job = SyncJob.objects.get(task_id=body["data"]["task_id"])
    assert (job.status, job.source, job.requested_by) == (SyncJobStatus.PENDING, "demo", "operator")


def test_seed_progress_example_replayed(operator: APIClient, seed_job: SyncJob) -> None:
    response = operator.get(f"{BATCH}/progress/{SEED_TASK_ID}")
    assert response.status_code == 200
    body = response.json()
    data = body["data"]
    assert set(body) == {"status", "data"}
    assert set(SEED_PROGRESS_RESPONSE["data"]) | SEED_EXTRA_PROGRESS_FIELDS <= set(data)
    assert {key: shape(data[key]) for key in SEED_PROGRESS_RESPONSE["data"]} == shape(
        SEED_PROGRESS_RESPONSE["data"]
    )
    seed = SEED_PROGRESS_RESPONSE["data"]
    for key in ("status", "total", "current", "success", "failed", "skipped", "current_date", "message"):
        assert data[key] == seed[key], key
    assert data["progress_percent"] == 33.3
    assert data["task_id"] == SEED_TASK_ID
    for key in ("start_time", "estimated_completion"):
        assert dt.datetime.fromisoformat(data[key]).tzinfo is not None, key
    assert data["end_time"] is None
    assert data["duration_seconds"] >= 300


def test_seed_progress_errors_are_the_ten_newest(operator: APIClient, seed_job: SyncJob) -> None:
    base = timezone.now() - dt.timedelta(hours=1)
    for minute in range(12):
        SyncErrorFactory.create(
            job=seed_job, error=f"connection timeout {minute}", created_at=base + dt.timedelta(minutes=minute)
        )
    errors = operator.get(f"{BATCH}/progress/{SEED_TASK_ID}").json()["data"]["errors"]
    assert len(errors) == 10
    assert [error["error"] for error in errors] == [f"connection timeout {m}" for m in range(11, 1, -1)]
    assert shape(errors[0]) == shape(SEED_ERROR_ITEM)
    assert dt.datetime.fromisoformat(errors[0]["time"]).tzinfo is not None


def test_second_start_while_one_runs_is_the_seeds_409(operator: APIClient, seed_job: SyncJob) -> None:
    SyncJob.objects.filter(pk=seed_job.pk).update(
        worker_id="host:42:abcd", lease_expires_at=timezone.now() + dt.timedelta(seconds=45)
    )
    response = operator.post(BATCH, SEED_START_BODY, content_type="application/json")
    assert response.status_code == 409
    body = response.json()
    assert {key: body[key] for key in ("status", "message")} == {
        "status": "error",
        "message": "已有同步任务正在运行",
    }
    # The facts the command's refusal prints, as fields: the job, its progress, its worker, the ways on.
    running = body["running_job"]
    assert {
        key: running[key] for key in ("task_id", "status", "processed_days", "total_days", "worker_id")
    } == {
        "task_id": SEED_TASK_ID,
        "status": "running",
        "processed_days": 3,
        "total_days": 9,
        "worker_id": "host:42:abcd",
    }
    assert running["progress_percent"] == 33.3
    assert 10 <= running["worker_last_seen_seconds_ago"] <= 20  # a 60 s lease with 45 s left
    assert 40 <= running["takeover_in_seconds"] <= 45
    assert dt.datetime.fromisoformat(running["lease_expires_at"]) > timezone.now()
    assert any(f"resume {SEED_TASK_ID}" in way for way in running["ways_on"])
    assert SyncJob.objects.count() == 1


def test_progress_of_unknown_job_is_404_in_the_envelope(operator: APIClient) -> None:
    body = error_body(operator.get(f"{BATCH}/progress/2025-01-01_2025-01-02_1"), 404)
    assert "2025-01-01_2025-01-02_1" in body["message"]


def test_progress_accepts_the_numeric_id_and_huge_numbers_are_404(
    operator: APIClient, seed_job: SyncJob
) -> None:
    assert operator.get(f"{BATCH}/progress/{seed_job.pk}").json()["data"]["task_id"] == SEED_TASK_ID
    error_body(operator.get(f"{BATCH}/progress/{'9' * 30}"), 404)


def test_other_api_urls_are_404_in_the_envelope(operator: APIClient) -> None:
    error_body(operator.get("/api/v1/sync-status/sync/nothing/here"), 404)
    error_body(operator.get(f"{BATCH}/progress/has%2Fslash"), 404)
    error_body(operator.post(f"{BATCH}/line%0Abreak/cancel"), 404)  # no HTML page, no CSRF page


@pytest.mark.django_db(transaction=True)
def test_started_job_is_handed_to_the_cluster_and_its_progress_follows(settings: Any) -> None:
    """The start enqueues on django-q2 (ORM broker here); running that task finishes the job."""
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "orm": "default"}
    settings.Q_CLUSTER.pop("redis", None)
    client = token_client(make_user("operator", "view_syncjob", "add_syncjob", "change_syncjob"))
    broker = get_broker()
    broker.purge_queue()
    body = client.post(BATCH, SEED_START_BODY, content_type="application/json").json()
    job = SyncJob.objects.get(task_id=body["data"]["task_id"])
    queued = broker.dequeue()
    assert queued is not None and len(queued) == 1
    package = SignedPackage.loads(queued[0][1])
    assert (package["func"], package["args"]) == (dispatch.WORK_TASK, (job.pk,))
    broker.acknowledge(queued[0][0])

    tasks.sync_job_work(*package["args"])  # what a cluster worker does with the message

    data = client.get(f"{BATCH}/progress/{job.task_id}").json()["data"]
    assert (data["status"], data["total"], data["success"], data["skipped"]) == ("succeeded", 9, 1, 8)
    assert re.fullmatch(r"批量同步完成: 成功1, 失败0, 跳过8, 耗时\d+分\d+秒", data["message"])
    assert dt.datetime.fromisoformat(data["end_time"]).tzinfo is not None
    assert data["rows_loaded"] == 5500


@pytest.mark.django_db(transaction=True)
def test_concurrent_starts_create_exactly_one_job() -> None:
    clients = [
        token_client(make_user(f"op{n}", "view_syncjob", "add_syncjob", "change_syncjob")) for n in range(6)
    ]
    barrier = threading.Barrier(len(clients))
    codes: list[int] = []

    def start(client: APIClient) -> None:
        try:
            barrier.wait()
            response = client.post(BATCH, SEED_START_BODY, content_type="application/json")
            codes.append(response.status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=start, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(codes) == [200] + [409] * (len(clients) - 1)
    assert SyncJob.objects.count() == 1


# --- start options and validation --------------------------------------------------------


def test_parallelism_defaults_to_the_setting(operator: APIClient) -> None:
    with override_settings(BATCHSYNC={"DEFAULT_PARALLELISM": 3}):
        task_id = operator.post(BATCH, {"start_date": "2025-10-09", "end_date": "2025-10-09"}, format="json")
    data = operator.get(f"{BATCH}/progress/{task_id.json()['data']['task_id']}").json()["data"]
    assert data["parallelism"] == 3


def test_start_options_are_stored_on_the_job(operator: APIClient) -> None:
    body = {
        "start_date": "2025-10-08",
        "end_date": "2025-10-10",
        "source": "demo",
        "parallelism": 3,
        "priority": 7,
        "reprocess": "none",
    }
    task_id = operator.post(BATCH, body, format="json").json()["data"]["task_id"]
    data = operator.get(f"{BATCH}/progress/{task_id}").json()["data"]
    assert (data["source"], data["parallelism"], data["priority"], data["reprocess"]) == (
        "demo",
        3,
        7,
        "none",
    )
    assert (data["start_date"], data["end_date"], data["total"]) == ("2025-10-08", "2025-10-10", 3)


def test_force_means_reprocess_all_and_csv_path_reaches_the_source(
    operator: APIClient, csv_root: Any
) -> None:
    body = {"start_date": "2025-10-09", "end_date": "2025-10-09", "source": "csv", "path": str(csv_root)}
    task_id = operator.post(BATCH, {**body, "force": True}, format="json").json()["data"]["task_id"]
    job = SyncJob.objects.get(task_id=task_id)
    assert (job.reprocess, job.source_options) == ("all", {"path": str(csv_root.resolve())})


def test_tushare_takes_with_adj_factor_as_a_source_option(
    operator: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TUSHARE_TOKEN", "a-token")
    body = {"start_date": "2025-10-09", "end_date": "2025-10-09", "source": "tushare"}
    response = operator.post(BATCH, {**body, "source_options": {"with_adj_factor": True}}, format="json")
    job = SyncJob.objects.get(task_id=response.json()["data"]["task_id"])
    assert job.source_options == {"with_adj_factor": True}
    result = error_body(
        operator.post(BATCH, {**body, "source_options": {"with_adj_factor": "yes"}}, format="json"), 400
    )
    assert "with_adj_factor" in str(result["errors"]), result


def test_queue_true_queues_behind_the_running_job(operator: APIClient, seed_job: SyncJob) -> None:
    response = operator.post(BATCH, {"start_date": "2025-10-01", "end_date": "2025-10-02", "queue": True})
    assert response.status_code == 200
    data = response.json()["data"]
    assert set(data) == {"task_id", "total_days", "message"}
    assert data["message"] == "已排队，等待正在运行的任务完成"  # noqa: RUF001
    assert SyncJob.objects.get(task_id=data["task_id"]).status == SyncJobStatus.QUEUED


def test_dry_run_returns_the_plan_and_creates_nothing(operator: APIClient, seed_job: SyncJob) -> None:
    response = operator.post(BATCH, {**json.loads(SEED_START_BODY), "dry_run": True}, format="json")
    assert response.status_code == 200
    data = response.json()["data"]
    assert (data["dry_run"], data["total_days"], data["to_load"], data["skipped"]) == (True, 9, 1, 8)
    assert data["days"][0] == {
        "date": "2025-10-01",
        "action": "skip",
        "skip_reason": "non_trading",
        "loaded_from": "",
    }
    assert data["days"][-1] == {"date": "2025-10-09", "action": "load", "skip_reason": "", "loaded_from": ""}
    assert data["message"].startswith("试运行")
    assert SyncJob.objects.count() == 1


MISSING = object()
TOMORROW = (timezone.localdate() + dt.timedelta(days=1)).isoformat()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"start_date": "2025/10/01", "end_date": "2025-10-09"}, "start_date"),
        ({"start_date": "2025-10-01T00:00:00", "end_date": "2025-10-09"}, "start_date"),
        ({"start_date": MISSING}, "start_date"),
        ({"start_date": "2025-10-09", "end_date": "2025-10-01"}, "end_date"),
        ({"start_date": "2025-10-09", "end_date": TOMORROW}, "end_date"),
        ({"start_date": "1980-01-01", "end_date": "1980-01-05"}, "start_date"),
        ({"source": "nope"}, "source"),
        ({"source": "csv"}, "path"),
        ({"source": "csv", "path": "/no/such/directory"}, "path"),
        ({"source_options": {"self": "x"}}, "source_options"),
        ({"source_options": {"path": {"nested": 1}}}, "source_options.path"),
        ({"source_options": {"with_adj_factor": True}}, "with_adj_factor"),
        ({"parallelism": 0}, "parallelism"),
        ({"parallelism": 65}, "parallelism"),
        ({"parallelism": "many"}, "parallelism"),
        ({"priority": 5000}, "priority"),
        ({"reprocess": "bogus"}, "reprocess"),
        ({"force": True, "reprocess": "failed"}, "force"),
        ({"dry_run": "perhaps"}, "dry_run"),
        ({"status": "succeeded"}, "status"),
        ({"total_days": 1}, "total_days"),
        ({"task_id": "mine"}, "task_id"),
        ({"bogus": 1}, "bogus"),
    ],
)
def test_bad_start_is_400_naming_the_field(operator: APIClient, body: dict[str, Any], field: str) -> None:
    payload = {"start_date": "2025-10-01", "end_date": "2025-10-09", **body}
    payload = {key: value for key, value in payload.items() if value is not MISSING}
    result = error_body(operator.post(BATCH, payload, format="json"), 400)
    assert field in result["errors"], result
    assert field in result["message"]
    assert SyncJob.objects.count() == 0


def test_range_cap_is_the_setting(operator: APIClient, settings: Any) -> None:
    settings.BATCHSYNC = {**settings.BATCHSYNC, "MAX_RANGE_DAYS": 5}
    body = error_body(operator.post(BATCH, {"start_date": "2025-10-01", "end_date": "2025-10-06"}), 400)
    assert "end_date" in body["errors"] and "5" in body["message"]
    assert operator.post(BATCH, {"start_date": "2025-10-01", "end_date": "2025-10-05"}).status_code == 200


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        ("start_date=2025-10-01&end_date=2025-10-09", "application/x-www-form-urlencoded", 415),
        ('{"start_date": "2025-10-01",', "application/json", 400),
        ('["2025-10-01", "2025-10-09"]', "application/json", 400),
    ],
)
def test_bodies_that_are_not_a_json_object_are_refused(
    operator: APIClient, content: str, content_type: str, status: int
) -> None:
    error_body(operator.post(BATCH, content, content_type=content_type), status)


# --- control -----------------------------------------------------------------------------


def control(client: APIClient, task_id: str, operation: str, **extra: Any) -> Any:
    return client.post(f"{BATCH}/{task_id}/{operation}", extra.get("body", {}), format="json")


def test_cancel_pause_resume_answer_the_progress_shape(operator: APIClient) -> None:
    job = SyncJobFactory.create(status=SyncJobStatus.PENDING, total_days=0)
    progress_keys = set(operator.get(f"{BATCH}/progress/{job.task_id}").json()["data"])

    paused = control(operator, job.task_id, "pause")
    assert paused.status_code == 200
    assert set(paused.json()["data"]) == progress_keys
    assert paused.json()["data"]["status"] == "paused"
    resumed = control(operator, job.task_id, "resume").json()["data"]
    assert resumed["status"] == "pending"
    cancelled = control(operator, job.task_id, "cancel").json()["data"]
    assert cancelled["status"] == "cancelled"
    assert cancelled["end_time"] is not None


def test_running_job_cancels_after_the_day_in_flight(operator: APIClient, seed_job: SyncJob) -> None:
    data = control(operator, SEED_TASK_ID, "cancel").json()["data"]
    assert data["status"] == "cancelling"
    assert data["message"] == "当前日期完成后取消... (33.3%)"


@pytest.mark.parametrize(
    ("status", "operation"),
    [
        (SyncJobStatus.SUCCEEDED, "cancel"),
        (SyncJobStatus.CANCELLED, "pause"),
        (SyncJobStatus.RUNNING, "resume"),
        (SyncJobStatus.RUNNING, "retry"),
    ],
)
def test_transition_not_allowed_is_409(operator: APIClient, status: str, operation: str) -> None:
    job = SyncJobFactory.create(status=status)
    body = error_body(control(operator, job.task_id, operation), 409)
    assert job.task_id in body["message"]
    job.refresh_from_db()
    assert job.status == status


def test_retry_starts_a_new_job_over_the_same_range(operator: APIClient) -> None:
    old = SyncJobFactory.create(status=SyncJobStatus.FAILED, parallelism=2)
    response = control(operator, old.task_id, "retry", body={"reprocess": "all"})
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["task_id"] != old.task_id
    assert (data["retry_of"], data["status"], data["reprocess"], data["parallelism"]) == (
        old.task_id,
        "pending",
        "all",
        2,
    )
    assert data["requested_by"] == "operator"


@pytest.mark.parametrize("operation", ["cancel", "pause", "resume", "retry"])
def test_control_of_unknown_job_is_404(operator: APIClient, operation: str) -> None:
    error_body(control(operator, "2020-01-01_2020-01-02_1", operation), 404)


@pytest.mark.parametrize(
    ("operation", "field"), [("cancel", "force"), ("retry", "status"), ("retry", "reprocess")]
)
def test_control_body_is_validated(operator: APIClient, operation: str, field: str) -> None:
    job = SyncJobFactory.create(status=SyncJobStatus.FAILED)
    body = error_body(control(operator, job.task_id, operation, body={field: "bogus"}), 400)
    assert field in body["errors"]


# --- history, days, errors ---------------------------------------------------------------


def test_history_is_newest_first_filtered_and_paginated(operator: APIClient) -> None:
    now = timezone.now()
    old = SyncJobFactory.create(status=SyncJobStatus.SUCCEEDED, created_at=now - dt.timedelta(days=2))
    mid = SyncJobFactory.create(
        status=SyncJobStatus.FAILED,
        source="csv",
        start_date=dt.date(2024, 1, 1),
        end_date=dt.date(2024, 1, 31),
        created_at=now - dt.timedelta(days=1),
    )
    new = SyncJobFactory.create(status=SyncJobStatus.CANCELLED, created_at=now)

    def task_ids(query: str = "") -> list[str]:
        response = operator.get(f"{BATCH}{query}")
        assert response.status_code == 200, response.content
        return [job["task_id"] for job in response.json()["data"]["results"]]

    assert task_ids() == [new.task_id, mid.task_id, old.task_id]
    assert task_ids("?status=failed") == [mid.task_id]
    assert task_ids("?source=csv") == [mid.task_id]
    assert task_ids("?date=2024-01-15") == [mid.task_id]
    assert task_ids("?date=2025-10-05&status=succeeded") == [old.task_id]
    page = operator.get(f"{BATCH}?page_size=2&page=2").json()["data"]
    assert page["count"] == 3 and page["next"] is None and page["previous"] is not None
    assert [job["task_id"] for job in page["results"]] == [old.task_id]


@pytest.mark.parametrize(
    ("query", "status", "field"),
    [("?status=bogus", 400, "status"), ("?date=yesterday", 400, "date"), ("?page=99", 404, None)],
)
def test_history_bad_query_is_an_error(
    operator: APIClient, query: str, status: int, field: str | None
) -> None:
    SyncJobFactory.create()
    body = error_body(operator.get(f"{BATCH}{query}"), status)
    if field:
        assert field in body["errors"]


def test_days_are_in_order_filterable_and_paginated(operator: APIClient, seed_job: SyncJob) -> None:
    data = operator.get(f"{BATCH}/{SEED_TASK_ID}/days?page_size=4").json()["data"]
    assert data["count"] == 9
    assert [day["date"] for day in data["results"]] == [f"2025-10-0{n}" for n in range(1, 5)]
    assert set(data["results"][0]) == {
        "findings",
        "finding_checks",
        "date",
        "status",
        "skip_reason",
        "rows",
        "duration_seconds",
        "attempts",
        "last_error",
        "started_at",
        "finished_at",
        "lock_wait",
        "loaded_source",
        "loaded_rows",
        "loaded_checksum",
        "loaded_by_job",
        "loaded_at",
    }
    assert data["results"][0]["lock_wait"] is None  # see tests/test_sessions.py for a day that waits
    loaded = operator.get(f"{BATCH}/{SEED_TASK_ID}/days?status=succeeded").json()["data"]
    assert [day["date"] for day in loaded["results"]] == ["2025-10-02", "2025-10-03"]
    error_body(operator.get(f"{BATCH}/{SEED_TASK_ID}/days?status=bogus"), 400)
    error_body(operator.get(f"{BATCH}/nope_1/days"), 404)


def test_errors_lists_every_error_newest_first(operator: APIClient, seed_job: SyncJob) -> None:
    base = timezone.now() - dt.timedelta(hours=1)
    for minute in range(15):
        SyncErrorFactory.create(
            job=seed_job,
            error=f"e{minute}",
            file="/data/x.csv",
            line=minute + 1,
            created_at=base + dt.timedelta(minutes=minute),
        )
    data = operator.get(f"{BATCH}/{SEED_TASK_ID}/errors?page_size=10").json()["data"]
    assert data["count"] == 15
    assert [error["error"] for error in data["results"]] == [f"e{m}" for m in range(14, 4, -1)]
    assert data["results"][0]["file"] == "/data/x.csv" and data["results"][0]["line"] == 15
    error_body(operator.get(f"{BATCH}/nope_1/errors"), 404)


@pytest.mark.parametrize("superuser", [False, True])
def test_errors_never_show_tracebacks(db: None, seed_job: SyncJob, superuser: bool) -> None:
    SyncErrorFactory.create(
        job=seed_job, error="bad row", file="/data/x.csv", line=3, traceback='Traceback\n  File "/srv/app.py"'
    )
    user = User.objects.create_superuser("root") if superuser else make_user("viewer", "view_syncjob")
    client = token_client(user)
    for url in (f"{BATCH}/{SEED_TASK_ID}/errors", f"{BATCH}/progress/{SEED_TASK_ID}", BATCH):
        text = client.get(url).content.decode()
        assert "bad row" in text and "/srv/app.py" not in text and "traceback" not in text, url


# --- authentication, permissions, CSRF, throttling ---------------------------------------

READS = [
    BATCH,
    f"{BATCH}/progress/{SEED_TASK_ID}",
    f"{BATCH}/{SEED_TASK_ID}/days",
    f"{BATCH}/{SEED_TASK_ID}/errors",
]
WRITES = [BATCH] + [
    f"{BATCH}/{SEED_TASK_ID}/{operation}" for operation in ("cancel", "pause", "resume", "retry")
]
ALL = [("get", url) for url in READS] + [("post", url) for url in WRITES]


@pytest.mark.parametrize(("method", "url"), ALL)
def test_anonymous_is_401(db: None, seed_job: SyncJob, method: str, url: str) -> None:
    response = getattr(APIClient(), method)(url, json.loads(SEED_START_BODY), format="json")
    error_body(response, 401)
    assert response["WWW-Authenticate"] == "Token"
    assert SyncJob.objects.get().status == SyncJobStatus.RUNNING


def test_bad_token_is_401(db: None) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    error_body(client.get(BATCH), 401)


@pytest.mark.parametrize(("method", "url"), ALL)
def test_user_without_permissions_is_403(
    stranger: APIClient, seed_job: SyncJob, method: str, url: str
) -> None:
    error_body(getattr(stranger, method)(url, json.loads(SEED_START_BODY), format="json"), 403)


@pytest.mark.parametrize("url", READS)
def test_viewer_reads(viewer: APIClient, seed_job: SyncJob, url: str) -> None:
    assert viewer.get(url).status_code == 200


@pytest.mark.parametrize("url", WRITES)
def test_viewer_cannot_start_or_control(viewer: APIClient, seed_job: SyncJob, url: str) -> None:
    error_body(viewer.post(url, json.loads(SEED_START_BODY), format="json"), 403)
    assert SyncJob.objects.get().status == SyncJobStatus.RUNNING


def test_starter_without_change_permission_cannot_control(db: None, seed_job: SyncJob) -> None:
    client = token_client(make_user("starter", "view_syncjob", "add_syncjob"))
    error_body(control(client, SEED_TASK_ID, "cancel"), 403)


def test_superuser_may_do_everything(db: None, seed_job: SyncJob) -> None:
    client = token_client(User.objects.create_superuser("root"))
    assert control(client, SEED_TASK_ID, "pause").json()["data"]["status"] == "pausing"


def test_session_writes_need_the_csrf_token(db: None) -> None:
    user = make_user("browser", "view_syncjob", "add_syncjob", "change_syncjob")
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.get(BATCH).status_code == 200
    body = error_body(client.post(BATCH, json.loads(SEED_START_BODY), format="json"), 403)
    assert "CSRF" in body["message"]
    assert SyncJob.objects.count() == 0
    secret = "a" * 32
    client.cookies["csrftoken"] = secret
    response = client.post(BATCH, json.loads(SEED_START_BODY), format="json", HTTP_X_CSRFTOKEN=secret)
    assert response.status_code == 200


def test_starts_and_control_are_throttled_reads_are_not(operator: APIClient, settings: Any) -> None:
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"batchsync_start": "2/min", "batchsync_control": "1/min"},
    }
    dry_run = {**json.loads(SEED_START_BODY), "dry_run": True}
    assert [operator.post(BATCH, dry_run, format="json").status_code for _ in range(2)] == [200, 200]
    body = error_body(operator.post(BATCH, dry_run, format="json"), 429)
    assert re.search(r"\d", body["message"])
    assert all(operator.get(BATCH).status_code == 200 for _ in range(5))
    job = SyncJobFactory.create(status=SyncJobStatus.PAUSED)
    assert control(operator, job.task_id, "resume").status_code == 200
    error_body(control(operator, job.task_id, "pause"), 429)


# --- language ----------------------------------------------------------------------------


def test_messages_follow_accept_language(operator: APIClient, seed_job: SyncJob) -> None:
    english = operator.post(
        BATCH, SEED_START_BODY, content_type="application/json", HTTP_ACCEPT_LANGUAGE="en"
    )
    assert english.json()["message"] == "A sync job is already running"
    chinese = operator.post(
        BATCH, SEED_START_BODY, content_type="application/json", HTTP_ACCEPT_LANGUAGE="zh-CN"
    )
    assert chinese.json()["message"] == "已有同步任务正在运行"
    progress = operator.get(f"{BATCH}/progress/{SEED_TASK_ID}", HTTP_ACCEPT_LANGUAGE="en").json()["data"]
    assert progress["message"] == "Syncing 2025-10-03... (33.3%)"
    missing = {"end_date": "2025-10-09"}
    assert (
        "required"
        in operator.post(BATCH, missing, HTTP_ACCEPT_LANGUAGE="en").json()["errors"]["start_date"][0]
    )
    assert operator.post(BATCH, missing).json()["errors"]["start_date"] == ["该字段是必填项。"]
    assert operator.get(f"{BATCH}/progress/x_1", HTTP_ACCEPT_LANGUAGE="en").json()["message"] == (
        "No sync job with id x_1"
    )
    assert APIClient().get(BATCH, HTTP_ACCEPT_LANGUAGE="en").json()["message"] == (
        "Authentication credentials were not provided."
    )


def test_start_message_in_english(operator: APIClient) -> None:
    data = operator.post(BATCH, SEED_START_BODY, content_type="application/json", HTTP_ACCEPT_LANGUAGE="en")
    assert data.json()["data"]["message"] == "Batch sync job started; 9 days to sync"


# --- constant query counts ---------------------------------------------------------------


def queries(client: APIClient, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, response.content
    return len(captured.captured_queries)


def job_with(days: int, errors: int, retry_of: SyncJob | None = None) -> SyncJob:
    job: SyncJob = SyncJobFactory.create(
        status=SyncJobStatus.FAILED,
        start_date=dt.date(2024, 1, 1),
        end_date=dt.date(2024, 1, 1) + dt.timedelta(days=days - 1),
        total_days=days,
        processed_days=days,
        failed_days=days,
        retry_of=retry_of,
    )
    SyncDay.objects.bulk_create(
        SyncDay(job=job, date=job.start_date + dt.timedelta(days=n), status=SyncDayStatus.FAILED)
        for n in range(days)
    )
    SyncError.objects.bulk_create(
        SyncError(job=job, date=job.start_date, error=f"e{n}") for n in range(errors)
    )
    return job


def test_progress_query_count_does_not_grow_with_the_job(operator: APIClient) -> None:
    small = job_with(days=2, errors=0)
    large = job_with(days=400, errors=40, retry_of=small)
    counts = {queries(operator, f"{BATCH}/progress/{job.task_id}") for job in (small, large)}
    assert len(counts) == 1 and counts.pop() <= 6


def test_list_query_counts_do_not_grow_with_page_size(operator: APIClient) -> None:
    first = job_with(days=30, errors=12)
    for _ in range(12):
        job_with(days=3, errors=3, retry_of=first)
    for url in (BATCH, f"{BATCH}/{first.task_id}/days", f"{BATCH}/{first.task_id}/errors"):
        counts = {queries(operator, f"{url}?page_size={size}") for size in (2, 10, 100)}
        assert len(counts) == 1, (url, counts)
        assert counts.pop() <= 7, url
