"""The admin: sync schedules (last job, outcome, next run, form, actions), and `latest` on the start form."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from batchsync import services
from batchsync.models import LoadedDay, SyncJob, SyncSchedule

CHANGELIST = "/admin/batchsync/syncschedule/"


@pytest.fixture
def client_en(admin_client: Client) -> Client:
    admin_client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return admin_client


def form(**changes: str) -> dict[str, str]:
    values = {
        "name": "nightly",
        "cron": "30 18 * * 1-5",
        "source": "demo",
        "source_options": "{}",
        "lookback_days": "1",
        "parallelism": "",
        "priority": "0",
        "freshness_deadline": "19:30",
    }
    return {**values, **changes}


@pytest.mark.usefixtures("foreground")
@pytest.mark.django_db(transaction=True)
def test_the_admin_adds_a_schedule_refuses_a_bad_cron_and_shows_last_job_outcome_and_next_run(
    client_en: Client,
) -> None:
    refused = client_en.post(f"{CHANGELIST}add/", form(cron="61 * * * *"))
    assert refused.status_code == 200
    assert "Invalid cron expression" in refused.content.decode()
    assert not SyncSchedule.objects.exists()

    added = client_en.post(f"{CHANGELIST}add/", form())
    assert added.status_code == 302
    schedule = SyncSchedule.objects.get(name="nightly")
    assert (schedule.lookback_days, schedule.freshness_deadline) == (1, dt.time(19, 30))
    assert schedule.next_run_at is not None

    ran = client_en.post(CHANGELIST, {"action": "run_schedules_now", "_selected_action": [schedule.pk]})
    assert ran.status_code == 302
    job = SyncJob.objects.get(schedule=schedule)
    page = client_en.get(CHANGELIST).content.decode()
    assert f'/admin/batchsync/syncjob/{job.pk}/change/">{job.task_id}</a>' in page
    assert "job pending" in page and "Asia/Shanghai" in page

    changed = client_en.post(f"{CHANGELIST}{schedule.pk}/change/", form(cron="0 19 * * 1-5"))
    assert changed.status_code == 302
    schedule.refresh_from_db()
    assert schedule.cron == "0 19 * * 1-5"
    assert client_en.post(f"{CHANGELIST}{schedule.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not SyncSchedule.objects.exists()


@pytest.mark.django_db
def test_the_start_form_with_latest_and_nothing_new_says_up_to_date(client_en: Client) -> None:
    published = services.latest_published_trading_day("demo", timezone.now())
    LoadedDay.objects.create(
        trade_date=published, source="demo", options_fingerprint="-", rows=1, checksum="-"
    )
    answer = client_en.post(
        "/admin/batchsync/syncjob/add/",
        {"latest": "on", "source": "demo", "reprocess": "failed", "parallelism": "1", "priority": "0"},
        follow=True,
    )
    assert f"Up to date: demo has loaded {published.isoformat()}" in answer.content.decode()
    assert not SyncJob.objects.exists()
