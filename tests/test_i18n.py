"""Translations: zh_Hans (default, the seed's words) and en catalogs, complete and compiled."""

from __future__ import annotations

import datetime as dt
import gettext
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from batchsync.exceptions import SyncAlreadyRunning
from batchsync.models import SyncJob, SyncJobStatus

PROJECT_DIR = Path(__file__).resolve().parent.parent
LOCALE_DIR = PROJECT_DIR / "batchsync" / "locale"
LANGUAGES = ("zh_Hans", "en")
MSGFMT = shutil.which("msgfmt") or "/usr/bin/msgfmt"

# The seed's exact Chinese for batchsync's messages.
SEED_WORDS = {
    "A sync job is already running": "已有同步任务正在运行",
    "Syncing %(date)s... (%(percent)s%%)": "正在同步 %(date)s... (%(percent)s%%)",
    "Batch sync finished: %(success)s succeeded, %(failed)s failed, %(skipped)s skipped, "
    "took %(minutes)sm %(seconds)ss": "批量同步完成: 成功%(success)s, 失败%(failed)s, 跳过%(skipped)s, "
    "耗时%(minutes)s分%(seconds)s秒",
}


@pytest.fixture(autouse=True)
def _default_language() -> None:
    """Back to LANGUAGE_CODE: an earlier test in this process may have left another one active."""
    translation.deactivate()


def statistics(po: Path) -> str:
    """msgfmt's check (formats, headers) and its count of translated/untranslated/fuzzy."""
    result = subprocess.run(
        [MSGFMT, "--check", "--statistics", "-o", "/dev/null", str(po)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stderr.strip()


@pytest.mark.parametrize("language", LANGUAGES)
def test_catalog_is_fully_translated_and_valid(language: str) -> None:
    summary = statistics(LOCALE_DIR / language / "LC_MESSAGES" / "django.po")
    assert "untranslated" not in summary and "fuzzy" not in summary, summary


@pytest.mark.parametrize("language", LANGUAGES)
def test_committed_mo_is_the_compiled_po(language: str, tmp_path: Path) -> None:
    messages = LOCALE_DIR / language / "LC_MESSAGES"
    fresh = tmp_path / "django.mo"
    subprocess.run([MSGFMT, "-o", str(fresh), str(messages / "django.po")], check=True)
    with (messages / "django.mo").open("rb") as committed, fresh.open("rb") as compiled:
        assert gettext.GNUTranslations(committed)._catalog == gettext.GNUTranslations(compiled)._catalog  # type: ignore[attr-defined]


def _ignore(directory: str, names: list[str]) -> set[str]:
    skipped = {name for name in names if name.startswith(".") or name in ("__pycache__", "staticfiles")}
    if Path(directory).name == "bench":
        skipped.add("data")
    return skipped | ({"artifacts"} & set(names))


@pytest.mark.slow
def test_every_message_in_the_project_is_translated(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    """makemessages over a copy of the project finds no message the catalogs lack."""
    copy = tmp_path / "project"
    shutil.copytree(PROJECT_DIR, copy, ignore=_ignore)
    subprocess.run(
        [sys.executable, "manage.py", "makemessages", "-l", "zh_Hans", "-l", "en"],
        cwd=copy,
        env={**subprocess_env, "PYTHONPATH": str(copy)},
        check=True,
        capture_output=True,
    )
    for language in LANGUAGES:
        po = copy / "batchsync" / "locale" / language / "LC_MESSAGES" / "django.po"
        summary = statistics(po)
        if "untranslated" in summary or "fuzzy" in summary:
            missing = subprocess.run(
                [shutil.which("msgattrib") or "msgattrib", "--untranslated", "--no-obsolete", str(po)],
                capture_output=True,
                text=True,
                check=False,
            ).stdout
            msgids = [
                line for line in missing.splitlines() if line.startswith("msgid ") and line != 'msgid ""'
            ]
            pytest.fail(
                f"{language}: {summary} {msgids}; run makemessages -l zh_Hans -l en, translate, "
                "compilemessages"
            )


def test_seed_messages_have_the_seeds_exact_chinese() -> None:
    for msgid, chinese in SEED_WORDS.items():
        with translation.override("zh-hans"):
            assert _(msgid) == chinese
        with translation.override("en"):
            assert _(msgid) == msgid
    # The start message has a plural form in English; Chinese has one form.
    singular, plural = (
        "Batch sync job started; %(days)s day to sync",
        "Batch sync job started; %(days)s days to sync",
    )
    for days in (1, 9):
        with translation.override("zh-hans"):
            assert (
                ngettext(singular, plural, days) % {"days": days}
                == f"批量同步任务已启动，将同步 {days} 天的数据"  # noqa: RUF001
            )
        with translation.override("en"):
            expected = (
                "Batch sync job started; 1 day to sync"
                if days == 1
                else "Batch sync job started; 9 days to sync"
            )
            assert ngettext(singular, plural, days) % {"days": days} == expected


def test_chinese_is_the_default_language() -> None:
    assert translation.get_language() == "zh-hans"
    assert SyncAlreadyRunning().message == "已有同步任务正在运行"
    with translation.override("en"):
        assert SyncAlreadyRunning().message == "A sync job is already running"


def test_job_messages_read_as_in_the_seed() -> None:
    started = dt.datetime(2025, 10, 18, 4, 0, tzinfo=dt.UTC)
    finished = SyncJob(
        status=SyncJobStatus.SUCCEEDED,
        total_days=10,
        processed_days=10,
        success_days=7,
        skipped_days=3,
        started_at=started,
        active_seconds=930,
    )
    running = SyncJob(
        status=SyncJobStatus.RUNNING, total_days=10, processed_days=3, current_date=dt.date(2025, 10, 3)
    )
    assert finished.message == "批量同步完成: 成功7, 失败0, 跳过3, 耗时15分30秒"
    assert running.message == "正在同步 2025-10-03... (30.0%)"
    with translation.override("en"):
        assert finished.message == "Batch sync finished: 7 succeeded, 0 failed, 3 skipped, took 15m 30s"
