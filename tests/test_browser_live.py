"""Chromium against a real `uvicorn syncproject.asgi:application` (the documented ASGI server, so the
pages get their event streams): queueing from the start form and from retry with the blocking job
linked, a queued job's place, the job list refreshing a running row live (pushed), the list at
1440 px without horizontal scroll, and the phone layouts; in English and Chinese.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from playwright.sync_api import Browser, Page, expect

from batchsync import runner, services
from batchsync.models import SyncJob, SyncJobStatus
from tests.asgi_server import Uvicorn, env_on_test_database, uvicorn_server
from tests.browser import LATENCY_SOURCE, PASSWORD, save, wait_until
from tests.factories import SyncJobFactory

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("foreground", "latency_source")]
S = SyncJobStatus
LIST_URL = "/admin/batchsync/syncjob/"
# (language, Accept-Language, viewport width, height)
DESKTOP_EN = ("en", "en", 1440, 900)
DESKTOP_ZH = ("zh", "zh-Hans", 1440, 900)
PHONE_EN = ("en", "en", 390, 844)
PHONE_ZH = ("zh", "zh-Hans", 390, 844)
# Every test at both widths in both languages (the docs keep one screenshot of each page).
VIEWS = [DESKTOP_EN, DESKTOP_ZH, PHONE_EN, PHONE_ZH]
VIEW_IDS = ["1440-en", "1440-zh", "390-en", "390-zh"]


@pytest.fixture(scope="module")
def asgi_process(
    django_db_setup: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Uvicorn]:
    """One server for the module (it holds no state: each test's rows are its own)."""
    env = env_on_test_database(BATCHSYNC_EXTRA_SOURCES=f"latency={LATENCY_SOURCE}")
    with django_db_blocker.unblock(), uvicorn_server(env, tmp_path_factory.mktemp("uvicorn")) as server:
        yield server


@pytest.fixture
def asgi(asgi_process: Uvicorn, transactional_db: None) -> Uvicorn:
    return asgi_process


def operator_page(browser: Browser, server: Uvicorn, view: tuple[str, str, int, int]) -> Page:
    """A browser context at the view's size and language, logged in to the admin as the operator."""
    _, language, width, height = view
    if not User.objects.filter(username="operator").exists():
        User.objects.create_superuser("operator", "operator@example.com", PASSWORD)
    context = browser.new_context(
        viewport={"width": width, "height": height},
        locale="zh-CN" if language.startswith("zh") else "en-US",
        extra_http_headers={"Accept-Language": language},
        base_url=server.url,
        is_mobile=width < 600,
    )
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(f"/admin/login/?next={LIST_URL}")
    page.fill("#id_username", "operator")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page).to_have_url(f"{server.url}{LIST_URL}")
    page.evaluate("localStorage.setItem('django.admin.navSidebarIsOpen', 'false')")
    return page


def create_job(start: dt.date, end: dt.date, *, source: str = "demo", queue: bool = False) -> SyncJob:
    request = services.JobRequest(
        start_date=start, end_date=end, source=source, source_options={}, queue=queue
    )
    return services.sync_job_create(request)


def no_horizontal_scroll(page: Page) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth"))


TEXT = {
    "en": {"offer": "Queue behind it", "place": "Queued: place 1 of 1", "second": "Queued: place 1 of 2"},
    "zh": {
        "offer": "排在它之后",
        "place": "排队中：第 1 位（共 1 个）",  # noqa: RUF001 - the page's Chinese punctuation
        "second": "排队中：第 1 位（共 2 个）",  # noqa: RUF001
    },
}


@pytest.mark.parametrize("view", VIEWS, ids=VIEW_IDS)
def test_queue_from_the_start_form_and_from_retry_with_the_blocking_job_linked(
    browser: Browser, asgi: Uvicorn, screenshot_dir: Path, view: tuple[str, str, int, int]
) -> None:
    name = view[0]
    text = TEXT[name]
    failed = SyncJobFactory.create(
        status=S.FAILED, start_date=dt.date(2025, 10, 9), end_date=dt.date(2025, 10, 9)
    )
    holder = create_job(dt.date(2025, 10, 13), dt.date(2025, 10, 14))  # pending: it holds the slot
    page = operator_page(browser, asgi, view)

    # The start form is refused: the blocking job is named and linked, and queueing is offered.
    page.goto(f"{LIST_URL}add/")
    page.fill("#id_start_date", "2025-10-15")
    page.fill("#id_end_date", "2025-10-16")
    page.select_option("#id_reprocess", "all")
    page.fill("#id_priority", "5")
    page.click("#bs-start-submit")
    blocking = page.locator(".errornote ~ ul .bs-blocking-job, .errorlist .bs-blocking-job").first
    expect(blocking).to_have_text(holder.task_id)
    assert blocking.get_attribute("href") == f"{LIST_URL}{holder.pk}/change/"
    expect(page.locator("#bs-start-queue")).to_have_text(text["offer"])
    assert no_horizontal_scroll(page)
    if view in (DESKTOP_EN, PHONE_ZH):  # the docs' pair
        save(page, screenshot_dir, f"start_queue_offer_{name}.png")
    page.click("#bs-start-queue")
    page.wait_for_url("**/change/")
    queued = SyncJob.objects.latest("created_at")
    assert (queued.status, queued.priority) == (S.QUEUED, 5)
    expect(page.locator("#bs-queue-place")).to_contain_text(text["place"])
    expect(page.locator("#bs-queued-behind")).to_have_text(holder.task_id)

    # Retry of a finished job while another runs: queued with a higher priority, it goes first.
    page.goto(f"{LIST_URL}{failed.pk}/change/")
    expect(page.locator("#bs-retry-blocker")).to_have_text(holder.task_id)
    page.fill("#bs-retry-priority", "9")
    page.click("#bs-retry-queue-submit")
    page.wait_for_url("**/change/")
    retry = SyncJob.objects.get(retry_of=failed)
    assert page.url.endswith(f"{LIST_URL}{retry.pk}/change/")
    assert (retry.status, retry.priority) == (S.QUEUED, 9)
    expect(page.locator("#bs-queue-place")).to_contain_text(text["second"])
    page.click("#bs-queued-behind")
    page.wait_for_url(f"**{LIST_URL}{holder.pk}/change/")
    page.goto(f"{LIST_URL}{retry.pk}/change/")
    if view in (DESKTOP_EN, PHONE_ZH):
        save(page, screenshot_dir, f"job_queued_{name}.png")
    page.context.close()


def run_in_thread(job: SyncJob) -> threading.Thread:
    """The job's days, run here as a foreground worker would (latency source: 0.5 s a day)."""

    def work() -> None:
        try:
            runner.sync_job_run(job.pk)
        finally:
            connection.close()

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


def row_progress(page: Page, job: SyncJob) -> float:
    row = page.locator(f"#result_list tr:has([data-bs-job='{job.pk}'])")
    return float(row.locator(".bs-progress").get_attribute("aria-valuenow") or 0)


@pytest.mark.parametrize("view", VIEWS, ids=VIEW_IDS)
def test_the_job_list_refreshes_a_running_row_live_and_fits_the_screen(
    browser: Browser, asgi: Uvicorn, screenshot_dir: Path, view: tuple[str, str, int, int]
) -> None:
    width = view[2]
    finished = create_job(dt.date(2025, 10, 1), dt.date(2025, 10, 8))  # a holiday week: nothing to load
    services.sync_job_cancel(finished)
    job = create_job(dt.date(2025, 10, 9), dt.date(2025, 10, 17), source="latency")  # 7 days to load
    page = operator_page(browser, asgi, view)
    page.goto(LIST_URL)
    page.evaluate("window.__bsSamePage = true")  # gone if the page reloads
    # The every-job stream is up (uvicorn serves it): the list is pushed, not only polled.
    expect(page.locator("html")).to_have_attribute("data-bs-push", "on")
    row = page.locator(f"#result_list tr:has([data-bs-job='{job.pk}'])")
    expect(row.locator(".bs-status")).to_have_class("bs-status bs-status--pending")

    worker = run_in_thread(job)
    expect(row.locator(".bs-status")).to_have_class("bs-status bs-status--running", timeout=10_000)
    seen = {row_progress(page, job)}

    def moved() -> bool:
        seen.add(row_progress(page, job))
        return len(seen - {0.0, 100.0}) >= 2

    # Pushed, the list polls only every 15 s: two values in between come from the events.
    wait_until(moved, timeout=20, what="the row's progress to move")
    if view == DESKTOP_EN:
        save(page, screenshot_dir, "job_list_live.png")
    worker.join(30)
    expect(row.locator(".bs-status")).to_have_class("bs-status bs-status--succeeded", timeout=10_000)
    expect(row.locator(".bs-progress")).to_have_attribute("aria-valuenow", re.compile(r"^100(\.0)?$"))
    assert page.evaluate("window.__bsSamePage") is True

    assert no_horizontal_scroll(page)
    if width >= 1440:
        # Every column in view, none behind a horizontal scroll.
        right_edges = page.eval_on_selector_all(
            "#result_list thead th", "cells => cells.map(cell => cell.getBoundingClientRect().right)"
        )
        assert len(right_edges) == 9 and max(right_edges) <= width, right_edges  # 8 columns + checkbox
    else:
        # A phone: stacked rows of the essentials (task id, status, progress), nothing else.
        expect(page.locator("#result_list thead")).to_be_hidden()
        for essential in ("th.field-task_id", "td.field-live_status", "td.field-live_progress"):
            expect(row.locator(essential)).to_be_visible()
        for extra in ("td.field-timing", "td.field-eta", "td.field-source", "td.field-requested_by"):
            expect(row.locator(extra)).to_be_hidden()
        task_box = row.locator("th.field-task_id").bounding_box()
        progress_box = row.locator("td.field-live_progress").bounding_box()
        assert task_box and progress_box and progress_box["y"] > task_box["y"]
        if view == PHONE_EN:
            save(page, screenshot_dir, "job_list_phone.png")
        # The job page's field list: one column, each value under its name.
        page.goto(f"{LIST_URL}{job.pk}/change/")
        term, value = page.locator("#bs-fields dt").first, page.locator("#bs-fields dd").first
        term_box, value_box = term.bounding_box(), value.bounding_box()
        assert term_box and value_box
        assert value_box["x"] == pytest.approx(term_box["x"], abs=1) and value_box["y"] > term_box["y"]
        assert no_horizontal_scroll(page)
        if view == PHONE_EN:
            save(page, screenshot_dir, "job_detail_phone.png")
    page.context.close()


STATUS_TEXT = {"en": ("running", "succeeded"), "zh": ("运行中", "成功")}


@pytest.mark.parametrize("view", VIEWS, ids=VIEW_IDS)
def test_the_job_page_follows_its_job_by_push(
    browser: Browser, asgi: Uvicorn, view: tuple[str, str, int, int]
) -> None:
    job = create_job(dt.date(2025, 10, 9), dt.date(2025, 10, 15), source="latency")  # 5 days to load
    page = operator_page(browser, asgi, view)
    running, succeeded = STATUS_TEXT[view[0]]
    page.goto(f"{LIST_URL}{job.pk}/change/")
    expect(page.locator("html")).to_have_attribute("data-bs-push", "on")
    page.evaluate("window.__bsSamePage = true")
    worker = run_in_thread(job)
    expect(page.locator("#bs-status")).to_have_text(running, timeout=10_000)
    worker.join(30)
    expect(page.locator("#bs-status")).to_have_text(succeeded, timeout=10_000)
    expect(page.locator("#bs-progress")).to_have_attribute("aria-valuenow", re.compile(r"^100(\.0)?$"))
    assert page.evaluate("window.__bsSamePage") is True
    page.context.close()


@pytest.mark.parametrize("view", VIEWS, ids=VIEW_IDS)
def test_the_dashboard_follows_the_running_job_by_push(
    browser: Browser, asgi: Uvicorn, view: tuple[str, str, int, int]
) -> None:
    """The dashboard (/sync/) takes the every-job stream: its panel moves between its slow polls."""
    job = create_job(dt.date(2025, 10, 9), dt.date(2025, 10, 17), source="latency")  # 7 days to load
    page = operator_page(browser, asgi, view)
    page.goto("/sync/")
    expect(page.locator("html")).to_have_attribute("data-bs-push", "on")
    page.evaluate("window.__bsSamePage = true")
    expect(page.locator("#bs-current-status")).to_have_class(re.compile("bs-status--pending"))
    worker = run_in_thread(job)
    seen: set[str] = set()

    def moved() -> bool:
        seen.add(page.locator("#bs-current-success").inner_text())
        return len(seen - {"0", "7"}) >= 2

    # Pushed, the panel polls only every 15 s: the loaded count moving in between comes from events.
    wait_until(moved, timeout=20, what="the dashboard's loaded count to move")
    worker.join(30)
    expect(page.locator("#bs-current-success")).to_have_text("7", timeout=10_000)
    assert page.evaluate("window.__bsSamePage") is True
    page.context.close()
