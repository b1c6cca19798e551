"""`batch_sync verify`, verify jobs (API, admin): loaded days compared with what was loaded."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.test import Client
from django.utils import translation
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from batchsync import loader, runner, services, sql
from batchsync.check_models import DayFinding
from batchsync.models import (
    LoadedDay,
    SkipReason,
    SyncDay,
    SyncDayStatus,
    SyncError,
    SyncJob,
    SyncJobKind,
    SyncJobStatus,
)
from batchsync.sources.base import CsvPayload
from batchsync.sources.demo import demo_day_csv
from batchsync.verify import range_verify, verify_days_plan
from tests.factories import SyncJobFactory

SEP_1, SEP_2, SEP_3, SEP_4 = (dt.date(2025, 9, day) for day in (1, 2, 3, 4))
VERIFY_URL = "/api/v1/sync-status/verify/batch"


def _write_days(directory: Path, *days: dt.date) -> None:
    for day in days:
        (directory / f"{day.isoformat()}.csv").write_bytes(demo_day_csv(day))


def _load(job: SyncJob, day: dt.date) -> None:
    """Load the demo bars of `day` and record their provenance, in one transaction as the runner does."""
    with transaction.atomic(), connection.cursor() as cursor:
        loader.replace_day(cursor, day, CsvPayload(chunks=[demo_day_csv(day)], origin="test"))
        services.loaded_day_record(day, services.DayOrigin(job.source, "f", job.pk))


def _csv_job(directory: Path, *days: dt.date) -> SyncJob:
    """Days loaded from the csv source in `directory` (the job's options name it, as a run's do)."""
    _write_days(directory, *days)
    job = SyncJobFactory.create(
        source="csv", source_options={"path": str(directory)}, start_date=days[0], end_date=days[-1]
    )
    for day in days:
        _load(job, day)
    return job


def _execute(statement: str, params: list[dt.date] | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def _verify(*args: str) -> tuple[int, str]:
    """Run `batch_sync verify`; its exit status and output."""
    out = io.StringIO()
    try:
        call_command("batch_sync", "verify", *args, stdout=out, stderr=io.StringIO())
    except SystemExit as exited:
        return int(exited.code or 0), out.getvalue()
    return 0, out.getvalue()


@pytest.fixture
def bars_frozen() -> Iterator[None]:
    """Any write to the real daily_bar or batchsync_loaded_day fails (even one rolled back later)."""
    _execute(
        "CREATE FUNCTION bs_frozen() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'frozen: % on %', TG_OP, TG_TABLE_NAME; END $$"
    )
    for table in ("daily_bar", "batchsync_loaded_day"):
        _execute(
            f"CREATE TRIGGER bs_frozen BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION bs_frozen()"
        )
    yield
    for table in ("daily_bar", "batchsync_loaded_day"):
        _execute(f"DROP TRIGGER bs_frozen ON {table}")
    _execute("DROP FUNCTION bs_frozen()")


@pytest.mark.django_db(transaction=True)
def test_a_row_changed_with_sql_is_reported_with_its_day_and_exit_1_until_a_force_reload(
    csv_dir: Path,
) -> None:
    _write_days(csv_dir, SEP_1, SEP_2, SEP_3)
    call_command(
        "batch_sync",
        "run",
        "--start",
        "2025-09-01",
        "--end",
        "2025-09-03",
        "--source",
        "csv",
        "--path",
        str(csv_dir),
        "--parallelism",
        "1",
        stdout=io.StringIO(),
    )
    assert _verify("--start", "2025-09-01", "--end", "2025-09-03")[0] == 0

    _execute(
        "UPDATE daily_bar SET close = close + 0.01 WHERE trade_date = %s AND ts_code = '000001.SZ'", [SEP_2]
    )
    code, out = _verify("--start", "2025-09-01", "--end", "2025-09-03", "--parallelism", "2")
    assert code == 1
    assert "2025-09-02: 5,500 rows recorded, 5,500 now, checksum differs" in out
    assert "2025-09-01" not in out.split("\n")[0] and "2025-09-03:" not in out
    repair = (
        "python manage.py batch_sync run --start 2025-09-02 --end 2025-09-02 --force "
        f"--source csv --path {csv_dir}"
    )
    assert repair in out, out

    call_command(*repair.split()[2:], stdout=io.StringIO())
    code, out = _verify("--start", "2025-09-01", "--end", "2025-09-03")
    assert code == 0, out
    assert out.startswith("3 days (16,500 rows) of 2025-09-01 .. 2025-09-03 compared with their load record")
    assert out.rstrip().endswith("none differ")


@pytest.mark.django_db
def test_rows_added_removed_and_days_without_a_record_or_without_rows_are_reported() -> None:
    job = SyncJobFactory.create(source="demo")
    for day in (SEP_1, SEP_2, SEP_3):
        _load(job, day)
    _execute(
        "INSERT INTO daily_bar SELECT trade_date, 'X0001.SZ', open, high, low, close, pre_close, change, "
        "pct_chg, vol, amount FROM daily_bar WHERE trade_date = %s LIMIT 1",
        [SEP_1],
    )
    _execute("DELETE FROM daily_bar WHERE trade_date = %s AND ts_code = '000001.SZ'", [SEP_2])
    _execute("DELETE FROM daily_bar WHERE trade_date = %s", [SEP_3])
    with connection.cursor() as cursor:  # a day loaded outside batchsync: rows, no record
        loader.replace_day(cursor, SEP_4, CsvPayload(chunks=[demo_day_csv(SEP_4)], origin="test"))

    code, out = _verify("--start", "2025-09-01", "--end", "2025-09-05", "--parallelism", "1")
    assert code == 1
    assert out.splitlines()[:4] == [
        "2025-09-01: 5,500 rows recorded, 5,501 now (rows added)",
        "2025-09-02: 5,500 rows recorded, 5,499 now (rows removed)",
        "2025-09-03: 5,500 rows recorded, none now (rows removed)",
        "2025-09-04: no load record, 5,500 rows now (loaded outside batchsync)",
    ]
    # One command per source: the recorded days from demo, the unrecorded one from the default.
    assert out.splitlines()[-1] == (
        "Repair: reload with python manage.py batch_sync run --start 2025-09-01 --end 2025-09-03 --force "
        "--source demo; python manage.py batch_sync run --start 2025-09-04 --end 2025-09-04 --force"
    )
    # A verify job's plan: days with rows or a record are verified, the others skipped and why.
    plan = {day.date: (day.status, day.skip_reason) for day in verify_days_plan(SEP_1, dt.date(2025, 9, 7))}
    assert plan[SEP_3] == (SyncDayStatus.PENDING, SkipReason.NONE)
    assert plan[dt.date(2025, 9, 5)] == (SyncDayStatus.SKIPPED, SkipReason.NOT_LOADED)
    assert plan[dt.date(2025, 9, 6)] == (SyncDayStatus.SKIPPED, SkipReason.NON_TRADING)


@pytest.mark.django_db
def test_against_source_finds_the_day_whose_csv_was_rewritten_after_loading_and_writes_nothing(
    csv_dir: Path,
) -> None:
    _csv_job(csv_dir, SEP_1, SEP_2, SEP_3)
    assert (
        _verify("--start", "2025-09-01", "--end", "2025-09-03", "--against-source", "--parallelism", "1")[0]
        == 0
    )
    header, first, *rest = demo_day_csv(SEP_2).decode().split("\n")
    fields = first.split(",")
    fields[5] = f"{float(fields[5]) + 0.01:.2f}"  # the vendor corrected one close
    (csv_dir / "2025-09-02.csv").write_text("\n".join([header, ",".join(fields), *rest]))
    recorded = list(LoadedDay.objects.values_list("trade_date", "checksum", "loaded_at"))

    assert (
        _verify("--start", "2025-09-01", "--end", "2025-09-03", "--parallelism", "1")[0] == 0
    )  # db unchanged
    code, out = _verify(
        "--start", "2025-09-01", "--end", "2025-09-03", "--against-source", "--parallelism", "1"
    )
    assert code == 1
    assert out.splitlines()[0] == (
        "2025-09-02: the source csv sends 5,500 rows now (5,500 recorded), checksum differs: "
        "its data changed since loading"
    )
    assert f"run --start 2025-09-02 --end 2025-09-02 --force --source csv --path {csv_dir}" in out
    assert list(LoadedDay.objects.values_list("trade_date", "checksum", "loaded_at")) == recorded
    verdicts = range_verify(SEP_1, SEP_3, compare_source=True)
    assert [verdict.matches for verdict in verdicts] == [True, False, True]
    # A source that cannot serve the day (its file gone) is a difference too, with the reason.
    (csv_dir / "2025-09-03.csv").unlink()
    assert (
        "2025-09-03: cannot compare with the source csv: missing file"
        in _verify("--start", "2025-09-03", "--end", "2025-09-03", "--against-source")[1]
    )


def _operator() -> APIClient:
    user = User.objects.create_user("operator")
    user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="batchsync",
            codename__in=["view_syncjob", "add_syncjob", "change_syncjob"],
        )
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("foreground")
def test_an_api_verify_job_runs_with_progress_reports_the_day_and_writes_no_bar(
    csv_dir: Path, bars_frozen: None
) -> None:
    client = _operator()
    answer = client.post(VERIFY_URL, {"start_date": "2025-09-01", "end_date": "2025-09-07", "mode": "nope"})
    assert answer.status_code == 400 and "mode" in answer.json()["errors"]
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE daily_bar DISABLE TRIGGER bs_frozen")
        cursor.execute("ALTER TABLE batchsync_loaded_day DISABLE TRIGGER bs_frozen")
    _csv_job(csv_dir, SEP_1, SEP_2, SEP_3)
    _execute("UPDATE daily_bar SET vol = vol + 1 WHERE trade_date = %s AND ts_code = '600000.SH'", [SEP_3])
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE daily_bar ENABLE TRIGGER bs_frozen")
        cursor.execute("ALTER TABLE batchsync_loaded_day ENABLE TRIGGER bs_frozen")

    answer = client.post(
        VERIFY_URL,
        {"start_date": "2025-09-01", "end_date": "2025-09-07", "mode": "against_source"},
        format="json",
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert answer.status_code == 200, answer.json()
    started = answer.json()["data"]
    assert (started["total_days"], started["message"]) == (7, "Verify job started; 3 days to verify")
    job = SyncJob.objects.get(task_id=started["task_id"])
    assert (job.kind, job.verify_mode, job.requested_by) == (SyncJobKind.VERIFY, "against_source", "operator")

    seen: list[tuple[int, str]] = []
    with translation.override("en"):  # the worker's language is the stored errors' language
        runner.sync_job_run(
            job.pk, on_progress=lambda job: seen.append((job.processed_days, str(job.current_date)))
        )
    assert seen[-1][0] == 7 and len(seen) >= 4  # a step per day verified, as a sync job's

    progress = client.get(f"/api/v1/sync-status/sync/batch/progress/{job.task_id}", HTTP_ACCEPT_LANGUAGE="en")
    data = progress.json()["data"]
    assert (data["status"], data["success"], data["failed"], data["skipped"]) == (
        SyncJobStatus.FAILED,
        2,
        1,
        4,
    )
    assert (data["kind"], data["verify_mode"], data["progress_percent"]) == (
        "verify",
        "against_source",
        100.0,
    )
    assert data["message"].startswith("Verify failed: 2 days match, 1 differ or failed, 4 skipped")
    [error] = data["errors"]
    assert error["date"] == "2025-09-03"
    assert error["error"].startswith("2025-09-03: 5,500 rows recorded, 5,500 now, checksum differs")
    assert "batch_sync run --start 2025-09-03 --end 2025-09-03 --force --source csv" in error["error"]
    days = SyncDay.objects.filter(job=job, status=SyncDayStatus.SUCCEEDED).values_list("date", "rows")
    assert sorted(days) == [(SEP_1, 5500), (SEP_2, 5500)]


@pytest.mark.django_db
def test_admin_actions_start_a_verify_job_over_selected_jobs_or_loaded_days(admin_client: Client) -> None:
    admin_client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    job = SyncJobFactory.create(source="demo", start_date=SEP_1, end_date=SEP_2)
    _load(job, SEP_1)
    _load(job, SEP_2)
    response = admin_client.post(
        "/admin/batchsync/syncjob/",
        {"action": "verify_jobs_checksum", "_selected_action": [job.pk]},
        follow=True,
    )
    verify = SyncJob.objects.get(kind=SyncJobKind.VERIFY)
    assert (verify.start_date, verify.end_date, verify.verify_mode) == (SEP_1, SEP_2, "checksum")
    assert (verify.status, verify.total_days - verify.skipped_days) == (SyncJobStatus.PENDING, 2)
    assert verify.requested_by == "admin"
    assert f"Verify job {verify.task_id} (2025-09-01 .. 2025-09-02)" in response.content.decode()

    days = LoadedDay.objects.filter(trade_date=SEP_2)
    response = admin_client.post(
        "/admin/batchsync/loadedday/",
        {"action": "verify_days_against_source", "_selected_action": [day.pk for day in days]},
        follow=True,
    )
    queued = SyncJob.objects.filter(kind=SyncJobKind.VERIFY).exclude(pk=verify.pk).get()
    assert (queued.start_date, queued.end_date, queued.verify_mode) == (SEP_2, SEP_2, "against_source")
    assert queued.status == SyncJobStatus.QUEUED  # behind the first: a verify job takes the slot too


@pytest.mark.django_db
def test_the_checksum_is_that_of_the_concat_form_earlier_loads_recorded() -> None:
    """`sql.DAY_CHECKSUM` spells each row with `||`; the text is concat's, NULLs included."""
    job = SyncJobFactory.create(source="demo")
    _load(job, SEP_1)
    _execute("UPDATE daily_bar SET pre_close = NULL, change = NULL, pct_chg = NULL WHERE ts_code < '001'")
    scaled = ", ',', ".join(sql.bar_value_at_scale(column) for column in sql.CHECKSUM_COLUMNS)
    concat_form = (
        f"SELECT md5(coalesce(string_agg(concat({scaled}), E'\\n' ORDER BY bar.ts_code), '')) "
        "FROM daily_bar bar WHERE bar.trade_date = %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(concat_form, [SEP_1])
        (expected,) = cursor.fetchone()
    [verdict] = range_verify(SEP_1, SEP_1)
    assert verdict.checksum_now == expected and verdict.rows_now == 5500
    assert not verdict.database_matches  # the NULLs changed the rows after the load


@pytest.mark.django_db
def test_checks_finds_a_day_loaded_before_a_rule_that_fails_it_now() -> None:
    job = SyncJobFactory.create(source="demo")
    for day in (SEP_1, SEP_2):
        _load(job, day)
    # A day loaded when change_consistency was not checked (its record describes these rows).
    _execute(
        "UPDATE daily_bar SET change = change + 1 WHERE trade_date = %s AND ts_code = '000001.SZ'", [SEP_2]
    )
    services.loaded_day_record(SEP_2, services.DayOrigin("demo", "f", job.pk))

    assert _verify("--start", "2025-09-01", "--end", "2025-09-02", "--parallelism", "1")[0] == 0
    code, out = _verify("--start", "2025-09-01", "--end", "2025-09-02", "--checks", "--parallelism", "1")
    assert code == 1, out
    failed = [line for line in out.splitlines() if line.startswith("2025-09-02")]
    assert failed[0].startswith(
        "2025-09-02, column change: data check change_consistency failed on 1 row: '000001.SZ' (change=1.56"
    ), out
    assert "compared with their record and the data checks" in out
    assert "Repair: reload with python manage.py batch_sync run --start 2025-09-02 --end 2025-09-02" in out


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("foreground")
def test_a_checks_verify_job_fails_the_day_a_rule_flags_and_renews_the_findings_of_the_others() -> None:
    job = SyncJobFactory.create(source="demo")
    for day in (SEP_1, SEP_2):
        _load(job, day)
    _execute(
        "UPDATE daily_bar SET change = change + 1 WHERE trade_date = %s AND ts_code = '600000.SH'", [SEP_2]
    )
    services.loaded_day_record(SEP_2, services.DayOrigin("demo", "f", job.pk))
    DayFinding.objects.create(
        trade_date=SEP_1, check_name="row_count_band", severity="warn", count=9, job=job
    )

    request = services.verify_request_build(start_date=SEP_1, end_date=SEP_2, mode="checks")
    verify = services.verify_job_create(request)
    with translation.override("en"):
        runner.sync_job_run(verify.pk)
    verify.refresh_from_db()
    assert (verify.status, verify.success_days, verify.failed_days) == (SyncJobStatus.FAILED, 1, 1)
    [error] = SyncError.objects.filter(job=verify)
    assert error.date == SEP_2
    assert "data check change_consistency failed on 1 row: '600000.SH'" in error.error
    # The day that passed now carries what today's checks find on it (the stale finding is gone).
    assert all(finding.job_id == verify.pk for finding in DayFinding.objects.filter(trade_date=SEP_1))
    assert not DayFinding.objects.filter(trade_date=SEP_1, count=9).exists()


@pytest.mark.django_db
def test_detach_creates_a_verify_job_that_takes_the_slot_or_queues_behind_it() -> None:
    job = SyncJobFactory.create(source="demo")
    _load(job, SEP_1)
    code, out = _verify("--start", "2025-09-01", "--end", "2025-09-03", "--detach")
    verify = SyncJob.objects.get(kind=SyncJobKind.VERIFY)
    assert code == 0 and out.startswith(f"Verify job {verify.task_id} pending: ")
    assert (verify.verify_mode, verify.total_days - verify.skipped_days, verify.requested_by) == (
        "checksum",
        1,
        "cli",
    )
    with pytest.raises(CommandError, match="already running"):
        _verify("--start", "2025-09-01", "--end", "2025-09-03", "--detach", "--checks")
    _verify("--start", "2025-09-01", "--end", "2025-09-03", "--detach", "--checks", "--queue")
    queued = SyncJob.objects.get(kind=SyncJobKind.VERIFY, verify_mode="checks")
    assert queued.status == SyncJobStatus.QUEUED
