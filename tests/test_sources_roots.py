"""File paths from the API and the admin stay under BATCHSYNC_FILE_ROOTS; the command line may read any."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from batchsync import services
from batchsync.conf import file_roots_parse, get_settings
from batchsync.exceptions import InvalidJobRequest
from batchsync.models import SyncJob
from batchsync.sources.roots import source_options_confined
from tests.test_api import BATCH, error_body, make_user, token_client

START = {"start_date": "2025-10-01", "end_date": "2025-10-09", "source": "csv"}


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory next to the root, with a file named like a trading day holding a secret."""
    directory = tmp_path / "private"
    directory.mkdir()
    (directory / "2025-10-09.csv").write_text("ts_code\nSECRET-API-KEY-abc123\n")
    return directory


@pytest.fixture
def operator(db: None) -> APIClient:
    cache.clear()
    client = token_client(make_user("operator", "view_syncjob", "add_syncjob", "change_syncjob"))
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def test_roots_come_from_a_path_list_or_commas() -> None:
    assert file_roots_parse("/data/a:/data/b, /srv/c") == ("/data/a", "/data/b", "/srv/c")
    assert file_roots_parse(["/data/a", " "]) == ("/data/a",)
    assert file_roots_parse("") == ()


def test_the_environment_sets_the_roots(settings: Any) -> None:
    settings.BATCHSYNC = {**settings.BATCHSYNC, "FILE_ROOTS": "/data/a:/data/b"}
    assert get_settings().file_roots == ("/data/a", "/data/b")


def test_with_no_roots_the_api_refuses_file_sources(operator: APIClient, csv_dir: Path) -> None:
    result = error_body(operator.post(BATCH, {**START, "path": str(csv_dir)}, format="json"), 400)
    assert "path" in result["errors"] and "BATCHSYNC_FILE_ROOTS" in result["message"]
    assert SyncJob.objects.count() == 0


@pytest.mark.parametrize(
    "path",
    [
        "/etc",
        "{outside}",
        "{root}/../private",
        "{root}/../../../../../../../etc",
        "{root}/escape",
        "relative/x",
    ],
)
def test_paths_outside_the_roots_are_refused(
    operator: APIClient, csv_root: Path, outside: Path, path: str
) -> None:
    (csv_root / "escape").symlink_to(outside)
    given = path.format(root=csv_root, outside=outside)
    result = error_body(operator.post(BATCH, {**START, "path": given}, format="json"), 400)
    assert "path" in result["errors"] and "is outside the directories" in result["message"], result
    assert "SECRET" not in str(result)
    assert SyncJob.objects.count() == 0


def test_source_options_path_is_confined_too(operator: APIClient, csv_root: Path, outside: Path) -> None:
    body = {**START, "source_options": {"path": str(outside)}}
    assert "path" in error_body(operator.post(BATCH, body, format="json"), 400)["errors"]


def test_a_path_inside_a_root_is_stored_resolved(operator: APIClient, csv_root: Path) -> None:
    (csv_root / "daily").mkdir()
    given = f"{csv_root}/../{csv_root.name}/./daily"
    task_id = operator.post(BATCH, {**START, "path": given}, format="json").json()["data"]["task_id"]
    assert SyncJob.objects.get(task_id=task_id).source_options == {
        "path": str((csv_root / "daily").resolve())
    }


def test_a_path_too_long_for_the_system_is_a_400_on_path(operator: APIClient, csv_root: Path) -> None:
    result = error_body(
        operator.post(BATCH, {**START, "path": f"{csv_root}/{'a' * 300}"}, format="json"), 400
    )
    assert "path" in result["errors"]


def test_sources_without_paths_pass_unchanged(settings: Any) -> None:
    assert source_options_confined("demo", {}) == {}
    with pytest.raises(InvalidJobRequest) as caught:
        source_options_confined("demo", {"path": "/etc"})
    assert caught.value.field == "path"


@pytest.mark.usefixtures("foreground")
@pytest.mark.django_db
def test_the_command_line_may_read_any_directory(outside: Path) -> None:
    """Local operators are not confined: services (command line) take the path as given."""
    request = services.JobRequest(
        dt.date(2025, 10, 9), dt.date(2025, 10, 9), source="csv", source_options={"path": str(outside)}
    )
    services.sync_request_validate(request)
    assert services.sync_job_create(request).source_options == {"path": str(outside)}


def test_the_refusal_is_in_chinese_too(db: None, csv_root: Path) -> None:
    cache.clear()
    client = token_client(make_user("operator", "view_syncjob", "add_syncjob"))
    result = error_body(client.post(BATCH, {**START, "path": "/etc"}, format="json"), 400)
    assert "不在本服务器允许读取文件的目录内" in result["message"]
