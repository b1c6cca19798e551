"""Sync schedules: the tick (frozen now), no overlap, one catch-up run, command, API, a real cluster."""

from __future__ import annotations

import datetime as dt
import io
import subprocess
import threading
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Permission, User
from django.core.cache import cache
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone, translation
from django_q.models import Schedule
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from batchsync import runner, services
from batchsync.exceptions import InvalidJobRequest
from batchsync.models import LoadedDay, ScheduleOutcome, SyncJob, SyncJobStatus, SyncSchedule
from tests.browser import wait_until

SHANGHAI = ZoneInfo("Asia/Shanghai")
URL = "/api/v1/sync-schedules"


@pytest.fixture(autouse=True)
def english() -> Iterator[None]:
    """Messages in English (the site's default language is Chinese)."""
    with translation.override("en"):
        yield


def shanghai(day: str, time: str) -> dt.datetime:
    return dt.datetime.fromisoformat(f"{day}T{time}").replace(tzinfo=SHANGHAI)


def loaded_through(day: dt.date, source: str = "demo") -> None:
    """Provenance of a load through `day` (what `newest_loaded_trading_day` reads)."""
    LoadedDay.objects.create(trade_date=day, source=source, options_fingerprint="-", rows=1, checksum="-")


def every_minute(now: dt.datetime, **settings: Any) -> SyncSchedule:
    spec = services.ScheduleSpec(name="minutely", cron="* * * * *", source="demo", **settings)
    return services.sync_schedule_create(spec, now=now)


def run_job(job: SyncJob | None) -> SyncJob:
    """Be the cluster: run the started job here, to its end."""
    assert job is not None
    runner.sync_job_run(job.pk)
    job.refresh_from_db()
    return job


# --- the tick, with a frozen now ---------------------------------------------------------------


@pytest.mark.usefixtures("foreground")
@pytest.mark.django_db(transaction=True)
def test_a_due_schedule_starts_a_latest_run_that_loads_the_latest_day_and_records_it() -> None:
    loaded_through(dt.date(2025, 9, 30))
    schedule = every_minute(shanghai("2025-10-09", "17:00:30"))
    assert schedule.next_run_at == shanghai("2025-10-09", "17:01")
    assert services.sync_schedules_tick(shanghai("2025-10-09", "17:00:59")) == []  # not due yet

    [run] = services.sync_schedules_tick(shanghai("2025-10-09", "17:01:02"))
    assert run.outcome == ScheduleOutcome.STARTED
    job = run_job(run.job)
    assert (job.start_date, job.end_date, job.status, job.success_days) == (
        dt.date(2025, 10, 1),
        dt.date(2025, 10, 9),
        SyncJobStatus.SUCCEEDED,
        1,
    )
    assert job.schedule_id == schedule.pk and job.requested_by == "schedule:minutely"
    assert services.newest_loaded_trading_day("demo") == dt.date(2025, 10, 9)
    schedule.refresh_from_db()
    assert schedule.last_job_id == job.pk
    assert schedule.last_run_at == shanghai("2025-10-09", "17:01:02")
    assert schedule.next_run_at == shanghai("2025-10-09", "17:02")
    facts = services_facts(schedule)
    assert (facts["outcome"], facts["last_job"]) == ("job succeeded", job.task_id)

    [again] = services.sync_schedules_tick(shanghai("2025-10-09", "17:02:00"))
    assert again.outcome == ScheduleOutcome.UP_TO_DATE and again.job is None
    assert again.message.startswith("Up to date: demo has loaded 2025-10-09")


def services_facts(schedule: SyncSchedule) -> dict[str, Any]:
    from batchsync.schedule_selectors import sync_schedule_facts

    return sync_schedule_facts(SyncSchedule.objects.select_related("last_job").get(pk=schedule.pk))


@pytest.mark.usefixtures("foreground")
@pytest.mark.django_db(transaction=True)
def test_no_second_run_while_the_previous_is_active_and_missed_ticks_collapse_into_one() -> None:
    loaded_through(dt.date(2025, 10, 9))
    schedule = every_minute(shanghai("2025-10-10", "17:00:30"))
    [first] = services.sync_schedules_tick(shanghai("2025-10-10", "17:01"))
    assert first.outcome == ScheduleOutcome.STARTED and first.job is not None

    # The run is still pending (no worker yet): the next tick skips, and says why.
    [skipped] = services.sync_schedules_tick(shanghai("2025-10-10", "17:02"))
    assert skipped.outcome == ScheduleOutcome.SKIPPED
    assert skipped.message == f"Skipped: the previous run {first.job.task_id} is still pending"
    assert SyncJob.objects.count() == 1
    run_job(first.job)

    # The cluster is down over the weekend and two more trading days: one tick, one run.
    assert services.sync_schedules_tick(shanghai("2025-10-10", "17:02:30")) == []
    [catch_up] = services.sync_schedules_tick(shanghai("2025-10-14", "17:30"))
    assert services.sync_schedules_tick(shanghai("2025-10-14", "17:30")) == []  # a second tick: not due
    job = run_job(catch_up.job)
    assert (job.start_date, job.end_date, job.success_days) == (
        dt.date(2025, 10, 11),
        dt.date(2025, 10, 14),
        2,
    )
    assert SyncJob.objects.filter(schedule=schedule).count() == 2
    schedule.refresh_from_db()
    assert schedule.next_run_at == shanghai("2025-10-14", "17:31")


@pytest.mark.usefixtures("foreground")
@pytest.mark.django_db(transaction=True)
def test_a_run_queues_behind_another_job_and_a_paused_schedule_is_not_due() -> None:
    loaded_through(dt.date(2025, 10, 9))
    other = services.sync_job_create(
        services.JobRequest(dt.date(2025, 9, 1), dt.date(2025, 9, 1), "demo", {})
    )
    schedule = every_minute(shanghai("2025-10-10", "17:00:30"), lookback_days=1)
    [run] = services.sync_schedules_tick(shanghai("2025-10-10", "17:01"))
    assert run.outcome == ScheduleOutcome.QUEUED and run.job is not None
    assert (run.job.status, run.job.start_date, run.job.reprocess) == (
        SyncJobStatus.QUEUED,
        dt.date(2025, 10, 9),  # one look-back day, reloaded
        "all",
    )
    services.sync_job_cancel(other)
    services.sync_job_cancel(run.job)

    services.sync_schedule_pause("minutely")
    assert services.sync_schedules_tick(shanghai("2025-10-10", "18:00")) == []
    resumed = services.sync_schedule_resume("minutely", now=shanghai("2025-10-10", "18:00:10"))
    assert resumed.next_run_at == shanghai("2025-10-10", "18:01")  # missed while paused: not run
    schedule.refresh_from_db()
    assert not schedule.paused


@pytest.mark.django_db
def test_cron_is_in_the_exchange_time_zone_and_validated() -> None:
    after = dt.datetime(2025, 10, 9, 0, 0, tzinfo=dt.UTC)  # 08:00 in Shanghai
    assert services.cron_next("30 18 * * 1-5", after) == shanghai("2025-10-09", "18:30")
    for bad in ("61 * * * *", "* * * *", "every night", "* * * * * *"):
        with pytest.raises(InvalidJobRequest, match="Invalid cron expression"):
            services.cron_validate(bad)


# --- the command ----------------------------------------------------------------------------------


def command(*args: str) -> str:
    out = io.StringIO()
    call_command("batch_sync", "schedule", *args, stdout=out)
    return out.getvalue()


@pytest.mark.usefixtures("foreground")
@pytest.mark.django_db(transaction=True)
def test_the_schedule_command_adds_lists_pauses_resumes_runs_and_removes() -> None:
    added = command(
        "add", "nightly", "--cron", "30 18 * * 1-5", "--lookback", "1", "--freshness-deadline", "19:30"
    )
    assert added.startswith("Schedule nightly added: 30 18 * * 1-5, next run ")
    schedule = SyncSchedule.objects.get(name="nightly")
    assert (schedule.source, schedule.lookback_days, schedule.freshness_deadline) == (
        "demo",
        1,
        dt.time(19, 30),
    )
    listing = command("list").splitlines()
    assert listing[0].split() == [
        "name",
        "cron",
        "source",
        "paused",
        "next",
        "run",
        "last",
        "run",
        "last",
        "job",
        "outcome",
    ]
    assert listing[1].startswith("nightly  30 18 * * 1-5  demo    no") and listing[1].endswith("never run")
    assert command("pause", "nightly") == "Schedule nightly paused\n"
    assert "  yes  " in command("list").splitlines()[1]
    assert command("resume", "nightly").startswith("Schedule nightly resumed: next run ")
    ran = command("run-now", "nightly")
    job = SyncJob.objects.get(schedule=schedule)
    assert ran.startswith(f"Schedule nightly: started: Started job {job.task_id}")
    assert job.task_id in command("list")
    assert command("remove", "nightly") == "Schedule nightly removed\n"
    job.refresh_from_db()
    assert job.schedule_id is None


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["add", "x", "--cron", "61 * * * *"], "--cron: Invalid cron expression '61 * * * *': five fields"),
        (["add", "x", "--cron", "* * * * *", "--option", "token=abc"], "--option: token looks like a secret"),
        (["add", "x", "--cron", "* * * * *", "--source", "nope"], "--source: "),
        (["pause", "nope"], "No schedule named nope"),
    ],
)
def test_bad_schedule_input_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    with pytest.raises(CommandError) as refused:
        command(*args)
    assert str(refused.value).startswith(message) and "\n" not in str(refused.value)
    assert refused.value.returncode == 2


# --- the API ---------------------------------------------------------------------------------------


@pytest.fixture
def scheduler(db: None) -> APIClient:
    cache.clear()  # throttles
    user = User.objects.create_user("scheduler")
    codenames = [
        "view_syncschedule",
        "add_syncschedule",
        "change_syncschedule",
        "delete_syncschedule",
        "add_syncjob",
    ]
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="batchsync", codename__in=codenames)
    )
    client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.mark.usefixtures("foreground")
@pytest.mark.django_db(transaction=True)
def test_the_api_manages_schedules_and_shows_last_run_outcome_and_next_run(scheduler: APIClient) -> None:
    body = {"name": "nightly", "cron": "30 18 * * 1-5", "source": "demo", "freshness_deadline": "19:30"}
    created = scheduler.post(URL, body, format="json")
    assert created.status_code == 201, created.json()
    data = created.json()["data"]
    assert (data["name"], data["timezone"], data["outcome"], data["last_job"]) == (
        "nightly",
        "Asia/Shanghai",
        "never run",
        None,
    )
    assert data["next_run_at"].endswith("18:30:00+08:00")
    assert scheduler.post(URL, body, format="json").status_code == 400  # the name is taken

    bad = scheduler.post(URL, {**body, "name": "other", "cron": "* * *"}, format="json")
    assert bad.status_code == 400
    assert bad.json()["status"] == "error" and list(bad.json()["errors"]) == ["cron"]

    patched = scheduler.patch(f"{URL}/nightly", {"cron": "0 19 * * 1-5"}, format="json")
    assert patched.json()["data"]["next_run_at"].endswith("19:00:00+08:00")
    assert scheduler.post(f"{URL}/nightly/pause").json()["data"]["next_run_at"] is None
    assert scheduler.post(f"{URL}/nightly/resume").json()["data"]["paused"] is False

    run = scheduler.post(f"{URL}/nightly/run-now").json()["data"]
    assert run["outcome"] == "started" and run["schedule"]["last_job"] == run["job"]
    again = scheduler.post(f"{URL}/nightly/run-now").json()["data"]
    assert again["outcome"] == "skipped" and again["job"] is None
    listed = scheduler.get(URL).json()["data"]
    assert listed["count"] == 1 and listed["results"][0]["last_job_status"] == "pending"

    assert scheduler.delete(f"{URL}/nightly").json() == {"status": "success", "data": {"name": "nightly"}}
    missing = scheduler.get(f"{URL}/nightly")
    assert missing.status_code == 404 and missing.json()["status"] == "error"


@pytest.mark.django_db
def test_the_api_start_with_latest_up_to_date_is_a_success(scheduler: APIClient) -> None:
    loaded_through(services.latest_published_trading_day("demo", timezone.now()))
    answer = scheduler.post("/api/v1/sync-status/sync/batch", {"latest": True}, format="json")
    assert answer.status_code == 200
    assert answer.json()["data"]["up_to_date"] is True
    assert answer.json()["data"]["message"].startswith("Up to date: demo has loaded")
    both = scheduler.post(
        "/api/v1/sync-status/sync/batch", {"latest": True, "start_date": "2025-10-09"}, format="json"
    )
    assert both.status_code == 400 and list(both.json()["errors"]) == ["latest"]


# --- end to end, on a real cluster -----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_cluster_runs_an_every_minute_schedule_that_loads_the_latest_day(
    cluster_for_schedules: Any,
) -> None:
    job = wait_until(
        lambda: SyncJob.objects.filter(schedule__name="minutely", status=SyncJobStatus.SUCCEEDED).first(),
        timeout=120,
        what="the schedule's job",
    )
    assert job is not None
    published = services.latest_published_trading_day("demo", timezone.now())
    assert (job.start_date, job.end_date, job.success_days) == (published, published, 1)
    assert LoadedDay.objects.get(trade_date=published).job_id == job.pk
    schedule = SyncSchedule.objects.get(name="minutely")
    assert schedule.last_job_id == job.pk and schedule.last_outcome == ScheduleOutcome.STARTED
    assert schedule.next_run_at and schedule.last_run_at and schedule.next_run_at > schedule.last_run_at


@pytest.fixture
def cluster_for_schedules(transactional_db: None, request: pytest.FixtureRequest) -> Any:
    """An every-minute schedule, due now, and the tick's django-q2 schedule, then a real qcluster."""
    now = timezone.now()
    SyncSchedule.objects.all().delete()
    schedule = services.sync_schedule_create(
        services.ScheduleSpec(name="minutely", cron="* * * * *", source="demo")
    )
    SyncSchedule.objects.filter(pk=schedule.pk).update(next_run_at=now)  # as at a minute's start
    # The test database is flushed between tests: the row migration 0012 adds is put back.
    Schedule.objects.update_or_create(
        name="batchsync schedules",
        defaults={
            "func": "batchsync.tasks.sync_schedules_tick",
            "schedule_type": Schedule.MINUTES,
            "minutes": 1,
            "repeats": -1,
            "next_run": now,
        },
    )
    process: subprocess.Popen[bytes] = request.getfixturevalue("cluster")
    return process


@pytest.mark.django_db
def test_pause_and_resume_do_not_need_the_sources_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """The token may live only in the cluster's environment: pausing from elsewhere still works."""
    monkeypatch.setenv("TUSHARE_TOKEN", "t")
    services.sync_schedule_create(
        services.ScheduleSpec(name="tushare", cron="30 18 * * 1-5", source="tushare")
    )
    monkeypatch.delenv("TUSHARE_TOKEN")
    assert services.sync_schedule_pause("tushare").paused
    assert not services.sync_schedule_resume("tushare").paused
    with pytest.raises(InvalidJobRequest, match="TUSHARE_TOKEN"):  # a change of settings checks the source
        services.sync_schedule_update("tushare", {"priority": 5})


@pytest.mark.usefixtures("foreground")
@pytest.mark.django_db(transaction=True)
def test_two_ticks_at_once_start_a_due_schedule_once() -> None:
    """Two clusters (threads with their own connections) tick together: the row lock lets one start it."""
    loaded_through(dt.date(2025, 10, 9))
    every_minute(shanghai("2025-10-10", "17:00:30"))
    barrier = threading.Barrier(2)
    runs: list[services.ScheduleRun] = []

    def tick() -> None:
        try:
            barrier.wait(timeout=10)
            runs.extend(services.sync_schedules_tick(shanghai("2025-10-10", "17:01")))
        finally:
            connection.close()

    threads = [threading.Thread(target=tick) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert [run.outcome for run in runs] == [ScheduleOutcome.STARTED]
    assert SyncJob.objects.count() == 1
