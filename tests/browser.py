"""Fixtures and helpers of the real-browser tests (tests/test_browser*.py), registered for every
test module by the root conftest.py: Debian's Chromium driven by Playwright against a live server
on 127.0.0.1, with a real `manage.py qcluster` processing the days of jobs started from the admin.

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

import pytest
from django.contrib.auth.models import User
from django.db import close_old_connections
from playwright.sync_api import Browser, Page, expect, sync_playwright
from pytest_django.live_server_helper import LiveServer

from batchsync.conf import get_settings
from batchsync.models import SyncJob
from batchsync.sources.demo import demo_day_csv

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
    if not CHROMIUM.exists():
        if os.environ.get("BATCHSYNC_REQUIRE_SERVICES"):
            pytest.fail(f"{CHROMIUM} is missing (apt-get install chromium)", pytrace=False)
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
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
