"""Real-browser tests: Debian's Chromium driven by Playwright against a live server on 127.0.0.1,
with a real `manage.py qcluster` processing the days of the jobs started from the admin.

Screenshots of the job list, the job page and the dashboard go to BATCHSYNC_SCREENSHOT_DIR
(default: <tmp>/batchsync-screenshots); the path is printed. With
BATCHSYNC_UPDATE_DOCS_SCREENSHOTS=1 they are also copied to docs/screenshots/ for the README.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest
from django.contrib.auth.models import Permission, User
from django.db import close_old_connections
from django.utils import timezone

from batchsync import runner, services
from batchsync.conf import get_settings
from batchsync.models import SyncDayStatus, SyncJob, SyncJobStatus
from batchsync.sources.demo import demo_day_csv
from tests.conftest import database_url
from tests.factories import SyncJobFactory
from tests.faults import Process, fault_env, fault_options, worker_env

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
PROJECT_DIR = Path(__file__).resolve().parent.parent
LATENCY_SOURCE = "batchsync.sources.latency.LatencySource"  # demo bars, 0.5 s per day
PASSWORD = "browser-pw-123"

if not CHROMIUM.exists():
    if os.environ.get("BATCHSYNC_REQUIRE_SERVICES"):
        pytest.fail(f"{CHROMIUM} is missing (apt-get install chromium)", pytrace=False)
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)", allow_module_level=True)

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402
from pytest_django.live_server_helper import LiveServer  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], *, timeout: float = 60.0, what: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    while True:
        close_old_connections()
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def screenshot_dir() -> Path:
    directory = Path(
        os.environ.get("BATCHSYNC_SCREENSHOT_DIR") or Path(tempfile.gettempdir()) / "batchsync-screenshots"
    )
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Django refuses ORM calls from a thread running an event loop; Playwright's sync API runs
    # one in this thread between calls, while the test's own ORM calls are plain sync code.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def server(transactional_db: Any) -> Iterator[LiveServer]:
    """A live server of this test database, on 127.0.0.1 only, on a free port."""
    live = LiveServer("127.0.0.1:0")
    yield live
    live.stop()


@pytest.fixture
def latency_source(settings: Any) -> None:
    """The latency source (demo bars, 0.5 s per day) in this process, so the form offers it."""
    settings.BATCHSYNC = {
        **settings.BATCHSYNC,
        "SOURCES": {**get_settings().sources, "latency": LATENCY_SOURCE},
    }


def cluster_running(log: str) -> bool:
    """The cluster's "running" line (django-q2 logs it in the site's language)."""
    return any(word in log for word in ("running", "正在运行"))


@pytest.fixture
def cluster(
    subprocess_env: dict[str, str], settings: Any, tmp_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """A real `manage.py qcluster` on this test database, sharing this process's broker settings."""
    env = {
        **subprocess_env,
        "BATCHSYNC_EXTRA_SOURCES": f"latency={LATENCY_SOURCE}",
        "BATCHSYNC_Q_NAME": str(settings.Q_CLUSTER["name"]),
        "BATCHSYNC_Q_WORKERS": "2",
        "DJANGO_DEBUG": "0",
    }
    log_path = tmp_path / "qcluster.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, str(PROJECT_DIR / "manage.py"), "qcluster"],
            env=env,
            cwd=PROJECT_DIR,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until(lambda: cluster_running(log_path.read_text(errors="replace")), timeout=60, what="qcluster")
        yield process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


@pytest.fixture
def page(browser: Browser, server: LiveServer) -> Iterator[Page]:
    User.objects.create_superuser("operator", "operator@example.com", PASSWORD)
    page = logged_in_page(browser, server, "operator", width=1600, height=1000)
    page.evaluate("localStorage.setItem('django.admin.navSidebarIsOpen', 'false')")  # wider pages
    yield page
    page.context.close()


def logged_in_page(browser: Browser, server: LiveServer, username: str, *, width: int, height: int) -> Page:
    """A new English browser context logged in to the admin as `username`, on the job list."""
    context = browser.new_context(
        viewport={"width": width, "height": height},
        locale="en-US",
        extra_http_headers={"Accept-Language": "en"},
        base_url=server.url,
    )
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto("/admin/login/?next=/admin/batchsync/syncjob/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page).to_have_url(f"{server.url}/admin/batchsync/syncjob/")
    return page


def start_from_admin(page: Page, start: str, end: str, *, source: str = "latency") -> SyncJob:
    """Fill the admin's start form and submit it; the browser lands on the new job's page."""
    page.goto("/admin/batchsync/syncjob/")
    page.click("#bs-start-sync")
    page.fill("#id_start_date", start)
    page.fill("#id_end_date", end)
    page.select_option("#id_source", source)
    page.select_option("#id_reprocess", "all")
    page.click("#bs-start-submit")
    page.wait_for_url("**/change/")
    job = SyncJob.objects.latest("created_at")
    assert page.url.endswith(f"/admin/batchsync/syncjob/{job.pk}/change/")
    assert job.requested_by == "operator" and job.source == source
    return job


def progress_value(page: Page) -> float:
    return float(page.get_attribute("#bs-progress", "aria-valuenow") or 0)


def cells_in(page: Page, state: str) -> int:
    return page.locator(f"#bs-calendar .bs-day--{state}").count()


def save(page: Page, directory: Path, name: str) -> Path:
    path = directory / name
    page.screenshot(path=str(path), full_page=True)
    if os.environ.get("BATCHSYNC_UPDATE_DOCS_SCREENSHOTS"):
        docs = PROJECT_DIR / "docs" / "screenshots"
        docs.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, docs / name)
    return path


def watch_job_run_live(page: Page, total_trading_days: int) -> None:
    """Wait while the cluster loads days: the bar and the calendar must move without a reload."""
    page.evaluate("window.__bsSamePage = true")  # gone if the page reloads
    expect(page.locator("#bs-status")).to_have_text("running", timeout=30_000)
    seen_values: set[float] = set()
    seen_running_cell = False
    succeeded_cells: list[int] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        seen_values.add(progress_value(page))
        seen_running_cell = seen_running_cell or cells_in(page, "running") > 0
        succeeded_cells.append(cells_in(page, "succeeded"))
        moved = len(seen_values - {0.0, 100.0}) >= 3
        if moved and seen_running_cell and 2 <= succeeded_cells[-1] < total_trading_days:
            break
        page.wait_for_timeout(150)
    assert len(seen_values - {0.0, 100.0}) >= 3, f"progress bar did not move live: {sorted(seen_values)}"
    assert seen_running_cell, "no calendar cell was shown running"
    assert succeeded_cells[-1] > succeeded_cells[0], f"calendar did not fill live: {succeeded_cells}"
    assert page.evaluate("window.__bsSamePage") is True


def write_csv_days(directory: Path) -> None:
    """Four good days, two missing files (10-15, 10-16) and one bad row (10-17, line 3)."""
    for day in (9, 10, 13, 14):
        date = dt.date(2025, 10, day)
        (directory / f"{date.isoformat()}.csv").write_bytes(demo_day_csv(date))
    lines = demo_day_csv(dt.date(2025, 10, 17)).decode().splitlines()
    fields = lines[2].split(",")
    fields[2] = "not-a-price"
    lines[2] = ",".join(fields)
    (directory / "2025-10-17.csv").write_text("\n".join(lines) + "\n")


def test_operator_starts_watches_cancels_and_inspects_jobs_in_a_real_browser(
    page: Page,
    cluster: subprocess.Popen[bytes],
    latency_source: None,
    csv_root: Path,
    screenshot_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # 1. Start a job from the admin form: 2025-09-01..19 is 15 trading days at 0.5 s each
    #    (latency source) and 4 weekend days; watch its page follow the cluster live.
    job = start_from_admin(page, "2025-09-01", "2025-09-19")
    watch_job_run_live(page, 15)
    detail_shot = save(page, screenshot_dir, "job_detail.png")

    # The dashboard follows the same job live, in another tab.
    dashboard = page.context.new_page()
    dashboard.goto("/sync/")
    expect(dashboard.locator("#bs-current")).to_contain_text(job.task_id)
    expect(dashboard.locator("#bs-current-status")).to_have_text("running")
    first_line = dashboard.locator("#bs-seed").inner_text().splitlines()[0]
    assert "Syncing 2025-09-" in first_line, first_line
    dashboard.evaluate("window.__bsSamePage = true")

    # The end, still without a reload: 100 %, final counts, only the retry button.
    expect(page.locator("#bs-status")).to_have_text("succeeded", timeout=60_000)
    expect(page.locator("#bs-progress")).to_have_attribute("aria-valuenow", "100")
    expect(page.locator('[data-field="success"]').first).to_have_text("15")
    expect(page.locator("#bs-calendar .bs-day--succeeded")).to_have_count(15)
    expect(page.locator("#bs-calendar .bs-day--skipped_non_trading")).to_have_count(4)
    expect(page.locator("#bs-calendar .bs-day--pending")).to_have_count(0)
    expect(page.locator("#bs-calendar .bs-day--running")).to_have_count(0)
    expect(page.locator("#bs-operations form[data-operation=retry]")).to_be_visible()
    expect(page.locator("#bs-operations form[data-operation=cancel]")).to_be_hidden()
    # Hover and click on a day show its rows, duration and attempts.
    cell = page.locator('#bs-calendar .bs-day[data-date="2025-09-02"]')
    assert "rows: 5500" in (cell.get_attribute("title") or "")
    cell.click()
    expect(page.locator('#bs-day-detail [data-detail="rows"]')).to_have_text("5500")
    expect(page.locator('#bs-day-detail [data-detail="attempts"]')).to_have_text("1")
    assert page.evaluate("window.__bsSamePage") is True
    expect(dashboard.locator("#bs-seed")).to_contain_text(
        "Batch sync finished: 15 succeeded, 0 failed, 4 skipped", timeout=15_000
    )
    assert dashboard.evaluate("window.__bsSamePage") is True
    job.refresh_from_db()
    assert job.status == SyncJobStatus.SUCCEEDED and job.success_days == 15

    # 2. Cancel a running job (about 60 trading days) with its button.
    long_job = start_from_admin(page, "2025-06-01", "2025-08-31")
    expect(page.locator("#bs-status")).to_have_text("running", timeout=30_000)
    wait_until(lambda: cells_in(page, "succeeded") >= 2, timeout=30, what="two loaded days on the page")
    expect(page.locator("#bs-operations form[data-operation=pause]")).to_be_visible()
    expect(page.locator("#bs-operations form[data-operation=retry]")).to_be_hidden()
    page.click("#bs-op-cancel")
    page.wait_for_load_state()
    expect(page.locator("ul.messagelist")).to_contain_text(long_job.task_id)
    expect(page.locator("#bs-status")).to_have_text("cancelled", timeout=30_000)
    expect(page.locator("#bs-message")).to_contain_text("Batch sync cancelled")
    expect(page.locator("#bs-operations form[data-operation=cancel]")).to_be_hidden()
    expect(page.locator("#bs-operations form[data-operation=retry]")).to_be_visible()
    long_job.refresh_from_db()
    assert long_job.status == SyncJobStatus.CANCELLED
    pending = long_job.days.filter(status=SyncDayStatus.PENDING).count()
    assert pending > 30, "the job was not stopped early"
    wait_until(lambda: cells_in(page, "pending") == pending, timeout=10, what="the pending days on the page")

    # 3. A csv job with two missing files and a bad row: failed days, errors with tracebacks.
    write_csv_days(csv_root)
    page.goto("/admin/batchsync/syncjob/add/")
    page.fill("#id_start_date", "2025-10-01")
    page.fill("#id_end_date", "2025-10-17")
    page.select_option("#id_source", "csv")
    page.fill("#id_path", str(csv_root))
    page.click("#bs-start-submit")
    page.wait_for_url("**/change/")
    expect(page.locator("#bs-status")).to_have_text("failed", timeout=60_000)
    expect(page.locator('[data-field="failed"]').first).to_have_text("3")
    expect(page.locator("#bs-calendar .bs-day--failed")).to_have_count(3)
    expect(page.locator("#bs-calendar .bs-day--succeeded")).to_have_count(4)
    expect(page.locator("#bs-errors details.bs-error")).to_have_count(3)
    bad_row = page.locator("#bs-errors details.bs-error", has_text="2025-10-17")
    expect(bad_row).to_contain_text("2025-10-17.csv")
    bad_row.locator("summary").click()
    expect(bad_row.locator("pre.bs-traceback")).to_contain_text("Traceback (most recent call last)")
    page.locator('#bs-calendar .bs-day[data-date="2025-10-15"]').click()
    expect(page.locator('#bs-day-detail [data-detail="error"]')).to_contain_text("2025-10-15.csv")
    failed_shot = save(page, screenshot_dir, "job_detail_failed.png")

    # 4. The list and the dashboard with the three jobs.
    page.set_viewport_size({"width": 1800, "height": 1000})  # every column of the list in view
    page.goto("/admin/batchsync/syncjob/")
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(0).locator(".bs-status")).to_have_text("failed")
    expect(rows.nth(1).locator(".bs-status")).to_have_text("cancelled")
    expect(rows.nth(2).locator(".bs-status")).to_have_text("succeeded")
    expect(rows.nth(2).locator(".field-progress")).to_contain_text("100.0%")
    list_shot = save(page, screenshot_dir, "job_list.png")
    expect(dashboard.locator("#bs-jobs tbody tr")).to_have_count(3, timeout=15_000)
    expect(dashboard.locator("#bs-seed")).to_contain_text("Recent errors:")
    expect(dashboard.locator("#bs-seed")).to_contain_text("2025-10-17")
    dashboard_shot = save(dashboard, screenshot_dir, "dashboard.png")
    with capsys.disabled():
        print(
            f"\nscreenshots in {screenshot_dir}: {detail_shot.name} {failed_shot.name} {list_shot.name} "
            f"{dashboard_shot.name}"
        )


@pytest.mark.usefixtures("foreground")
def test_dashboard_in_chinese_shows_the_seeds_text(
    browser: Browser, server: LiveServer, screenshot_dir: Path
) -> None:
    request = services.JobRequest(
        start_date=dt.date(2025, 10, 1),
        end_date=dt.date(2025, 10, 9),
        source="demo",
        source_options={},
    )
    job = services.sync_job_create(request)
    runner.sync_job_run(job.pk)
    follower = User.objects.create_user("follower", password=PASSWORD)
    follower.user_permissions.add(Permission.objects.get(codename="view_syncjob"))
    context = browser.new_context(
        viewport={"width": 1400, "height": 900},
        locale="zh-CN",
        extra_http_headers={"Accept-Language": "zh-Hans"},
        base_url=server.url,
    )
    page = context.new_page()
    page.goto("/sync/")
    expect(page).to_have_url(f"{server.url}/sync/login/?next=/sync/")
    page.fill("#id_username", "follower")
    page.fill("#id_password", PASSWORD)
    page.click("#bs-login-form button[type=submit]")
    expect(page).to_have_url(f"{server.url}/sync/")
    expect(page.locator("#bs-seed")).to_contain_text("批量同步完成: 成功1, 失败0, 跳过8")
    expect(page.locator("#bs-seed")).to_contain_text("进度: 9/9 (100.0%)")
    save(page, screenshot_dir, "dashboard_zh.png")
    context.close()


def test_the_job_page_shows_live_a_day_waiting_on_another_sessions_lock(
    page: Page, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    """The page is open before the wait begins: the note comes and goes by the live updates."""
    options = fault_options(tmp_path / "m", fetch_delay=8)  # time to open the page first
    env = fault_env(worker_env(subprocess_env, BATCHSYNC_LEASE_SECONDS="3"), options)
    args = ["batch_sync", "--start", "2025-09-01", "--end", "2025-09-01", "--source", "fault"]
    run = Process([*args, "--parallelism", "1"], env, tmp_path / "run.log")
    try:
        with psycopg.connect(database_url(), application_name="dba-psql") as locker:
            locker.execute("LOCK TABLE daily_bar IN ACCESS EXCLUSIVE MODE")
            blocker = locker.info.backend_pid
            run.start()
            try:
                wait_until(lambda: SyncJob.objects.exists(), what="the job")
                job = SyncJob.objects.get()
                page.goto(f"/admin/batchsync/syncjob/{job.pk}/change/")
                page.evaluate("window.__bsSamePage = true")  # gone if the page reloads
                note = page.locator("#bs-lock-waits .bs-lock-wait")
                expect(note).to_have_count(0)  # still fetching: nothing waits yet
                expect(note).to_contain_text("2025-09-01 has waited ", timeout=30_000)
                held = f"held by another database session (pid {blocker}): RowExclusiveLock on daily_bar"
                expect(note).to_contain_text(held)
                expect(note.locator("code")).to_have_text(f"pid {blocker} dba-psql · idle in transaction")
            finally:
                locker.rollback()
        expect(note).to_have_count(0, timeout=30_000)
        expect(page.locator("#bs-status")).to_have_text("succeeded", timeout=30_000)
        assert page.evaluate("window.__bsSamePage") is True
        assert run.wait() == 0, run.log()
    finally:
        run.stop()


def staff_page(browser: Browser, server: LiveServer, username: str, *codenames: str) -> Page:
    """A logged-in admin page of a staff user holding only `codenames` (its context closes with it)."""
    user = User.objects.create_user(username, password=PASSWORD, is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return logged_in_page(browser, server, username, width=1400, height=900)


def shown_operations(page: Page) -> list[str]:
    forms = page.locator("#bs-operations form[data-operation]:not([hidden])")
    return [str(forms.nth(index).get_attribute("data-operation")) for index in range(forms.count())]


def test_the_job_page_shows_only_the_buttons_the_server_allows_this_user(
    browser: Browser, server: LiveServer
) -> None:
    """The buttons follow the job live, from the server's list for this user: no copy of the rules."""
    job = SyncJobFactory.create(status=SyncJobStatus.RUNNING, started_at=timezone.now())
    job_url = f"/admin/batchsync/syncjob/{job.pk}/change/"

    viewer = staff_page(browser, server, "viewer", "view_syncjob")
    viewer.goto(job_url)
    expect(viewer.locator("#bs-live")).to_be_visible()  # the live updates ran
    expect(viewer.locator("#bs-operations form")).to_have_count(0)
    viewer.context.close()

    controller = staff_page(browser, server, "controller", "view_syncjob", "change_syncjob")
    controller.goto(job_url)
    expect(controller.locator("#bs-live")).to_be_visible()
    assert shown_operations(controller) == ["cancel", "pause"]
    SyncJob.objects.filter(pk=job.pk).update(status=SyncJobStatus.FAILED, finished_at=timezone.now())
    expect(controller.locator("#bs-status")).to_have_text("failed")
    # Retry starts a job: without the add permission it is not offered, although the job failed.
    assert shown_operations(controller) == []
    expect(controller.locator("#bs-op-retry")).to_have_count(0)
    controller.context.close()
