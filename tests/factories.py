"""factory_boy factories for batchsync's models (real rows in the test PostgreSQL)."""

from __future__ import annotations

import datetime as dt

import factory
from django.utils import timezone

from batchsync.models import SyncDay, SyncDayStatus, SyncError, SyncJob, SyncJobStatus


class SyncJobFactory(factory.django.DjangoModelFactory[SyncJob]):
    class Meta:
        model = SyncJob

    task_id = factory.Sequence(lambda n: f"2025-10-01_2025-10-09_{1697587200 + n}")
    source = "demo"
    start_date = dt.date(2025, 10, 1)
    end_date = dt.date(2025, 10, 9)
    status = SyncJobStatus.SUCCEEDED
    total_days = 0


class SyncDayFactory(factory.django.DjangoModelFactory[SyncDay]):
    class Meta:
        model = SyncDay

    job = factory.SubFactory(SyncJobFactory)
    date = factory.Sequence(lambda n: dt.date(2025, 9, 1) + dt.timedelta(days=n))
    status = SyncDayStatus.PENDING


class SyncErrorFactory(factory.django.DjangoModelFactory[SyncError]):
    class Meta:
        model = SyncError

    job = factory.SubFactory(SyncJobFactory)
    date = dt.date(2025, 10, 3)
    error = "connection timeout"
    created_at = factory.LazyFunction(timezone.now)
