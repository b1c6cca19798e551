"""Job and day events go out with PostgreSQL NOTIFY when their transaction commits, never before
or on rollback (read by a plain psycopg connection that LISTENs, as the event streams do).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from django.db import connection, transaction

from batchsync import services, sql
from batchsync.api.streams import listen_connection_params

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("foreground")]


@pytest.fixture
def listener() -> Iterator[psycopg.Connection[Any]]:
    with psycopg.Connection.connect(**listen_connection_params(), autocommit=True) as listening:
        listening.execute(sql.EVENTS_LISTEN)
        yield listening


def received(listening: psycopg.Connection[Any], timeout: float = 0.5) -> list[dict[str, Any]]:
    return [json.loads(notify.payload) for notify in listening.notifies(timeout=timeout)]


def request(start: dt.date, end: dt.date) -> services.JobRequest:
    return services.JobRequest(start_date=start, end_date=end, source="demo", source_options={})


def test_an_event_is_sent_on_commit_and_not_on_rollback(listener: psycopg.Connection[Any]) -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        services.sync_job_create(request(dt.date(2025, 10, 9), dt.date(2025, 10, 10)))
        raise RuntimeError("rolled back")
    assert received(listener) == []
    with transaction.atomic():
        job = services.sync_job_create(request(dt.date(2025, 10, 9), dt.date(2025, 10, 10)))
        connection.cursor().execute(sql.PING)
        assert received(listener, timeout=0.2) == []  # not before the commit
    (event,) = received(listener)
    assert (event["task_id"], event["kind"], event["status"]) == (job.task_id, "job", "pending")
    assert (event["total_days"], event["processed_days"], event["date"]) == (2, 0, None)


def test_a_days_event_names_the_day(listener: psycopg.Connection[Any]) -> None:
    job = services.sync_job_create(request(dt.date(2025, 10, 9), dt.date(2025, 10, 9)))
    fence = services.sync_job_join(job.pk, "worker-1")
    assert fence is not None
    claim = services.sync_day_claim(job.pk, "worker-1", fence)
    assert claim is not None
    received(listener)
    with transaction.atomic():
        services.sync_day_mark_succeeded(claim, rows=5500, started=0.0)
    (event,) = received(listener)
    assert (event["kind"], event["date"], event["day_status"], event["day_rows"]) == (
        "day",
        "2025-10-09",
        "succeeded",
        5500,
    )
    assert event["day_finished_at"] is not None and event["status"] == "running"
