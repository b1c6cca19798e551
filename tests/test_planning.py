"""The one request builder: the command, the API and the admin get the same rules from it."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.utils import translation
from rest_framework.test import APIClient

from batchsync import services
from batchsync.exceptions import InvalidJobRequest
from batchsync.models import LoadedDay, Reprocess, SkipReason, SyncDayStatus, SyncJob
from tests.conftest import PROJECT_DIR
from tests.factories import SyncDayFactory, SyncJobFactory

OCT_9 = dt.date(2025, 10, 9)
FORCE_CONFLICT = "force means reprocess=all; do not combine it with another reprocess"


def build(**inputs: Any) -> services.JobRequest:
    return services.sync_request_build(**{"start_date": OCT_9, "end_date": OCT_9, **inputs})


def refusal(**inputs: Any) -> tuple[str, str]:
    with translation.override("en"), pytest.raises(InvalidJobRequest) as raised:
        build(**inputs)
    return raised.value.field, raised.value.message


def test_force_means_reprocess_all_and_refuses_another_reprocess() -> None:
    assert build(force=True).reprocess == Reprocess.ALL
    assert build(force=True, reprocess=Reprocess.ALL).reprocess == Reprocess.ALL
    assert build().reprocess == Reprocess.FAILED
    assert refusal(force=True, reprocess=Reprocess.NONE) == ("force", FORCE_CONFLICT)


def test_path_is_a_shortcut_for_source_options_path_and_may_not_contradict_it(tmp_path: Path) -> None:
    request = build(source="csv", path=str(tmp_path), confine_paths=False)
    assert request.source_options == {"path": str(tmp_path)}
    same = build(
        source="csv", path=str(tmp_path), source_options={"path": str(tmp_path)}, confine_paths=False
    )
    assert same.source_options == {"path": str(tmp_path)}
    field, _ = refusal(source="csv", path=str(tmp_path), source_options={"path": "/elsewhere"})
    assert field == "path"


@pytest.mark.parametrize("name", ["self", "Path", "1st", "x" * 51, "a-b"])
def test_source_option_names_are_checked(name: str) -> None:
    field, message = refusal(source_options={name: 1})
    assert field == "source_options" and "Invalid option name" in message


@pytest.mark.django_db
def test_paths_are_confined_to_the_file_roots_unless_the_command_line_asks(
    tmp_path: Path, settings: Any
) -> None:
    settings.BATCHSYNC = {**settings.BATCHSYNC, "FILE_ROOTS": [str(tmp_path / "root")]}
    (tmp_path / "root").mkdir()
    assert build(source="csv", path=str(tmp_path), confine_paths=False).source_options["path"] == str(
        tmp_path
    )
    field, message = refusal(source="csv", path=str(tmp_path))
    assert field == "path" and "outside the directories" in message


@pytest.mark.parametrize(
    ("inputs", "field"),
    [
        ({"priority": 1001}, "priority"),
        ({"parallelism": 0}, "parallelism"),
        ({"end_date": OCT_9 - dt.timedelta(days=1)}, "end_date"),
        ({"source": "nosuch"}, "source"),
    ],
)
def test_every_bound_is_checked_by_the_builder(inputs: dict[str, Any], field: str) -> None:
    assert refusal(**inputs)[0] == field


@pytest.mark.django_db
def test_the_api_and_the_admin_answer_the_builders_refusal_on_the_same_field(
    admin_client: Client, admin_user: Any
) -> None:
    api = APIClient()
    api.force_authenticate(admin_user)
    body = {"start_date": "2025-10-09", "end_date": "2025-10-09", "force": True, "reprocess": "none"}
    answer = api.post("/api/v1/sync-status/sync/batch", body, format="json", HTTP_ACCEPT_LANGUAGE="en")
    assert answer.status_code == 400, answer.content
    assert FORCE_CONFLICT in answer.content.decode()
    form = {
        **{key: str(value) for key, value in body.items() if key != "force"},
        "force": "on",
        "source": "demo",
        "parallelism": "1",
        "priority": "0",
    }
    page = admin_client.post("/admin/batchsync/syncjob/add/", form, HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200
    assert page.context["form"].errors["force"] == [FORCE_CONFLICT]
    assert not SyncJob.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_command_answers_the_builders_refusal_in_one_line_with_exit_2(
    manage_py: list[str], subprocess_env: dict[str, str]
) -> None:
    argv = ["batch_sync", "--start", "2025-10-09", "--end", "2025-10-09", "--force", "--reprocess", "none"]
    done = subprocess.run(
        [*manage_py, *argv], env=subprocess_env, cwd=PROJECT_DIR, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"CommandError: --force: {FORCE_CONFLICT}"]


def test_the_force_rule_is_defined_once() -> None:
    package = PROJECT_DIR / "batchsync"
    holders = [
        path.relative_to(PROJECT_DIR).as_posix()
        for path in package.rglob("*.py")
        if "do not combine it with another" in path.read_text()
    ]
    assert holders == ["batchsync/services/planning.py"]


# --- the plan: loaded from this source, or from another -------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("reprocess", "planned_source", "expected"),
    [
        (Reprocess.FAILED, "demo", (SkipReason.ALREADY_LOADED, "demo")),
        (Reprocess.FAILED, "csv", (SkipReason.LOADED_OTHER_SOURCE, "demo")),
        (Reprocess.NONE, "csv", (SkipReason.LOADED_OTHER_SOURCE, "demo")),
        (Reprocess.ALL, "csv", (SkipReason.NONE, "demo")),  # force replaces it
        (Reprocess.FAILED, None, (SkipReason.ALREADY_LOADED, "demo")),  # no source: any counts
    ],
)
def test_plan_tells_a_day_loaded_by_another_source_apart(
    reprocess: str, planned_source: str | None, expected: tuple[str, str]
) -> None:
    job = SyncJobFactory.create(source="demo")
    LoadedDay.objects.create(
        trade_date=OCT_9, source="demo", options_fingerprint="f", job=job, rows=1, checksum="c"
    )
    [day] = services.sync_days_plan(OCT_9, OCT_9, reprocess, source=planned_source)
    assert (day.skip_reason, day.loaded_from) == expected


@pytest.mark.django_db
def test_a_day_loaded_before_provenance_counts_as_loaded_by_its_last_jobs_source() -> None:
    SyncDayFactory.create(job=SyncJobFactory.create(source="csv"), date=OCT_9, status=SyncDayStatus.SUCCEEDED)
    [day] = services.sync_days_plan(OCT_9, OCT_9, Reprocess.FAILED, source="demo")
    assert (day.skip_reason, day.loaded_from) == (SkipReason.LOADED_OTHER_SOURCE, "csv")
    assert services.skip_reason_label(day) == "loaded from csv"
    summary = services.sync_days_plan_summary([day])
    assert summary.other_source == 1 and "force replaces it" in summary.message
