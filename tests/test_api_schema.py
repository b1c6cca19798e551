"""The OpenAPI schema: complete, described, served offline, and true to the running API (schemathesis)."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import pytest
import schemathesis
from django.contrib.auth.models import User
from django.contrib.staticfiles import finders
from django.core.cache import cache
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.utils import timezone
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from schemathesis.config import SchemathesisConfig

from batchsync.models import SyncDayStatus, SyncJobStatus
from batchsync.services import alert_test_record
from tests.factories import SyncDayFactory, SyncErrorFactory, SyncJobFactory

SEED_TASK_ID = "2025-10-01_2025-10-09_1697587200"
# The superuser's token for schemathesis, known ahead so the schemathesis config can send it.
API_TOKEN = "schemathesis0000000000000000000000000001"
OPERATIONS = {
    ("get", "/api/v1/sync-status/sync/batch"),
    ("post", "/api/v1/sync-status/sync/batch"),
    ("get", "/api/v1/sync-status/sync/batch/progress/{task_id}"),
    ("get", "/api/v1/sync-status/sync/batch/progress/{task_id}/events"),
    ("get", "/api/v1/sync-status/sync/batch/events"),
    ("post", "/api/v1/sync-status/sync/batch/{task_id}/cancel"),
    ("post", "/api/v1/sync-status/sync/batch/{task_id}/pause"),
    ("post", "/api/v1/sync-status/sync/batch/{task_id}/resume"),
    ("post", "/api/v1/sync-status/sync/batch/{task_id}/retry"),
    ("post", "/api/v1/sync-status/sync/batch/{task_id}/rerun"),
    ("get", "/api/v1/sync-status/sync/batch/{task_id}/days"),
    ("get", "/api/v1/sync-status/sync/batch/{task_id}/errors"),
    ("get", "/api/v1/sync-status/sync/batch/{task_id}/timeline"),
    ("get", "/api/v1/bars/adjusted"),
    ("get", "/api/v1/findings"),
    ("post", "/api/v1/sync-status/verify/batch"),
    ("get", "/api/v1/sync-schedules"),
    ("post", "/api/v1/sync-schedules"),
    ("get", "/api/v1/sync-schedules/{name}"),
    ("patch", "/api/v1/sync-schedules/{name}"),
    ("delete", "/api/v1/sync-schedules/{name}"),
    ("post", "/api/v1/sync-schedules/{name}/pause"),
    ("post", "/api/v1/sync-schedules/{name}/resume"),
    ("post", "/api/v1/sync-schedules/{name}/run-now"),
    ("get", "/api/v1/alerts"),
}


def openapi(language: str = "en") -> dict[str, Any]:
    response = APIClient().get(
        "/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json", HTTP_ACCEPT_LANGUAGE=language
    )
    assert response.status_code == 200
    document: dict[str, Any] = json.loads(response.content)
    return document


def test_schema_lists_every_endpoint_with_a_description(db: None) -> None:
    document = openapi()
    assert document["openapi"].startswith("3.")
    found = {(method, path) for path, item in document["paths"].items() for method in item}
    assert found == OPERATIONS
    for path, item in document["paths"].items():
        for method, operation in item.items():
            assert operation.get("summary") and operation.get("description"), (method, path)
            assert {"tokenAuth", "cookieAuth"} <= {key for entry in operation["security"] for key in entry}
            for parameter in operation.get("parameters", []):
                assert parameter.get("description"), (method, path, parameter["name"])


def test_every_field_of_every_component_is_described(db: None) -> None:
    undescribed = [
        f"{name}.{field}"
        for name, component in openapi()["components"]["schemas"].items()
        for field, spec in component.get("properties", {}).items()
        if not spec.get("description")
    ]
    assert undescribed == []


def test_schema_follows_the_language(db: None) -> None:
    english = openapi("en")["components"]["schemas"]["SyncJobProgressOutput"]["properties"]["total"]
    chinese = openapi("zh-hans")["components"]["schemas"]["SyncJobProgressOutput"]["properties"]["total"]
    assert english["description"] == "Calendar days in the range."
    assert chinese["description"] == "范围内的自然日天数。"


def test_swagger_ui_is_served_offline_from_the_sidecar(db: None) -> None:
    response = APIClient().get("/api/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "/api/schema/" in page
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert any("swagger-ui-bundle.js" in asset for asset in assets)
    for asset in assets:
        assert not asset.startswith(("http:", "https:", "//")), asset
        if asset.startswith("/static/"):
            assert finders.find(asset.removeprefix("/static/")), asset


# --- schemathesis against the live app -----------------------------------------------------


@pytest.fixture
def api_token(db: None, settings: Any) -> str:
    """A superuser's token and a few real jobs, so generated calls reach real data."""
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"batchsync_start": "10000/min", "batchsync_control": "10000/min"},
    }
    settings.BATCHSYNC = {**settings.BATCHSYNC, "MAX_RANGE_DAYS": 400}
    cache.clear()
    job = SyncJobFactory.create(task_id=SEED_TASK_ID, status=SyncJobStatus.FAILED, total_days=9)
    for offset in range(9):
        SyncDayFactory.create(job=job, date=dt.date(2025, 10, 1) + dt.timedelta(days=offset))
    SyncErrorFactory.create(job=job, created_at=timezone.now())
    SyncDayFactory.create(
        job=SyncJobFactory.create(status=SyncJobStatus.PAUSED), status=SyncDayStatus.PENDING
    )
    alert_test_record()  # an alert with pending deliveries, for GET /api/v1/alerts
    user = User.objects.create_superuser("schemathesis")
    key: str = Token.objects.create(user=user, key=API_TOKEN).key
    return key


def wsgi_app_in_test_transaction(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """The project's WSGI app, keeping the test's connection and transaction (as Django's test client).

    Django closes the connection at request start and finish; here the request is answered
    completely with that hook off, so the test's data and transaction stay.
    """
    from syncproject.wsgi import application

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        response = application(environ, start_response)
        try:
            return [b"".join(response)]
        finally:
            response.close()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


# Every check schemathesis has (the CLI's `--checks all`), over the examples, coverage and
# fuzzing phases, with valid (positive) and invalid (negative) data: negative data must be
# refused with a documented 4xx, unsupported methods with 405 and `Allow`, and so on; the
# stateful phase (linked calls) is the workflow test below.
# One allowance: a start the schema calls well-formed may still be a 400, for rules across
# fields and beyond JSON Schema (end_date after start_date and not after today, the range cap,
# the options and the path the chosen source takes; for adjusted bars and findings, end_date
# before start_date; for schedules, the cron expression, a taken name and the source's options;
# for a re-run, days outside the job's range); the 400 must still be documented.
CONFIG = SchemathesisConfig.from_dict(
    {
        "headers": {"Authorization": f"Token {API_TOKEN}"},
        "checks": {"enabled": True},
        "generation": {"mode": "all", "max-examples": 25},
        "phases": {
            "examples": {"enabled": True},
            "coverage": {"enabled": True},
            "fuzzing": {"enabled": True},
        },
        "operations": [
            {
                "include-operation-id": "sync_batch_start",
                "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "400", "409", "429"]}},
            },
            {  # the same for days outside the job's range (and any job id: 404)
                "include-operation-id": "sync_batch_rerun",
                "checks": {
                    "positive_data_acceptance": {"expected-statuses": ["2xx", "400", "404", "409", "429"]}
                },
            },
            {  # the same rules for a verify job's range
                "include-operation-id": "verify_batch_start",
                "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "400", "409", "429"]}},
            },
            {  # the same for a schedule's cron expression, name and source
                "include-operation-id": ["sync_schedule_create", "sync_schedule_update"],
                "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "400", "404", "429"]}},
            },
            {  # the same for end_date before start_date
                "include-operation-id": "bars_adjusted",
                "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "400", "429"]}},
            },
            {  # findings: end_date before start_date too, and a job filter naming no job (404)
                "include-operation-id": "findings_list",
                "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "400", "404", "429"]}},
            },
        ],
    }
)
# Loaded when the module is collected (schemathesis's eager WSGI loader): the schema view needs
# no database, and each operation becomes a test item of its own. (`schemathesis.pytest.from_fixture`
# relies on a pytest internal, `Node._nodeid`, that pytest 9 removed.)
schema = schemathesis.openapi.from_wsgi("/api/schema/", wsgi_app_in_test_transaction, config=CONFIG)


@schema.parametrize()
@settings(deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_api_answers_as_its_schema_says(case: Any, api_token: str) -> None:
    """Every check passes: no 5xx; statuses, content types, headers and bodies as documented."""
    case.call_and_validate()


def test_api_workflows_hold_every_check(api_token: str) -> None:
    """Stateful phase: chains of calls, a listed job's task_id into its days, errors and control."""
    schema.as_state_machine().run(
        settings=settings(
            max_examples=15,
            stateful_step_count=6,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
    )
