"""Shared fixtures: real PostgreSQL (the test database pytest-django creates), no mocks."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.db import connection

from batchsync import dispatch
from tests.faults import Ledger, LoadLog, load_log
from tests.pgcluster import pg_cluster  # noqa: F401 (a session fixture: a private PostgreSQL to crash)

PROJECT_DIR = Path(__file__).resolve().parent.parent


@pytest.fixture
def fast_leases(settings: Any) -> dict[str, Any]:
    """Short leases and backoffs so fault tests finish in seconds."""
    overridden: dict[str, Any] = {
        **settings.BATCHSYNC,
        "LEASE_SECONDS": 2.0,
        "SOURCE_RETRY_BACKOFF_SECONDS": 0.05,
    }
    settings.BATCHSYNC = overridden
    return overridden


def database_url() -> str:
    """A URL for the database the tests use right now (the test database), for subprocesses."""
    db = connection.settings_dict
    host = db["HOST"] or "127.0.0.1"
    if host.startswith("/"):  # the embedded server's socket directory
        return f"postgres://{db['USER']}@{quote(host, safe='')}/{db['NAME']}"
    port = db["PORT"] or 5432
    return f"postgres://{db['USER']}@{host}:{port}/{db['NAME']}"


@pytest.fixture
def subprocess_env() -> dict[str, str]:
    """Environment for a `manage.py` subprocess that talks to this test database."""
    env = dict(os.environ)
    env["DATABASE_URL"] = database_url()
    env["PYTHONPATH"] = str(PROJECT_DIR)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture
def manage_py() -> list[str]:
    return [sys.executable, str(PROJECT_DIR / "manage.py")]


@pytest.fixture
def csv_dir(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "csv"
    directory.mkdir()
    yield directory


@pytest.fixture
def csv_root(csv_dir: Path, settings: Any) -> Path:
    """`csv_dir`, as the one directory the API and the admin may read (BATCHSYNC FILE_ROOTS)."""
    settings.BATCHSYNC = {**settings.BATCHSYNC, "FILE_ROOTS": [str(csv_dir)]}
    return csv_dir


@pytest.fixture
def loads() -> Iterator[LoadLog]:
    """Every COPY into daily_bar from any process, logged by a trigger (see `tests.faults.load_log`)."""
    with load_log() as log:
        yield log


@pytest.fixture
def ledger(request: pytest.FixtureRequest) -> Iterator[Ledger]:
    """The test's record of faults injected and rows checked, written for the reliability summary."""
    record = Ledger(request.node.name)
    yield record
    record.write()


@pytest.fixture
def foreground() -> Iterator[None]:
    """Services called by the test hand no job to the cluster: the test runs the jobs itself."""
    with dispatch.handoff(foreground=True):
        yield
