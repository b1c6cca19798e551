"""Django admin: job list, live job page, start form, operator actions; nothing editable by hand."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import override

from batchsync import calendars, dispatch, runner, services
from batchsync.exceptions import SyncAlreadyRunning
from batchsync.models import Reprocess, SyncDay, SyncError, SyncJob, SyncJobStatus, TradingCalendar
from batchsync.sources.demo import demo_day_csv
from tests.conftest import database_url
from tests.factories import SyncErrorFactory, SyncJobFactory

LIST_URL = "/admin/batchsync/syncjob/"
ADD_URL = "/admin/batchsync/syncjob/add/"
# The start form as a user fills it in: 2025-10-01..09, demo, the default options.
START_FORM = {
    "start_date": "2025-10-01",
    "end_date": "2025-10-09",
    "source": "demo",
    "reprocess": "failed",
    "parallelism": "1",
    "priority": "0",
}


def change_url(job: SyncJob) -> str:
    return reverse("admin:batchsync_syncjob_change", args=[job.pk])


def control_url(job: SyncJob, operation: str) -> str:
    return reverse("admin:batchsync_syncjob_control", args=[job.pk, operation])


def live_url(job: SyncJob) -> str:
    return reverse("admin:batchsync_syncjob_live", args=[job.pk])


def page_messages(response: Any) -> list[str]:
    return [str(message) for message in response.context["messages"]]


@dispatch.handoff(foreground=True)
def create_job(
    start: dt.date,
    end: dt.date,
    *,
    source: str = "demo",
    options: dict[str, Any] | None = None,
    reprocess: str = Reprocess.FAILED,
) -> SyncJob:
    request = services.JobRequest(
        start_date=start, end_date=end, source=source, source_options=options or {}, reprocess=reprocess
    )
    return services.sync_job_create(request)


@pytest.fixture
def client_en(admin_client: Client) -> Client:
    admin_client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return admin_client


@pytest.fixture
def finished_and_running(csv_dir: Path, foreground: None) -> Iterator[tuple[SyncJob, SyncJob]]:
    """Job A (failed): 10-08 non-trading, 10-09 loaded, 10-10 failed (missing file).

    Job B (running, reprocess=none) over 10-08..10-14: non-trading, already loaded, failed
    before, a running day (10-13) and a pending one (10-14): every state of the calendar.
    """
    (csv_dir / "2025-10-09.csv").write_bytes(demo_day_csv(dt.date(2025, 10, 9)))
    first = create_job(
        dt.date(2025, 10, 8), dt.date(2025, 10, 10), source="csv", options={"path": str(csv_dir)}
    )
    first = runner.sync_job_run(first.pk).job
    second = create_job(dt.date(2025, 10, 8), dt.date(2025, 10, 14), reprocess=Reprocess.NONE)
    fence = services.sync_job_join(second.pk, "test-worker")
    assert fence is not None
    claim = services.sync_day_claim(second.pk, "test-worker", fence)
    assert claim is not None and claim.date == dt.date(2025, 10, 13)
    second.refresh_from_db()
    with psycopg.connect(database_url(), application_name="test-worker"):  # its worker is alive
        yield first, second


# --- the job list ------------------------------------------------------------------------


@pytest.mark.django_db
def test_job_list_shows_status_progress_counts_and_every_column(client_en: Client) -> None:
    eta = timezone.now() + dt.timedelta(minutes=20)
    job = SyncJobFactory.create(
        status=SyncJobStatus.RUNNING,
        total_days=9,
        processed_days=3,
        success_days=2,
        skipped_days=1,
        current_date=dt.date(2025, 10, 3),
        started_at=timezone.now() - dt.timedelta(minutes=2),
        running_since=timezone.now() - dt.timedelta(minutes=2),
        estimated_completion=eta,
        source="csv",
        requested_by="alice",
    )
    response = client_en.get(LIST_URL)
    assert response.status_code == 200
    html = response.content.decode()
    row = html[html.index(job.task_id) :]
    row = row[: row.index("</tr>")]
    assert 'class="bs-status bs-status--running">running<' in row
    # Days loaded of days to load: 2 of 8 (the skipped day apart), not 3 of 9 processed.
    assert "width: 25.0%" in row and ">25.0%<" in row
    assert "loaded 2 of 8 to load · 1 skipped" in row
    assert re.search(r"bs-count--succeeded[^>]*>2<.*bs-count--failed[^>]*>0<.*bs-count--skipped[^>]*>1<", row)
    assert "2025-10-03" in row
    assert timezone.localtime(eta).strftime("%Y-%m-%d %H:%M:%S") in row
    assert re.search(r">2m 0\ds<", row)  # duration
    assert ">csv<" in row and ">alice<" in row
    for header in (  # merged to fit 1440 px (admin/job_list.py): the day in flight is under the bar
        "Status",
        "Progress",
        "Started · duration",
        "ETA",
        "Source",
        "Requested by",
    ):
        assert header.lower() in html.lower()


@pytest.mark.django_db
def test_job_list_is_newest_first(client_en: Client) -> None:
    old = SyncJobFactory.create(created_at=timezone.now() - dt.timedelta(days=2))
    new = SyncJobFactory.create(created_at=timezone.now())
    middle = SyncJobFactory.create(created_at=timezone.now() - dt.timedelta(days=1))
    html = client_en.get(LIST_URL).content.decode()
    assert html.index(new.task_id) < html.index(middle.task_id) < html.index(old.task_id)


@pytest.mark.django_db
def test_job_list_filters_by_status_source_and_dates_and_searches_task_ids(client_en: Client) -> None:
    failed = SyncJobFactory.create(
        status=SyncJobStatus.FAILED, source="csv", task_id="2024-01-01_2024-01-31_1"
    )
    failed.start_date, failed.end_date = dt.date(2024, 1, 1), dt.date(2024, 1, 31)
    failed.save()
    done = SyncJobFactory.create(
        status=SyncJobStatus.SUCCEEDED, source="demo", task_id="2025-10-01_2025-10-09_2"
    )
    old = SyncJobFactory.create(
        created_at=timezone.now() - dt.timedelta(days=400), task_id="2025-10-01_2025-10-09_3"
    )

    def listed(query: dict[str, str]) -> set[str]:
        response = client_en.get(LIST_URL, query)
        assert response.status_code == 200
        return {job.task_id for job in response.context["cl"].result_list}

    week_ago = timezone.localtime() - dt.timedelta(days=7)
    assert listed({"status__exact": "failed"}) == {failed.task_id}
    assert listed({"source": "csv"}) == {failed.task_id}
    assert listed({"source": "demo"}) == {done.task_id, old.task_id}
    assert listed({"covers": "2024-01-15"}) == {failed.task_id}
    assert listed({"covers": "2024"}) == {failed.task_id}
    assert listed({"created_at__gte": week_ago.isoformat()}) == {failed.task_id, done.task_id}
    assert listed({"q": "09_2"}) == {done.task_id}
    assert listed({"q": "2024-01-01_2024"}) == {failed.task_id}
    assert listed({"q": "2025-10-05"}) == {done.task_id, old.task_id}  # a day the range covers


@pytest.mark.django_db
def test_job_list_runs_the_same_number_of_queries_for_20_or_200_jobs(client_en: Client) -> None:
    def count_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            response = client_en.get(LIST_URL)
        assert response.status_code == 200
        return len(queries)

    SyncJobFactory.create_batch(20, requested_by="bob")
    with_20 = count_queries()
    SyncJobFactory.create_batch(180, requested_by="bob", status=SyncJobStatus.FAILED)
    with_200 = count_queries()
    assert with_200 == with_20
    assert with_20 <= 12


# --- actions -----------------------------------------------------------------------------


def run_action(client: Client, action: str, jobs: list[SyncJob], **extra: str) -> Any:
    return client.post(
        LIST_URL,
        {"action": action, "_selected_action": [job.pk for job in jobs], **extra},
        follow=True,
    )


def job_now_status(job: SyncJob) -> str:
    return SyncJob.objects.values_list("status", flat=True).get(pk=job.pk)


@pytest.mark.django_db
def test_actions_cancel_pause_resume_call_the_services_and_report_refusals(client_en: Client) -> None:
    pending = create_job(dt.date(2025, 10, 9), dt.date(2025, 10, 10))
    done = SyncJobFactory.create(status=SyncJobStatus.SUCCEEDED)

    response = run_action(client_en, "pause_jobs", [pending])
    pending.refresh_from_db()
    assert pending.status == SyncJobStatus.PAUSED
    assert any(pending.task_id in message for message in page_messages(response))

    response = run_action(client_en, "resume_jobs", [pending])
    pending.refresh_from_db()
    assert pending.status == SyncJobStatus.PENDING

    response = run_action(client_en, "cancel_jobs", [pending, done])  # asks first: nothing changes
    assert "Are you sure?" in response.content.decode()
    assert job_now_status(pending) == SyncJobStatus.PENDING
    response = run_action(client_en, "cancel_jobs", [pending, done], confirmed="1")
    pending.refresh_from_db()
    done.refresh_from_db()
    assert pending.status == SyncJobStatus.CANCELLED
    assert done.status == SyncJobStatus.SUCCEEDED
    texts = page_messages(response)
    assert any(f"Cannot cancel job {done.task_id}" in text for text in texts), texts
    assert any(pending.task_id in text and "Cancel" in text for text in texts), texts


@pytest.mark.usefixtures("foreground")
@pytest.mark.django_db
def test_retry_action_starts_a_new_job_of_the_failed_days(client_en: Client) -> None:
    failed = create_job(dt.date(2025, 10, 9), dt.date(2025, 10, 10))
    services.sync_job_cancel(failed)
    response = run_action(client_en, "retry_jobs", [failed])
    retry = SyncJob.objects.get(retry_of=failed)
    assert retry.status == SyncJobStatus.PENDING
    assert retry.requested_by == "admin"
    assert any(retry.task_id in text for text in page_messages(response))
    # A second retry while the first holds the slot is refused with the service's message.
    response = run_action(client_en, "retry_jobs", [failed])
    assert SyncJob.objects.filter(retry_of=failed).count() == 1
    assert any("already" in text.lower() or "已有" in text for text in page_messages(response))


# --- the job page ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_job_page_shows_progress_calendar_errors_and_only_allowed_buttons(
    admin_client: Client, finished_and_running: tuple[SyncJob, SyncJob]
) -> None:
    admin_client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    first, second = finished_and_running
    assert first.status == SyncJobStatus.FAILED

    html = admin_client.get(change_url(first)).content.decode()
    for field in ("task id", "total days", "processed days", "succeeded days", "failed days", "skipped days"):
        assert f"<dt>{field}</dt>" in html.lower()
    for field in (
        "rows loaded",
        "started at",
        "finished at",
        "duration",
        "estimated completion",
    ):
        assert f"<dt>{field}</dt>" in html.lower()
    assert first.message in html
    cells = dict(re.findall(r'data-date="([\d-]+)" data-state="(\w+)"', html))
    assert cells == {
        "2025-10-08": "skipped_non_trading",
        "2025-10-09": "succeeded",
        "2025-10-10": "failed",
    }
    tooltip = re.search(r'data-date="2025-10-09"[^>]*title="([^"]*)"', html)
    assert tooltip is not None and "rows: 5500" in tooltip.group(1) and "attempts: 1" in tooltip.group(1)
    failed_tip = re.search(r'data-date="2025-10-10"[^>]*title="([^"]*)"', html)
    assert failed_tip is not None and "2025-10-10.csv" in failed_tip.group(1)  # the missing file
    # The error, inline, read-only; a data error (a missing file) shows no Python traceback.
    error = SyncError.objects.get(job=first)
    assert error.traceback == "" and 'class="bs-traceback"' not in html
    assert error.error.split(":")[0] in html
    assert "<textarea" not in html
    # Finished: only retry is offered.
    assert visible_operations(html) == {"retry"}

    html = admin_client.get(change_url(second)).content.decode()
    cells = dict(re.findall(r'data-date="([\d-]+)" data-state="(\w+)"', html))
    assert cells == {
        "2025-10-08": "skipped_non_trading",
        "2025-10-09": "skipped_loaded_other_source",  # the first job loaded it from csv
        "2025-10-10": "skipped_previously_failed",
        "2025-10-11": "skipped_non_trading",
        "2025-10-12": "skipped_non_trading",
        "2025-10-13": "running",
        "2025-10-14": "pending",
    }
    assert visible_operations(html) == {"cancel", "pause"}
    # The live script refreshes the page's fragments from this job's live endpoint.
    assert f'data-live-url="{live_url(second)}"' in html
    live = admin_client.get(live_url(second)).content.decode()
    assert 'data-status="running"' in live and 'id="bs-summary"' in live


def visible_operations(html: str) -> set[str]:
    forms = re.findall(
        r'<form method="post" action="[^"]+" class="bs-operation" data-operation="(\w+)"( hidden)?', html
    )
    return {operation for operation, hidden in forms if not hidden}


@pytest.mark.django_db(transaction=True)
def test_live_endpoint_sends_the_fragments_and_only_the_years_that_changed(
    admin_client: Client, finished_and_running: tuple[SyncJob, SyncJob]
) -> None:
    first, second = finished_and_running
    since = (timezone.now() - dt.timedelta(minutes=1)).isoformat()
    live = admin_client.get(live_url(second), {"since": since, "open": "2025-10"}).content.decode()
    assert 'id="bs-year-2025"' in live and 'id="bs-month-2025-10"' in live  # 10-13 runs
    assert 'data-state="running"' in live and 'id="bs-errors-panel"' in live
    key = re.search(r'data-errors-key="([^"]*)"', live)
    assert key is not None
    # Nothing ran since: the finished job's strips and months are not sent, nor its unchanged errors.
    future = (timezone.now() + dt.timedelta(hours=1)).isoformat()
    first_key = re.search(r'data-errors-key="([^"]*)"', admin_client.get(change_url(first)).content.decode())
    assert first_key is not None
    quiet = admin_client.get(
        live_url(first), {"since": future, "open": "2025-10", "errors": first_key.group(1)}
    ).content.decode()
    assert 'id="bs-year-' not in quiet and 'id="bs-month-' not in quiet and "bs-errors-panel" not in quiet
    assert 'data-finished="1"' in quiet and visible_operations(quiet) == {"retry"}
    # The running day is always sent.
    running = admin_client.get(live_url(second), {"since": future}).content.decode()
    assert 'id="bs-year-2025"' in running


@pytest.mark.usefixtures("foreground")
@pytest.mark.django_db(transaction=True)
def test_job_page_buttons_call_the_services(
    admin_client: Client, finished_and_running: tuple[SyncJob, SyncJob]
) -> None:
    admin_client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    first, second = finished_and_running
    assert admin_client.get(control_url(second, "cancel")).status_code == 405
    response = admin_client.post(control_url(second, "pause"), follow=True)
    second.refresh_from_db()
    assert second.status == SyncJobStatus.PAUSING
    assert response.redirect_chain[-1][0] == change_url(second)
    response = admin_client.post(control_url(second, "resume"), follow=True)
    second.refresh_from_db()
    assert second.status == SyncJobStatus.RUNNING
    response = admin_client.post(control_url(second, "cancel"), follow=True)  # asks first
    assert "Are you sure?" in response.content.decode()
    assert job_now_status(second) == SyncJobStatus.RUNNING
    response = admin_client.post(control_url(second, "cancel"), {"confirmed": "1"}, follow=True)
    second.refresh_from_db()
    assert second.status == SyncJobStatus.CANCELLING
    assert any("cancelling" in text for text in page_messages(response))
    # Not allowed now: the service refuses and the page says why.
    response = admin_client.post(control_url(second, "pause"), follow=True)
    second.refresh_from_db()
    assert second.status == SyncJobStatus.CANCELLING
    assert any("Cannot pause" in text for text in page_messages(response))
    # Retry of the failed job: a new job, and its page.
    services.sync_job_finish_if_done(second.pk)  # frees the slot (no day in flight)
    SyncDay.objects.filter(job=second, status="running").update(status="pending")
    second.refresh_from_db()
    if second.status != SyncJobStatus.CANCELLED:
        SyncJob.objects.filter(pk=second.pk).update(status=SyncJobStatus.CANCELLED)
    response = admin_client.post(control_url(first, "retry"))
    retry = SyncJob.objects.get(retry_of=first)
    assert response.status_code == 302 and response["Location"] == change_url(retry)
    assert admin_client.post(control_url(first, "explode")).status_code == 403


@pytest.mark.usefixtures("foreground")
@pytest.mark.django_db
def test_job_page_and_calendar_queries_do_not_grow_with_days_or_errors(client_en: Client) -> None:
    def count(url: str) -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client_en.get(url).status_code == 200
        return len(queries)

    short = create_job(dt.date(2025, 10, 8), dt.date(2025, 10, 10))
    services.sync_job_cancel(short)
    SyncErrorFactory.create(job=short)
    long = create_job(dt.date(2023, 1, 1), dt.date(2025, 10, 10))  # 1,014 days
    SyncErrorFactory.create_batch(60, job=long)
    long_open = f"{change_url(long)}?open=2025-10"  # the short job opens its only month
    assert count(long_open) == count(change_url(short))
    since = (timezone.now() - dt.timedelta(days=1)).isoformat()
    assert count(f"{live_url(long)}?since={since}") == count(f"{live_url(short)}?since={since}")


# --- starting a sync ---------------------------------------------------------------------


@pytest.mark.django_db
def test_start_form_creates_the_job_through_the_service_and_opens_its_page(client_en: Client) -> None:
    page = client_en.get(ADD_URL)
    assert page.status_code == 200
    html = page.content.decode()
    for name in (
        "start_date",
        "end_date",
        "source",
        "path",
        "reprocess",
        "force",
        "parallelism",
        "priority",
        "queue",
    ):
        assert f'name="{name}"' in html
    # Parallelism starts at the default the command and the API use too.
    with override_settings(BATCHSYNC={"DEFAULT_PARALLELISM": 3}):
        assert 'name="parallelism" value="3"' in client_en.get(ADD_URL).content.decode()
    response = client_en.post(
        ADD_URL,
        {
            "start_date": "2025-10-01",
            "end_date": "2025-10-09",
            "source": "demo",
            "reprocess": "all",
            "parallelism": "2",
            "priority": "5",
        },
    )
    job = SyncJob.objects.get()
    assert response.status_code == 302 and response["Location"] == change_url(job)
    assert (job.start_date, job.end_date, job.total_days) == (dt.date(2025, 10, 1), dt.date(2025, 10, 9), 9)
    assert (job.source, job.reprocess, job.parallelism, job.priority) == ("demo", "all", 2, 5)
    assert job.requested_by == "admin" and job.status == SyncJobStatus.PENDING
    assert job.days.count() == 9


@pytest.mark.django_db
def test_start_form_with_force_and_a_csv_path(client_en: Client, csv_root: Path) -> None:
    response = client_en.post(
        ADD_URL,
        {
            "start_date": "2025-10-09",
            "end_date": "2025-10-10",
            "source": "csv",
            "path": str(csv_root),
            "reprocess": "failed",
            "force": "on",
            "parallelism": "1",
            "priority": "0",
        },
    )
    assert response.status_code == 302
    job = SyncJob.objects.get()
    assert job.source_options == {"path": str(csv_root.resolve())}
    assert job.reprocess == Reprocess.ALL


@pytest.mark.django_db
def test_start_form_asks_tushare_for_adjustment_factors(
    client_en: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TUSHARE_TOKEN", "a-token")
    response = client_en.post(ADD_URL, {**START_FORM, "source": "tushare", "with_adj_factor": "on"})
    assert response.status_code == 302
    assert SyncJob.objects.get().source_options == {"with_adj_factor": True}


def form_errors(response: Any) -> dict[str, list[str]]:
    form = response.context["form"]
    return {field: [str(e) for e in errors] for field, errors in form.errors.items()}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"end_date": "2025-09-30"}, "end_date", "must not be before start_date"),
        ({"end_date": "2099-01-01"}, "end_date", "must not be in the future"),
        ({"start_date": "1960-01-01"}, "end_date", "days are allowed"),
        ({"source": "csv"}, "path", "needs a directory path"),
        ({"source": "csv", "path": "/nonexistent/dir"}, "path", "only from the command line"),
        ({"force": "on", "reprocess": "none"}, "force", "force means reprocess=all"),
        ({"parallelism": "0"}, "parallelism", "greater than or equal to 1"),
        ({"priority": "5000"}, "priority", "less than or equal to 1000"),
        ({"source": "nosuch"}, "source", "valid choice"),
        ({"with_adj_factor": "on"}, "with_adj_factor", "takes no option with_adj_factor"),
        ({"start_date": "2025-13-01"}, "start_date", "valid date"),
    ],
)
def test_start_form_rejects_what_the_api_rejects(
    client_en: Client, changes: dict[str, str], field: str, reason: str
) -> None:
    body = {**START_FORM, **changes}
    response = client_en.post(ADD_URL, body)
    assert response.status_code == 200
    errors = form_errors(response)
    assert field in errors, errors
    assert any(reason in message for message in errors[field]), errors
    assert 'class="errornote"' in response.content.decode()
    assert not SyncJob.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/etc", "{root}/../../../../../etc", "{root}/link", "{root}/missing"])
def test_start_form_keeps_csv_paths_under_the_file_roots(
    client_en: Client, csv_root: Path, path: str
) -> None:
    (csv_root / "link").symlink_to("/etc")
    body = {**START_FORM, "source": "csv", "path": path.format(root=csv_root)}
    errors = form_errors(client_en.post(ADD_URL, body))
    reason = "not found" if path.endswith("missing") else "outside the directories"
    assert any(reason in message for message in errors["path"]), errors
    assert not SyncJob.objects.exists()


@pytest.mark.django_db
def test_start_form_refuses_a_second_job_unless_queued(client_en: Client) -> None:
    running = create_job(dt.date(2025, 10, 9), dt.date(2025, 10, 10))
    body = dict(START_FORM)
    response = client_en.post(ADD_URL, body)
    assert response.status_code == 200
    (refusal,) = form_errors(response)["__all__"]
    assert refusal.startswith(str(SyncAlreadyRunning().message)) and running.task_id in refusal
    assert SyncJob.objects.count() == 1
    response = client_en.post(ADD_URL, {**body, "queue": "on"})
    queued = SyncJob.objects.exclude(pk=running.pk).get()
    assert queued.status == SyncJobStatus.QUEUED
    assert response["Location"] == change_url(queued)


@pytest.mark.django_db
def test_start_form_preview_shows_the_plan_and_creates_nothing(client_en: Client) -> None:
    body = {**START_FORM, "end_date": "2025-10-14", "_preview": "1"}
    response = client_en.post(ADD_URL, body)
    assert response.status_code == 200
    assert not SyncJob.objects.exists()
    html = response.content.decode()
    assert "Dry run: 14 days, 4 to load, 10 skipped; nothing was created" in html
    cells = dict(re.findall(r'data-date="([\d-]+)" data-state="(\w+)"', html))
    assert cells["2025-10-01"] == "skipped_non_trading" and cells["2025-10-09"] == "pending"
    assert list(cells.values()).count("pending") == 4
    # The preview is validated like a start.
    response = client_en.post(ADD_URL, {**body, "end_date": "2025-09-01"})
    assert "end_date" in form_errors(response) and 'id="bs-plan"' not in response.content.decode()


# --- nothing is edited by hand -----------------------------------------------------------


@pytest.mark.django_db
def test_jobs_days_and_errors_cannot_be_edited_added_or_deleted(client_en: Client) -> None:
    job = create_job(dt.date(2025, 10, 8), dt.date(2025, 10, 9))
    day = job.days.first()
    assert day is not None
    error = SyncErrorFactory.create(job=job, day=day, traceback="Traceback (most recent call last):\n  boom")
    # The job page is read-only; POSTing to it changes nothing.
    response = client_en.post(change_url(job), {"status": "succeeded", "total_days": "1"})
    assert response.status_code == 405
    job.refresh_from_db()
    assert job.status == SyncJobStatus.PENDING and job.total_days == 2
    assert client_en.get(f"{LIST_URL}{job.pk}/delete/").status_code == 403
    actions = client_en.get(LIST_URL).context["action_form"].fields["action"].choices
    assert "delete_selected" not in {name for name, _ in actions}
    # Days and errors: view only.
    for model, obj in (("syncday", day), ("syncerror", error)):
        base = f"/admin/batchsync/{model}/"
        assert client_en.get(base).status_code == 200
        page = client_en.get(f"{base}{obj.pk}/change/")
        assert page.status_code == 200
        html = page.content.decode()
        assert 'name="_save"' not in html and "<textarea" not in html
        assert client_en.post(f"{base}{obj.pk}/change/", {"error": "edited"}).status_code == 403
        assert client_en.get(f"{base}add/").status_code == 403
        assert client_en.get(f"{base}{obj.pk}/delete/").status_code == 403
    error.refresh_from_db()
    assert error.error == "connection timeout"
    html = client_en.get(f"/admin/batchsync/syncerror/{error.pk}/change/").content.decode()
    assert "Traceback (most recent call last):\n  boom" in html


def staff_client(client: Client, *codenames: str) -> Client:
    user = User.objects.create_user("staff", password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client.force_login(user)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


@pytest.mark.django_db
@pytest.mark.parametrize("allowed", [False, True])
def test_tracebacks_are_shown_only_with_the_view_traceback_permission(client: Client, allowed: bool) -> None:
    job = create_job(dt.date(2025, 10, 9), dt.date(2025, 10, 10))
    error = SyncErrorFactory.create(
        job=job,
        date=dt.date(2025, 10, 9),
        file="/data/2025-10-09.csv",
        line=7,
        traceback='Traceback (most recent call last):\n  File "/srv/x.py"',
    )
    codenames = ["view_syncjob", "view_syncerror"] + (["view_traceback"] if allowed else [])
    staff = staff_client(client, *codenames)
    pages = [
        staff.get(change_url(job)).content.decode(),
        staff.get(f"/admin/batchsync/syncerror/{error.pk}/change/").content.decode(),
        staff.get(
            reverse("admin:batchsync_syncjob_day", args=[job.pk]), {"date": "2025-10-09"}
        ).content.decode(),
    ]
    for page in pages:
        assert error.error in page and "2025-10-09.csv" in page  # the message stays for everyone
        assert ("Traceback (most recent call last)" in page) is allowed, page[:200]


@pytest.mark.django_db
def test_superusers_hold_the_view_traceback_permission(admin_user: User) -> None:
    assert admin_user.has_perm("batchsync.view_traceback")
    assert Permission.objects.filter(codename="view_traceback", content_type__model="syncerror").exists()


@pytest.mark.django_db
def test_view_only_staff_sees_pages_but_cannot_start_or_control(client: Client) -> None:
    viewer = User.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_syncjob"))
    client.force_login(viewer)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    job = create_job(dt.date(2025, 10, 9), dt.date(2025, 10, 10))
    listing = client.get(LIST_URL)
    assert listing.status_code == 200 and job.task_id in listing.content.decode()
    assert listing.context["action_form"] is None or not [
        name for name, _ in listing.context["action_form"].fields["action"].choices if name
    ]
    html = client.get(change_url(job)).content.decode()
    assert 'class="bs-operation"' not in html
    assert client.post(control_url(job, "cancel")).status_code == 403
    assert client.get(ADD_URL).status_code == 403
    job.refresh_from_db()
    assert job.status == SyncJobStatus.PENDING


@pytest.mark.django_db
def test_admin_pages_follow_the_users_language(admin_client: Client) -> None:
    job = create_job(dt.date(2025, 10, 9), dt.date(2025, 10, 10))
    english = admin_client.get(change_url(job), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    chinese = admin_client.get(change_url(job), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    listing_en = admin_client.get(LIST_URL, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Start a sync" in listing_en and "batchsync administration" in listing_en
    assert 'href="/sync/"' in listing_en  # "View site" opens the dashboard
    listing_zh = admin_client.get(LIST_URL, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "启动同步" in listing_zh and "batchsync 管理" in listing_zh
    assert "<dt>total days</dt>" in english and "Cancel</button>" in english
    assert "<dt>总天数</dt>" in chinese and "取消</button>" in chinese
    assert "批量同步任务已启动" in chinese and "Batch sync job started" in english
    start_zh = admin_client.get(ADD_URL, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "开始日期" in start_zh and "结束日期" in start_zh


@pytest.mark.django_db
def test_stored_calendars_are_listed_read_only(client_en: Client) -> None:
    calendars.calendar_bounds("XSHG")  # stores it
    stored = TradingCalendar.objects.get()
    html = client_en.get("/admin/batchsync/tradingcalendar/").content.decode()
    sessions = len(calendars.exchange_sessions("XSHG"))
    with override("en"):
        last = date_format(stored.last_session)
    for text in ("XSHG", stored.source_version, str(sessions), last):
        assert text in html, text
    assert client_en.get("/admin/batchsync/tradingcalendar/add/").status_code == 403
    assert client_en.get("/admin/batchsync/tradingcalendar/XSHG/delete/").status_code == 403


OPERATOR_PERMISSIONS = {
    "viewer": ["view_syncjob"],
    "starter": ["view_syncjob", "add_syncjob"],
    "controller": ["view_syncjob", "change_syncjob"],
    "operator": ["view_syncjob", "add_syncjob", "change_syncjob"],
}


def operation_forms(html: str) -> set[str]:
    """Every operation form on the page, shown or hidden (the live page may show a hidden one)."""
    return set(re.findall(r'class="bs-operation" data-operation="(\w+)"', html))


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("role", "status", "forms", "shown", "actions"),
    [
        ("viewer", SyncJobStatus.RUNNING, set(), set(), set()),
        ("viewer", SyncJobStatus.FAILED, set(), set(), set()),
        # add alone starts jobs; every operation acts on an existing job and needs change too.
        ("starter", SyncJobStatus.RUNNING, set(), set(), set()),
        (
            "controller",
            SyncJobStatus.RUNNING,
            {"cancel", "pause", "resume"},
            {"cancel", "pause"},
            {"cancel", "pause", "resume"},
        ),
        (
            "controller",
            SyncJobStatus.FAILED,
            {"cancel", "pause", "resume"},
            set(),
            {"cancel", "pause", "resume"},
        ),
        (
            "operator",
            SyncJobStatus.FAILED,
            {"cancel", "pause", "resume", "retry"},
            {"retry"},
            {"cancel", "pause", "resume", "retry"},
        ),
    ],
)
def test_the_job_page_and_list_offer_only_the_operations_the_user_may_apply(
    client: Client, role: str, status: str, forms: set[str], shown: set[str], actions: set[str]
) -> None:
    job = SyncJobFactory.create(status=status)
    staff = staff_client(client, *OPERATOR_PERMISSIONS[role])
    html = staff.get(change_url(job)).content.decode()
    assert operation_forms(html) == forms
    assert visible_operations(html) == shown
    # The live page takes the buttons to show from the server, never from a copy of the rules.
    assert visible_operations(staff.get(live_url(job)).content.decode()) == shown
    assert '"transitions"' not in html
    action_form = staff.get(LIST_URL).context["action_form"]
    names = {name for name, _ in action_form.fields["action"].choices if name} if action_form else set()
    # Starting a verify job (tests/test_verify.py) needs what starting a job needs: add.
    verify = {"verify_jobs_checksum", "verify_jobs_against_source", "verify_jobs_checks"}
    starts = "add_syncjob" in OPERATOR_PERMISSIONS[role]
    assert names == {f"{operation}_jobs" for operation in actions} | (verify if starts else set())


@pytest.mark.django_db
def test_a_starter_cannot_retry_or_cancel_from_the_admin(client: Client) -> None:
    job = SyncJobFactory.create(status=SyncJobStatus.FAILED)
    staff = staff_client(client, *OPERATOR_PERMISSIONS["starter"])
    assert staff.post(control_url(job, "retry")).status_code == 403
    assert staff.post(control_url(job, "cancel")).status_code == 403
    assert SyncJob.objects.count() == 1
