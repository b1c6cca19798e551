"""`manage.py batch_sync` run/plan: exit codes, output, terminal progress, Ctrl-C, --detach.

Most tests run the real command in a subprocess against the test database, as a user would.
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
import json
import os
import pty
import re
import select
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_q.models import OrmQ
from django_q.signing import SignedPackage

from batchsync import calendars, dispatch, services
from batchsync.conf import get_settings
from batchsync.models import (
    DailyBar,
    SkipReason,
    SyncDay,
    SyncDayStatus,
    SyncError,
    SyncJob,
    SyncJobStatus,
    TradingCalendar,
)
from batchsync.sources.demo import demo_day_csv
from tests.conftest import PROJECT_DIR
from tests.factories import SyncJobFactory

OCT_9 = dt.date(2025, 10, 9)
TIMEOUT = 60


def run(manage_py: list[str], env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*manage_py, "batch_sync", *args],
        env=env,
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def latest_job() -> SyncJob:
    job = SyncJob.objects.order_by("-id").first()
    assert job is not None
    return job


# --- bad arguments -----------------------------------------------------------------------------

BAD_ARGUMENTS: dict[str, tuple[list[str], str]] = {
    "end before start": (
        ["--start", "2025-10-09", "--end", "2025-10-01"],
        "CommandError: --end: end_date must not be before start_date",
    ),
    "bad date": (
        ["--start", "2025-13-01", "--end", "2025-10-09"],
        "manage.py batch_sync run: error: argument --start: '2025-13-01' is not a date in YYYY-MM-DD form",
    ),
    "missing date": (
        ["--end", "2025-10-09"],
        "manage.py batch_sync run: error: the following arguments are required: --start (see --help)",
    ),
    "future end": (["--start", "2025-10-09", "--end", "2999-01-01"], "CommandError: --end: end_date must"),
    "unknown source": (
        ["--start", "2025-10-09", "--end", "2025-10-09", "--source", "nope"],
        "CommandError: --source: Unknown source nope; choose one of: ",
    ),
    "csv without path": (
        ["--start", "2025-10-09", "--end", "2025-10-09", "--source", "csv"],
        "CommandError: --path: The csv source needs a directory path",
    ),
    "csv path not found": (
        ["--start", "2025-10-09", "--end", "2025-10-09", "--source", "csv", "--path", "/nonexistent/bars"],
        "CommandError: --path: Directory not found: /nonexistent/bars",
    ),
    "csv path is a file": (
        [
            "--start",
            "2025-10-09",
            "--end",
            "2025-10-09",
            "--source",
            "csv",
            "--path",
            str(PROJECT_DIR / "manage.py"),
        ],
        f"CommandError: --path: Not a directory: {PROJECT_DIR / 'manage.py'}",
    ),
    "priority past the database's smallint": (
        ["--start", "2025-10-09", "--end", "2025-10-09", "--priority", "99999"],
        "manage.py batch_sync run: error: argument --priority: priority must be between -1000 and 1000",
    ),
    "parallelism 0": (
        ["--start", "2025-10-09", "--end", "2025-10-09", "--parallelism", "0"],
        "manage.py batch_sync run: error: argument --parallelism: parallelism must be between 1 and 64",
    ),
    "list limit negative": (
        ["list", "--limit", "-1"],
        "manage.py batch_sync list: error: argument --limit: limit must be between 1 and 500 (see --help)",
    ),
    "list limit too large": (
        ["list", "--limit", "501"],
        "manage.py batch_sync list: error: argument --limit: limit must be between 1 and 500 (see --help)",
    ),
    "argparse: not a number": (
        ["--start", "2025-10-09", "--end", "2025-10-09", "--parallelism", "many"],
        "manage.py batch_sync run: error: argument --parallelism: invalid int value: 'many' (see --help)",
    ),
    "argparse: unknown option": (
        ["--start", "2025-10-09", "--end", "2025-10-09", "--bogus"],
        "manage.py batch_sync: error: unrecognized arguments: --bogus (see --help)",
    ),
    "a job's operation without its id": (
        ["status"],
        "manage.py batch_sync status: error: the following arguments are required: job_id (see --help)",
    ),
    "an option of another subcommand": (
        ["list", "--start", "2025-10-09"],
        "manage.py batch_sync: error: unrecognized arguments: --start 2025-10-09 (see --help)",
    ),
    "argparse: unknown action": (
        ["sync", "--start", "2025-10-09"],
        "manage.py batch_sync: error: argument action: invalid choice: 'sync'",
    ),
}


# Runs each case through Django's own manage.py entry point (`ManagementUtility`), in one
# process to spare a Django start per case; exit status and both streams are caught per case.
CASES_DRIVER = """
import contextlib, io, json, sys
import django
django.setup()
from django.core.management import ManagementUtility
results = {}
for name, args in json.loads(sys.argv[1]).items():
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            ManagementUtility(["manage.py", "batch_sync", *args]).execute()
            code = 0
        except SystemExit as exit:
            code = exit.code
    results[name] = [code, out.getvalue(), err.getvalue()]
print(json.dumps(results))
"""


@pytest.mark.django_db(transaction=True)
def test_bad_arguments_exit_2_with_one_readable_line(
    manage_py: list[str], subprocess_env: dict[str, str]
) -> None:
    env = {**subprocess_env, "DJANGO_SETTINGS_MODULE": "syncproject.settings"}
    cases = {name: args for name, (args, _) in BAD_ARGUMENTS.items()}
    # One real `manage.py` process too, for the process's own exit status.
    real = subprocess.Popen(
        [*manage_py, "batch_sync", *cases["end before start"]],
        env=env,
        cwd=PROJECT_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    driver = subprocess.run(
        [manage_py[0], "-c", CASES_DRIVER, json.dumps(cases)],
        env=env,
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=True,
    )
    results = {name: tuple(result) for name, result in json.loads(driver.stdout).items()}
    real_out, real_err = real.communicate(timeout=TIMEOUT)
    results["end before start (process)"] = (real.returncode, real_out, real_err)

    problems = []
    for name, (code, stdout, stderr) in results.items():
        expected = BAD_ARGUMENTS[name.removesuffix(" (process)")][1]
        lines = stderr.splitlines()
        if code != 2 or stdout or len(lines) != 1 or not lines[0].startswith(expected):
            problems.append(f"{name}: exit {code}, stdout {stdout!r}, stderr {stderr!r}")
    assert not problems, "\n".join(problems)
    assert not SyncJob.objects.exists()


# --- acceptance 1: the national day range and September, twice ---------------------------------


def _bars_digest() -> tuple[int, int]:
    return DailyBar.objects.count(), len(set(DailyBar.objects.values_list("trade_date", flat=True)))


@pytest.mark.slow  # real command processes, seconds each
@pytest.mark.django_db(transaction=True)
def test_acceptance_holiday_and_september_ranges_then_again_loads_nothing_twice(
    manage_py: list[str], subprocess_env: dict[str, str]
) -> None:
    october = run(manage_py, subprocess_env, "--start", "2025-10-01", "--end", "2025-10-09")
    assert october.returncode == 0, october.stderr
    job = latest_job()
    assert (job.status, job.total_days, job.success_days, job.skipped_days) == ("succeeded", 9, 1, 8)
    day = SyncDay.objects.get(job=job, date=OCT_9)
    assert (day.status, day.rows) == (SyncDayStatus.SUCCEEDED, 5500)
    assert set(SyncDay.objects.filter(job=job).exclude(date=OCT_9).values_list("status", "skip_reason")) == {
        (SyncDayStatus.SKIPPED, SkipReason.NON_TRADING)
    }
    assert DailyBar.objects.filter(trade_date=OCT_9).count() == 5500
    # Not a terminal: plain progress lines (no carriage returns), then the summary.
    assert "\r" not in october.stdout
    assert "[1/1 loaded] 100.0% current=2025-10-09 failed=0 skipped=8" in october.stdout
    assert "Batch sync finished: 1 succeeded, 0 failed, 8 skipped, took 0m " in october.stdout
    assert f"Job {job.task_id} succeeded" in october.stdout
    # ... and structured log lines with the job id on stderr.
    assert f"job={job.task_id} event=started" in october.stderr
    assert f"job={job.task_id} event=finished status=succeeded" in october.stderr

    september = run(manage_py, subprocess_env, "--start", "2025-09-01", "--end", "2025-09-30")
    assert september.returncode == 0, september.stderr
    job = latest_job()
    assert (job.status, job.total_days, job.success_days, job.skipped_days) == ("succeeded", 30, 22, 8)
    weekend = SyncDay.objects.filter(job=job, status=SyncDayStatus.SKIPPED)
    assert all(d.date.weekday() >= 5 and d.skip_reason == SkipReason.NON_TRADING for d in weekend)
    assert "Batch sync finished: 22 succeeded, 0 failed, 8 skipped" in september.stdout
    loaded = _bars_digest()
    assert loaded == (23 * 5500, 23)

    for start, end, total in (("2025-10-01", "2025-10-09", 9), ("2025-09-01", "2025-09-30", 30)):
        again = run(manage_py, subprocess_env, "--start", start, "--end", end)
        assert again.returncode == 0, again.stderr
        job = latest_job()
        assert (job.success_days, job.skipped_days, job.rows_loaded) == (0, total, 0)
        assert f"Batch sync finished: 0 succeeded, 0 failed, {total} skipped" in again.stdout
        assert SyncDay.objects.filter(job=job, skip_reason=SkipReason.ALREADY_LOADED).count() == total - 8
    assert _bars_digest() == loaded


# --- exit 1, plan, --detach (in process) ----------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_failed_day_exits_1_and_the_summary_lists_its_error(csv_dir: Path) -> None:
    (csv_dir / "2025-09-01.csv").write_bytes(demo_day_csv(dt.date(2025, 9, 1)))
    out = io.StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command(
            "batch_sync", "--start", "2025-09-01", "--end", "2025-09-02", "--source", "csv",
            "--path", str(csv_dir), stdout=out,
        )  # fmt: skip
    assert exited.value.code == 1
    text = out.getvalue()
    assert "Batch sync finished: 1 succeeded, 1 failed, 0 skipped" in text
    assert "2025-09-02: missing file" in text
    job = latest_job()
    assert f"Job {job.task_id} failed" in text
    assert job.status == SyncJobStatus.FAILED


@pytest.mark.usefixtures("foreground")
@pytest.mark.django_db(transaction=True)
def test_resume_takes_over_a_running_job_whose_worker_is_gone(settings: object) -> None:
    """`resume <id>`: one of the ways on that a refused start names, for a killed foreground run."""
    request = services.JobRequest(dt.date(2025, 9, 1), dt.date(2025, 9, 3), "demo", {}, reprocess="all")
    job = services.sync_job_create(request)
    assert services.sync_job_join(job.pk, "gone:1:a") is not None
    from django.core.management.base import CommandError

    with pytest.raises(CommandError) as refused:  # its lease still runs
        call_command("batch_sync", "resume", job.task_id, stdout=io.StringIO())
    assert "its lease runs out and a rerun of its command takes it over here" in str(refused.value)
    assert f"batch_sync resume {job.task_id}" in str(refused.value)
    SyncJob.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now() - dt.timedelta(seconds=1))
    out = io.StringIO()
    call_command("batch_sync", "resume", job.task_id, stdout=out)
    assert f"Taking over job {job.task_id} (running, 0/3 days): its worker was last seen" in out.getvalue()
    job.refresh_from_db()
    assert (job.status, job.success_days, job.rows_loaded) == (SyncJobStatus.SUCCEEDED, 3, 3 * 5500)


@pytest.mark.django_db(transaction=True)
def test_dry_run_shows_the_plan_and_changes_nothing() -> None:
    out = io.StringIO()
    call_command("batch_sync", "plan", "--start", "2025-10-08", "--end", "2025-10-09", stdout=out)
    assert out.getvalue().splitlines() == [
        "2025-10-08  skip  non_trading",
        "2025-10-09  load  ",
        "2 days: 1 to load, 1 skipped (dry run: nothing changed)",
    ]
    out = io.StringIO()
    call_command("batch_sync", "plan", "--start", "2025-10-09", "--end", "2025-10-09", stdout=out)
    assert out.getvalue().splitlines()[-1] == "1 day: 1 to load, 0 skipped (dry run: nothing changed)"
    assert not SyncJob.objects.exists()


def calendar_ending_in(days: int) -> dt.date:
    """Store the XSHG calendar, then move its stored last session to `days` from today."""
    calendars.calendar_bounds("XSHG")
    last = timezone.localdate() + dt.timedelta(days=days)
    TradingCalendar.objects.filter(name="XSHG").update(last_session=last)
    return last


@pytest.mark.django_db(transaction=True)
def test_plan_and_run_warn_when_the_calendar_ends_within_sixty_days() -> None:
    last = calendar_ending_in(20)
    for action in (["plan"], ["run", "--detach"]):
        out, err = io.StringIO(), io.StringIO()
        call_command(
            "batch_sync", *action, "--start", "2025-10-09", "--end", "2025-10-09", stdout=out, stderr=err
        )
        assert err.getvalue().splitlines() == [
            f"Warning: The XSHG calendar ends on {last.isoformat()}, in 20 days: jobs past it are refused "
            "until exchange_calendars is upgraded (pip install -U exchange_calendars)"
        ], action
    assert SyncJob.objects.count() == 1  # the warning does not stop the job


@pytest.mark.django_db(transaction=True)
def test_no_calendar_warning_while_the_calendar_reaches_further() -> None:
    calendar_ending_in(61)
    err = io.StringIO()
    call_command(
        "batch_sync", "plan", "--start", "2025-10-09", "--end", "2025-10-09", stdout=io.StringIO(), stderr=err
    )
    assert err.getvalue() == ""


@pytest.mark.django_db(transaction=True)
def test_detach_enqueues_on_the_cluster_and_prints_the_task_id_and_how_to_follow() -> None:
    out = io.StringIO()
    call_command("batch_sync", "--start", "2025-10-09", "--end", "2025-10-09", "--detach", stdout=out)
    job = latest_job()
    assert job.status == SyncJobStatus.PENDING
    queued = [SignedPackage.loads(q.payload) for q in OrmQ.objects.all()]
    # One cluster task per worker the job may use (the default parallelism).
    assert job.parallelism == get_settings().default_parallelism
    assert [(task["func"], task["args"]) for task in queued] == [
        ("batchsync.tasks.sync_job_work", (job.pk,))
    ] * job.parallelism
    text = out.getvalue()
    assert f"task id: {job.task_id}" in text
    assert f"cluster task: {', '.join(task['id'] for task in queued)}" in text
    assert f"follow:  python manage.py batch_sync status {job.task_id}" in text
    assert "python manage.py qcluster" in text
    assert not DailyBar.objects.exists()  # nothing ran here


@pytest.mark.slow  # real command processes, seconds each
@pytest.mark.django_db(transaction=True)
def test_parallelism_defaults_to_the_setting_and_the_option_overrides_it(
    manage_py: list[str], subprocess_env: dict[str, str]
) -> None:
    env = {**subprocess_env, "BATCHSYNC_DEFAULT_PARALLELISM": "3"}
    for extra, expected in [([], 3), (["--parallelism", "1"], 1)]:
        done = run(manage_py, env, "--start", "2025-10-09", "--end", "2025-10-09", "--force", *extra)
        assert done.returncode == 0, done.stderr
        job = latest_job()
        assert (job.parallelism, job.status, job.rows_loaded) == (expected, SyncJobStatus.SUCCEEDED, 5500)


# --- list and status -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_list_is_a_table_with_a_header_and_aligned_columns() -> None:
    SyncJobFactory(
        task_id="2025-09-01_2025-09-30_1795800000",
        start_date=dt.date(2025, 9, 1),
        end_date=dt.date(2025, 9, 30),
        total_days=30,
        processed_days=30,
        success_days=22,
        skipped_days=8,
    )
    SyncJobFactory(
        task_id="2025-10-09_2025-10-09_1795800001_2",
        status=SyncJobStatus.RUNNING,
        start_date=OCT_9,
        end_date=OCT_9,
        total_days=1,
    )
    out = io.StringIO()
    call_command("batch_sync", "list", stdout=out)
    header, *rows = out.getvalue().splitlines()
    assert header.split() == [
        "task",
        "id",
        "status",
        "range",
        "days",
        "loaded",
        "to_load",
        "failed",
        "skipped",
        "progress",
    ]
    assert len(rows) == 2
    # Every column starts where its header does (left-aligned text) or ends where it ends (numbers).
    for name in ("status", "range"):
        assert {row[header.index(name) - 1 : header.index(name)] for row in rows} == {" "}
        assert all(row[header.index(name)] != " " for row in rows)
    for name in ("days", "loaded", "to_load", "failed", "skipped", "progress"):
        end = header.index(name) + len(name)
        assert all(row[end - 1] != " " and row[end : end + 2] in ("  ", "") for row in rows), rows
    september = next(row for row in rows if "2025-09-01..2025-09-30" in row)
    assert september.split() == [
        "2025-09-01_2025-09-30_1795800000",
        "succeeded",
        "2025-09-01..2025-09-30",
        "30",
        "22",
        "22",
        "0",
        "8",
        "100.0%",
    ]


@pytest.mark.django_db
def test_status_shows_a_dash_for_what_is_not_there_never_none() -> None:
    job = SyncJobFactory.create(status=SyncJobStatus.PENDING, total_days=9, requested_by="")
    out = io.StringIO()
    call_command("batch_sync", "status", job.task_id, stdout=out)
    lines = dict(line.split(None, 1) for line in out.getvalue().splitlines() if " " in line.strip())
    assert "None" not in out.getvalue()
    assert "lock_waits" not in lines and "[]" not in out.getvalue()  # no lock wait: no line at all
    assert lines["estimated_completion"] == lines["end_time"] == lines["retry_of"] == "-"
    assert lines["worker"] == "-"  # no worker, no lease: nothing about a lease

    job.worker_id = "vm:1:abc-0"
    job.lease_expires_at = timezone.now()
    job.save()
    out = io.StringIO()
    call_command("batch_sync", "status", job.task_id, stdout=out)
    worker = next(line for line in out.getvalue().splitlines() if line.startswith("worker "))
    assert worker.split(None, 1)[1].startswith("vm:1:abc-0 (lease until 20")


# --- a terminal: the live progress bar -----------------------------------------------------------


def _read_all(fd: int, proc: subprocess.Popen[bytes]) -> bytes:
    chunks = []
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                data = os.read(fd, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    return b"".join(chunks)


@pytest.mark.slow  # real command processes, seconds each
@pytest.mark.django_db(transaction=True)
def test_a_terminal_gets_a_live_progress_bar(manage_py: list[str], subprocess_env: dict[str, str]) -> None:
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(
        [*manage_py, "batch_sync", "--start", "2025-09-01", "--end", "2025-09-03"],
        env=subprocess_env,
        cwd=PROJECT_DIR,
        stdin=subprocess.DEVNULL,
        stdout=terminal,
        stderr=terminal,
    )
    os.close(terminal)
    try:
        screen = _read_all(controller, proc).decode()
        assert proc.wait(timeout=TIMEOUT) == 0, screen
    finally:
        os.close(controller)
        if proc.poll() is None:
            proc.kill()
    bars = [part for part in screen.split("\r") if re.match(r" *\d+\.\d% \|[# ]{20}\| \d/3 loaded ", part)]
    assert len(bars) >= 3, screen  # redrawn in place (tqdm) as the days go by
    # Counts grow as days finish (1 or 2 done while the third loads, with 1 or 2 workers).
    counted = r"\| [12]/3 loaded 2025-09-0\d failed 0 skipped 0"
    assert any(re.search(counted, bar) for bar in bars), screen
    assert any(bar.startswith("100.0% |####################| 3/3 loaded") for bar in bars), screen
    # The info log lines would break the bar: none of them, not even the job's creation before it.
    assert "event=day_done" not in screen
    assert "event=created" not in screen and " INFO " not in screen, screen
    assert "Batch sync finished: 3 succeeded, 0 failed, 0 skipped" in screen


# --- Ctrl-C ---------------------------------------------------------------------------------------


@pytest.fixture
def slow_source_env(subprocess_env: dict[str, str]) -> dict[str, str]:
    """The `latency` source: demo bars 0.5 s after each request, slow enough to interrupt."""
    return {**subprocess_env, "BATCHSYNC_EXTRA_SOURCES": "latency=batchsync.sources.latency.LatencySource"}


def _start_foreground(manage_py: list[str], env: dict[str, str], parallelism: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            *manage_py,
            "batch_sync",
            "--start",
            "2025-09-01",
            "--end",
            "2025-09-09",
            "--source",
            "latency",
            "--parallelism",
            str(parallelism),
        ],
        env=env,
        cwd=PROJECT_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture(params=[1, 2], ids=["1 worker", "2 workers"])
def foreground(
    request: pytest.FixtureRequest, manage_py: list[str], slow_source_env: dict[str, str]
) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """The command with one worker (one day in flight at a time) and with two worker threads."""
    workers: int = request.param
    proc = _start_foreground(manage_py, slow_source_env, workers)
    try:
        yield proc, workers
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=TIMEOUT)


def _wait_for_log(proc: subprocess.Popen[str], needle: str) -> list[str]:
    assert proc.stderr is not None
    seen: list[str] = []
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen.append(line)
        if needle in line:
            return seen
    raise AssertionError(f"{needle!r} never logged:\n{''.join(seen)}")


@dispatch.handoff(foreground=True)
def _assert_cancelled_and_slot_free(job: SyncJob) -> None:
    assert job.status == SyncJobStatus.CANCELLED
    assert 0 <= job.success_days < 7
    assert not SyncDay.objects.filter(job=job, status=SyncDayStatus.RUNNING).exists()
    assert SyncDay.objects.filter(job=job, status=SyncDayStatus.PENDING).count() == 7 - job.success_days
    loaded = set(SyncDay.objects.filter(job=job, status="succeeded").values_list("date", flat=True))
    assert set(DailyBar.objects.values_list("trade_date", flat=True).distinct()) == loaded
    assert DailyBar.objects.count() == 5500 * len(loaded)
    # The slot is free: a new job starts at once.
    request = services.JobRequest(OCT_9, OCT_9, source="demo", source_options={})
    assert services.sync_job_create(request).status == SyncJobStatus.PENDING


@pytest.mark.slow  # real command processes, seconds each
@pytest.mark.django_db(transaction=True)
def test_ctrl_c_finishes_the_days_in_flight_cancels_the_job_and_frees_the_slot(
    foreground: tuple[subprocess.Popen[str], int],
) -> None:
    proc, workers = foreground
    # 2025-09-02 is loading: with one worker 09-01 is done, with two both days are in flight.
    _wait_for_log(proc, "date=2025-09-02 attempt=1")
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 130, stderr
    job = latest_job()
    assert job.parallelism == workers
    # Every day a worker had started was finished, not dropped; no day was started after.
    started = SyncDay.objects.filter(job=job, attempts__gt=0)
    assert set(started.values_list("status", flat=True)) == {SyncDayStatus.SUCCEEDED}
    # Two days; with two workers, a third if one was taken between the log line and the signal.
    assert job.success_days == 2 if workers == 1 else 2 <= job.success_days <= 3
    assert "Stopping after the current day" in stderr
    assert f"Batch sync cancelled: {job.success_days} succeeded, 0 failed, 2 skipped" in stdout
    assert "Traceback" not in stderr
    _assert_cancelled_and_slot_free(job)


@pytest.mark.slow  # real command processes, seconds each
@pytest.mark.django_db(transaction=True)
def test_ctrl_c_twice_rolls_back_the_days_in_flight_and_still_frees_the_slot(
    foreground: tuple[subprocess.Popen[str], int],
) -> None:
    proc, workers = foreground
    _wait_for_log(proc, "date=2025-09-02 attempt=1")
    proc.send_signal(signal.SIGINT)
    time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 130, stderr
    assert "Aborted: the days in flight were rolled back; the job is cancelled." in stderr
    job = latest_job()
    in_flight = [dt.date(2025, 9, 2)] if workers == 1 else [dt.date(2025, 9, 1), dt.date(2025, 9, 2)]
    # The days in flight were dropped (rolled back, back to pending), not loaded, and no
    # worker thread wrote an error or retried them after its session was ended.
    assert job.success_days == 2 - len(in_flight)
    for date in in_flight:
        assert SyncDay.objects.get(job=job, date=date).status == SyncDayStatus.PENDING
    assert not SyncError.objects.filter(job=job).exists()
    assert f"Batch sync cancelled: {job.success_days} succeeded, 0 failed, 2 skipped" in stdout
    assert "Traceback" not in stderr
    _assert_cancelled_and_slot_free(job)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_quick_ctrl_c_never_print_a_traceback(
    manage_py: list[str], subprocess_env: dict[str, str]
) -> None:
    """Ctrl-C twice, 50 ms apart, at points spread over a run: whatever the workers were doing
    (a COPY, a claim, the cancel, the finish) when their sessions were ended, or the summary
    being printed, or the process exiting: the job ends cancelled, no day running, exit status
    130 and nothing on stderr but the messages."""
    problems = []
    for offset, workers in itertools.product((0.0, 0.3, 0.6, 0.9, 1.2), ("1", "2")):
        proc = subprocess.Popen(
            # Five months (about 100 trading days, several seconds): still running at the last offset.
            [*manage_py, "batch_sync", "--start", "2025-05-01", "--end", "2025-09-30", "--force"],
            env={**subprocess_env, "BATCHSYNC_DEFAULT_PARALLELISM": workers},
            cwd=PROJECT_DIR,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            seen = _wait_for_log(proc, "event=day_start")
            time.sleep(offset)
            proc.send_signal(signal.SIGINT)
            time.sleep(0.05)
            proc.send_signal(signal.SIGINT)
            _, stderr = proc.communicate(timeout=TIMEOUT)
        finally:
            if proc.poll() is None:
                proc.kill()
        job = latest_job()
        if "Traceback" in stderr or proc.returncode != 130 or job.status != SyncJobStatus.CANCELLED:
            where = f"{workers} worker(s), at +{offset}s"
            problems.append(f"{where}: exit {proc.returncode}, {job.status}\n{''.join(seen)}{stderr}")
        assert not SyncDay.objects.filter(job=job, status=SyncDayStatus.RUNNING).exists()
    assert not problems, "\n".join(problems)
