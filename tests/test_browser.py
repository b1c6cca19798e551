"""Real-browser tests: Debian's Chromium driven by Playwright against a live server on 127.0.0.1,
with a real `manage.py qcluster` processing the days of the jobs started from the admin.

Screenshots of the job list, the job page and the dashboard go to BATCHSYNC_SCREENSHOT_DIR
(default: <tmp>/batchsync-screenshots); the path is printed. With
BATCHSYNC_UPDATE_DOCS_SCREENSHOTS=1 they are also copied to docs/screenshots/ for the README.
"""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import psycopg
import pytest
from django.contrib.auth.models import Permission, User
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect
from pytest_django.live_server_helper import LiveServer

from batchsync import runner, services
from batchsync.models import SyncDayStatus, SyncJob, SyncJobStatus
from tests.browser import (
    PASSWORD,
    cells_in,
    logged_in_page,
    save,
    start_from_admin,
    wait_until,
    watch_job_run_live,
    write_csv_days,
)
from tests.conftest import database_url
from tests.factories import SyncJobFactory
from tests.faults import Process, fault_env, fault_options, worker_env

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


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
    page.click("#bs-op-cancel")  # asks first (tests/test_browser_progress.py: "No" keeps the job)
    expect(page.locator("#bs-confirm-question")).to_contain_text(long_job.task_id)
    page.click("#bs-confirm-yes")
    page.wait_for_url("**/change/")
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

    # 3. A csv job with two missing files and a bad row: failed days, errors without tracebacks.
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
    expect(bad_row.locator("pre.bs-traceback")).to_have_count(0)  # a data error: no Python traceback
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
    expect(rows.nth(2).locator(".field-live_progress")).to_contain_text("100.0%")
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
