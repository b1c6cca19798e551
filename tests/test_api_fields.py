"""Strict bodies and queries: JSON types as documented (docs/api.md), one value per key, typed options."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from batchsync.conf import get_settings
from batchsync.models import SyncJob
from tests.factories import SyncJobFactory
from tests.test_api import BATCH, SEED_START_BODY, error_body, make_user, token_client

START = {"start_date": "2025-10-01", "end_date": "2025-10-09"}


@pytest.fixture(autouse=True)
def _fresh_throttles() -> None:
    cache.clear()


@pytest.fixture
def operator(db: None) -> APIClient:
    client = token_client(make_user("operator", "view_syncjob", "add_syncjob", "change_syncjob"))
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


@pytest.fixture
def latency_source(settings: Any) -> None:
    settings.BATCHSYNC = {
        **settings.BATCHSYNC,
        "SOURCES": {**get_settings().sources, "latency": "batchsync.sources.latency.LatencySource"},
    }


def test_the_seeds_documented_request_still_starts_a_job(operator: APIClient) -> None:
    response = operator.post(BATCH, SEED_START_BODY, content_type="application/json")
    assert response.status_code == 200, response.content
    assert response.json()["data"]["total_days"] == 9


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"start_date": "20251001"}, "start_date"),
        ({"end_date": "2025-10-9"}, "end_date"),
        ({"start_date": 20251001}, "start_date"),
        ({"force": "yes"}, "force"),
        ({"force": 1}, "force"),
        ({"queue": "true"}, "queue"),
        ({"dry_run": 0}, "dry_run"),
        ({"parallelism": "2"}, "parallelism"),
        ({"parallelism": 2.0}, "parallelism"),
        ({"priority": True}, "priority"),
        ({"source": 5}, "source"),
        ({"path": 5}, "path"),
        ({"source_options": {"path": None}}, "source_options.path"),
    ],
)
def test_bodies_take_json_types_only(operator: APIClient, body: dict[str, Any], field: str) -> None:
    result = error_body(operator.post(BATCH, {**START, **body, "dry_run": body.get("dry_run", True)}), 400)
    assert field in result["errors"], result
    assert SyncJob.objects.count() == 0


def test_real_booleans_and_integers_are_accepted(operator: APIClient) -> None:
    body = {**START, "force": True, "queue": False, "parallelism": 2, "priority": -3, "dry_run": True}
    assert operator.post(BATCH, body, format="json").status_code == 200


@pytest.mark.parametrize(
    "content",
    [
        '{"start_date": "2025-10-01", "end_date": "2025-10-09", "end_date": "2025-10-02"}',
        '{"start_date": "2025-10-01", "end_date": "2025-10-09", "source_options": {"a": 1, "a": 2}}',
    ],
)
def test_a_key_given_twice_is_refused(operator: APIClient, content: str) -> None:
    result = error_body(operator.post(BATCH, content, content_type="application/json"), 400)
    assert "duplicate" in result["message"]
    assert SyncJob.objects.count() == 0


@pytest.mark.parametrize(
    ("url", "field"),
    [
        (f"{BATCH}?status=", "status"),
        (f"{BATCH}?source=", "source"),
        (f"{BATCH}?date=", "date"),
        (f"{BATCH}?date=20251001", "date"),
        (f"{BATCH}?page=", "page"),
        (f"{BATCH}?page_size=", "page_size"),
    ],
)
def test_an_empty_or_loose_filter_is_a_400_not_no_filter(operator: APIClient, url: str, field: str) -> None:
    SyncJobFactory.create()
    assert field in error_body(operator.get(url), 400)["errors"]


def test_a_blank_source_filter_matches_no_job(operator: APIClient) -> None:
    SyncJobFactory.create()
    assert operator.get(f"{BATCH}?source=%20").json()["data"]["count"] == 0


def test_typed_source_options_arrive_typed(operator: APIClient, latency_source: None) -> None:
    body: dict[str, Any] = {**START, "source": "latency", "source_options": {"seconds": 2}}
    task_id = operator.post(BATCH, body, format="json").json()["data"]["task_id"]
    assert SyncJob.objects.get(task_id=task_id).source_options == {"seconds": 2}
    cache.clear()
    body = {**START, "source": "latency", "source_options": {"seconds": 0.25}, "queue": True}
    task_id = operator.post(BATCH, body, format="json").json()["data"]["task_id"]
    assert SyncJob.objects.get(task_id=task_id).source_options == {"seconds": 0.25}


@pytest.mark.parametrize(
    ("body", "field", "option"),
    [
        ({"path": "/data"}, "path", "path"),
        ({"source_options": {"path": "/data"}}, "path", "path"),
        ({"source_options": {"speed": 3}}, "speed", "speed"),
        ({"source": "latency", "source_options": {"seconds": "2"}}, "seconds", "seconds"),
        ({"source": "latency", "source_options": {"seconds": True}}, "seconds", "seconds"),
        ({"source": "latency", "source_options": {"delay": 1}}, "delay", "delay"),
    ],
)
def test_an_option_the_source_does_not_take_is_a_400_naming_it(
    operator: APIClient, latency_source: None, body: dict[str, Any], field: str, option: str
) -> None:
    result = error_body(operator.post(BATCH, {**START, **body}, format="json"), 400)
    assert field in result["errors"] and option in result["message"], result
    assert SyncJob.objects.count() == 0


def test_the_schema_closes_request_bodies(db: None) -> None:
    document = json.loads(
        APIClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").content
    )
    schemas = document["components"]["schemas"]
    for name in ("SyncJobStartInputRequest", "SyncJobRetryInputRequest"):
        assert schemas[name]["additionalProperties"] is False, name
    options = schemas["SyncJobStartInputRequest"]["properties"]["source_options"]["additionalProperties"]
    assert {entry["type"] for entry in options["anyOf"]} == {"string", "number", "boolean"}
    # A NUL byte is refused (PostgreSQL text cannot hold one), and the schema says so.
    parameters = document["paths"]["/api/v1/sync-status/sync/batch"]["get"]["parameters"]
    source = next(parameter for parameter in parameters if parameter["name"] == "source")
    assert source["schema"]["pattern"] == "^[^\\u0000]*$"


@pytest.mark.parametrize(
    ("request_args", "field"),
    [
        ((f"{BATCH}?source=a%00b",), "source"),
        ((f"{BATCH}?status=%00",), "status"),
    ],
)
def test_a_nul_byte_in_a_query_is_a_documented_400(
    operator: APIClient, request_args: Any, field: str
) -> None:
    assert field in error_body(operator.get(*request_args), 400)["errors"]


@pytest.mark.parametrize(
    "body",
    [{"path": "/data/a\x00b", "source": "csv"}, {"source": "de\x00mo"}, {"source_options": {"x": "a\x00"}}],
)
def test_a_nul_byte_in_a_body_is_a_400(operator: APIClient, body: dict[str, Any]) -> None:
    error_body(operator.post(BATCH, {**START, **body}, format="json"), 400)
    assert SyncJob.objects.count() == 0
