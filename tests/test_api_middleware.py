"""Every /api/ answer is the JSON envelope with the right status: 405, 413, 500, deep bodies, odd pages."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.db import connection
from rest_framework.test import APIClient

from batchsync.models import SyncJob, SyncJobStatus
from tests.factories import SyncJobFactory
from tests.test_api import BATCH, SEED_TASK_ID, error_body, make_user, token_client


@pytest.fixture(autouse=True)
def _fresh_throttles() -> None:
    cache.clear()


@pytest.fixture
def root(db: None) -> APIClient:
    client = token_client(User.objects.create_superuser("root"))
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


@pytest.fixture
def job(db: None) -> SyncJob:
    created: SyncJob = SyncJobFactory.create(task_id=SEED_TASK_ID, status=SyncJobStatus.RUNNING)
    return created


@pytest.mark.parametrize(
    ("method", "url", "allowed"),
    [
        ("put", BATCH, {"GET", "POST"}),
        ("patch", BATCH, {"GET", "POST"}),
        ("delete", BATCH, {"GET", "POST"}),
        ("get", f"{BATCH}/{SEED_TASK_ID}/cancel", {"POST"}),
        ("delete", f"{BATCH}/{SEED_TASK_ID}/retry", {"POST"}),
        ("post", f"{BATCH}/progress/{SEED_TASK_ID}", {"GET"}),
        ("put", f"{BATCH}/{SEED_TASK_ID}/days", {"GET"}),
    ],
)
def test_a_wrong_method_is_405_with_allow_even_for_a_superuser(
    root: APIClient, job: SyncJob, method: str, url: str, allowed: set[str]
) -> None:
    response = getattr(root, method)(url, {}, format="json")
    error_body(response, 405)
    assert allowed <= {name.strip() for name in response["Allow"].split(",")}


def test_a_wrong_method_is_405_for_users_without_permissions_too(job: SyncJob) -> None:
    error_body(token_client(make_user("nobody")).put(BATCH, {}, format="json"), 405)


def test_a_body_nested_five_thousand_levels_deep_is_a_400(root: APIClient) -> None:
    body = '{"start_date": "2025-10-01", "end_date": "2025-10-09", "source_options": ' + "[" * 5000
    body += "]" * 5000 + "}"
    result = error_body(root.post(BATCH, body, content_type="application/json"), 400)
    assert "nested" in result["message"]
    assert SyncJob.objects.count() == 0


def test_a_body_over_the_upload_limit_is_a_413_in_the_envelope(root: APIClient, settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = json.dumps({"start_date": "2025-10-01", "end_date": "2025-10-09", "path": "x" * 2000})
    result = error_body(root.post(BATCH, body, content_type="application/json"), 413)
    assert "1000" in result["message"]
    assert SyncJob.objects.count() == 0


def test_an_unexpected_failure_is_a_500_in_the_envelope_with_a_request_id_and_no_traceback(
    root: APIClient, job: SyncJob, caplog: pytest.LogCaptureFixture
) -> None:
    # A real fault: the jobs table is gone (inside this test's transaction, rolled back after).
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE batchsync_syncjob RENAME TO batchsync_syncjob_away")
    with caplog.at_level(logging.ERROR, logger="batchsync.api"):
        response = root.get(f"{BATCH}/progress/{SEED_TASK_ID}")
    assert response.status_code == 500
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"status", "message", "request_id"} and body["status"] == "error"
    request_id = body["request_id"]
    assert request_id in body["message"] and response["X-Request-ID"] == request_id
    assert "Traceback" not in response.content.decode() and "batchsync_syncjob" not in body["message"]
    logged = [record for record in caplog.records if request_id in record.getMessage()]
    assert logged and logged[0].exc_info is not None  # the traceback is in the server's log
    assert "batchsync_syncjob" in caplog.text


def test_a_non_json_error_page_under_api_becomes_the_envelope(db: None, settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["good.example"]
    response = APIClient().get(BATCH, HTTP_HOST="evil.example")
    error_body(response, 400)
    assert response["Content-Type"].startswith("application/json")


def test_every_api_answer_carries_a_request_id(root: APIClient) -> None:
    ids = {root.get(BATCH)["X-Request-ID"], root.get(BATCH)["X-Request-ID"]}
    assert len(ids) == 2 and all(len(value) == 32 for value in ids)


def test_the_schema_documents_413_and_500_with_the_request_id(db: None) -> None:
    document = json.loads(
        APIClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").content
    )
    start = document["paths"]["/api/v1/sync-status/sync/batch"]["post"]["responses"]
    assert {"413", "500"} <= set(start)
    assert "request_id" in document["components"]["schemas"]["ErrorEnvelope"]["properties"]
