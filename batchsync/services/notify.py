"""Job and day events over PostgreSQL NOTIFY, for the pages' and the API's live streams.

An event is sent inside the transaction that makes the change, so listeners get it exactly
when the change is committed (and never for a change that rolled back). The payload names the
job and carries its status and counts; a listener re-reads what it needs beyond them.
"""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.db.models import TextChoices

from batchsync import sql


class JobEventKind(TextChoices):
    """What changed: the job's status or counts, or one of its days."""

    JOB = "job"
    DAY = "day"


def job_event_publish(job_id: int) -> None:
    """Queue the job's event (status and counts) on this transaction, sent on commit."""
    _publish({"kind": JobEventKind.JOB.value, "job": job_id, "day": None})


def day_event_publish(day_id: int) -> None:
    """Queue a day's event (its date, status and rows, with its job's) on this transaction."""
    _publish({"kind": JobEventKind.DAY.value, "job": None, "day": day_id})


def _publish(params: dict[str, Any]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql.JOB_EVENT_NOTIFY, {"channel": sql.EVENTS_CHANNEL, **params})
