"""batchsync.bounds: each bound is defined once and refused the same way by the command (see
tests/test_command.py), the services, the API and the admin, before it reaches the database."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.utils import translation
from rest_framework.test import APIClient

from batchsync import bounds, services
from batchsync.admin import SyncJobStartForm
from batchsync.api.pagination import EnvelopePagination
from batchsync.api.serializers import PageFilterSerializer, SyncJobStartInputSerializer
from batchsync.exceptions import InvalidJobRequest
from batchsync.models import SyncJob

OCT_9 = dt.date(2025, 10, 9)
START = "/api/v1/sync-status/sync/batch"
ADMIN_START = "/admin/batchsync/syncjob/add/"


def test_a_bound_refuses_outside_its_range_naming_the_field() -> None:
    assert bounds.PRIORITY.check(1000) == 1000
    assert bounds.PRIORITY.check(-1000) == -1000
    for outside in (1001, -1001, 99999):
        with translation.override("en"), pytest.raises(InvalidJobRequest) as raised:
            bounds.PRIORITY.check(outside)
        assert (raised.value.field, raised.value.message) == (
            "priority",
            "priority must be between -1000 and 1000",
        )
    with translation.override("zh-hans"), pytest.raises(InvalidJobRequest) as raised:
        bounds.LIST_LIMIT.check(-1)
    assert raised.value.message == "limit 必须在 1 到 500 之间"


def test_the_bounds_fit_the_database_columns() -> None:
    """`--priority 99999` once reached PostgreSQL and failed there (smallint out of range)."""
    for bound, column in ((bounds.PRIORITY, "priority"), (bounds.PARALLELISM, "parallelism")):
        field = SyncJob._meta.get_field(column)
        low, high = connection.ops.integer_field_range(field.get_internal_type())
        assert low <= bound.low and bound.high <= high, (column, low, high)


def test_the_api_and_the_admin_take_the_same_bounds() -> None:
    start = SyncJobStartInputSerializer().fields
    form = SyncJobStartForm().fields
    for bound in (bounds.PRIORITY, bounds.PARALLELISM):
        api_field: Any = start[bound.field]
        form_field: Any = form[bound.field]
        assert (api_field.min_value, api_field.max_value) == (bound.low, bound.high)
        assert (form_field.min_value, form_field.max_value) == (bound.low, bound.high)
    page_size: Any = PageFilterSerializer().fields["page_size"]
    assert (page_size.min_value, page_size.max_value) == (bounds.PAGE_SIZE.low, bounds.PAGE_SIZE.high)
    assert EnvelopePagination.max_page_size == bounds.PAGE_SIZE.high == bounds.LIST_LIMIT.high


@pytest.mark.usefixtures("foreground")
@pytest.mark.django_db
def test_the_services_refuse_a_priority_out_of_bounds_whoever_asks() -> None:
    request = services.JobRequest(OCT_9, OCT_9, "demo", {}, priority=99999)
    with pytest.raises(InvalidJobRequest) as raised:
        services.sync_job_create(request)
    assert raised.value.field == "priority"
    assert not SyncJob.objects.exists()
    job = services.sync_job_create(services.JobRequest(OCT_9, OCT_9, "demo", {}, priority=-1000))
    assert SyncJob.objects.get(pk=job.pk).priority == -1000


@pytest.fixture
def superuser(db: None) -> User:
    cache.clear()  # the API's throttles
    return User.objects.create_superuser("root", "root@example.com", "not-used")


@pytest.mark.parametrize(("field", "value"), [("priority", 99999), ("priority", -1001), ("parallelism", 65)])
def test_the_api_answers_400_naming_the_field(superuser: User, field: str, value: int) -> None:
    client = APIClient()
    client.force_authenticate(superuser)
    response = client.post(
        START, {"start_date": "2025-10-09", "end_date": "2025-10-09", field: value}, format="json"
    )
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert not SyncJob.objects.exists()


def test_the_api_refuses_a_page_larger_than_the_bound(superuser: User) -> None:
    client = APIClient()
    client.force_authenticate(superuser)
    assert client.get(START, {"page_size": bounds.PAGE_SIZE.high}).status_code == 200
    response = client.get(START, {"page_size": bounds.PAGE_SIZE.high + 1})
    assert response.status_code == 400
    assert "page_size" in response.json()["errors"]


def test_the_admin_start_form_shows_the_error_at_the_field(superuser: User) -> None:
    client = Client()
    client.force_login(superuser)
    body = {
        "start_date": "2025-10-09",
        "end_date": "2025-10-09",
        "source": "demo",
        "reprocess": "failed",
        "parallelism": "1",
        "priority": "99999",
    }
    response = client.post(ADMIN_START, body)
    assert response.status_code == 200
    assert list(response.context["form"].errors) == ["priority"]
    assert not SyncJob.objects.exists()
