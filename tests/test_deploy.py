"""The files under deploy/: the documented production environment passes `check --deploy`, and
the Procfile's processes (uvicorn with whitenoise, and qcluster) serve a job started over HTTP.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import django
import pytest
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token

from batchsync.models import DailyBar, SyncJobStatus
from tests.conftest import PROJECT_DIR, database_url
from tests.faults import qcluster, wait_until

DEPLOY_DIR = PROJECT_DIR / "deploy"
HOST = "batchsync.example.com"
TIMEOUT = 120


def documented_environment() -> dict[str, str]:
    """The variables of deploy/batchsync.env.example, as systemd's EnvironmentFile reads them."""
    variables: dict[str, str] = {}
    for line in (DEPLOY_DIR / "batchsync.env.example").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            variables[name.strip()] = value.strip()
    return variables


def production_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """This machine's environment without any setting of ours, plus the documented production one.

    The secret key file and the static root move into `tmp_path`; `python` and `uvicorn` are
    the ones of this virtualenv, as on a server where the venv's bin is on PATH.
    """
    ours = ("DJANGO_", "BATCHSYNC_", "GUNICORN_", "UVICORN_")
    others = {"DATABASE_URL", "REDIS_URL", "PORT", "WEB_CONCURRENCY", "FORWARDED_ALLOW_IPS"}
    env = {k: v for k, v in os.environ.items() if not k.startswith(ours) and k not in others}
    env.update(documented_environment())
    env.update(
        DJANGO_SECRET_KEY_FILE=str(tmp_path / "secret_key"),
        DJANGO_STATIC_ROOT=str(tmp_path / "static"),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        PYTHONUNBUFFERED="1",
    )
    env.update(overrides)
    return env


def test_check_deploy_passes_with_no_warnings_under_the_documented_production_environment(
    tmp_path: Path,
) -> None:
    env = production_env(tmp_path)
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env=env,
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues (0 silenced)." in done.stdout, done.stdout + done.stderr
    # The key was made for this install, readable by its owner only.
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


def procfile() -> dict[str, str]:
    processes = {}
    for line in (DEPLOY_DIR / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        processes[name.strip()] = command.strip()
    return processes


@contextmanager
def web_server(env: dict[str, str], log_path: Path) -> Iterator[int]:
    """The Procfile's `web` process, listening on a socket bound here to a free port."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    port = listener.getsockname()[1]
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            ["sh", "-c", procfile()["web"]],
            env={**env, "UVICORN_FD": str(listener.fileno())},
            cwd=PROJECT_DIR,
            stdout=log,
            stderr=subprocess.STDOUT,
            pass_fds=(listener.fileno(),),
            start_new_session=True,
        )
    listener.close()  # uvicorn has its own copy
    try:
        yield port
    finally:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


class Client:
    """HTTP as it reaches uvicorn from the TLS proxy: the site's Host and X-Forwarded-Proto."""

    def __init__(self, port: int, token: str = "") -> None:
        self.port = port
        self.token = token

    def request(
        self, method: str, path: str, body: Any = None, *, https: bool = True, accept_encoding: str = ""
    ) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        headers = {"Host": HOST}
        if accept_encoding:
            headers["Accept-Encoding"] = accept_encoding
        if https:
            headers["X-Forwarded-Proto"] = "https"
        if self.token:
            headers["Authorization"] = f"Token {self.token}"
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            connection.request(method, path, body=payload, headers=headers)
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def json(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        status, _, content = self.request(method, path, body)
        return status, json.loads(content)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_uvicorn_and_qcluster_from_the_procfile_run_a_job_started_over_http(tmp_path: Path) -> None:
    processes = procfile()
    env = production_env(tmp_path, DATABASE_URL=database_url())
    user = get_user_model().objects.create_superuser("operator", "operator@example.com", "not-used-here")
    token = Token.objects.create(user=user).key

    release = subprocess.run(
        ["sh", "-c", processes["release"]],
        env=env,
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=TIMEOUT * 2,
        check=False,
    )
    assert release.returncode == 0, release.stdout + release.stderr
    # The worker line is the command the shared qcluster helper runs.
    assert shlex.split(processes["worker"]) == ["python", "manage.py", "qcluster"]

    with (
        web_server(env, tmp_path / "web.log") as port,
        qcluster(env, tmp_path / "worker.log", workers=1) as cluster,
    ):
        client = Client(port, token)
        try:
            status, body = client.json(
                "POST",
                "/api/v1/sync-status/sync/batch",
                {"start_date": "2025-10-09", "end_date": "2025-10-09"},
            )
            assert (status, body["status"]) == (200, "success"), body
            task_id = body["data"]["task_id"]

            def finished() -> dict[str, Any] | None:
                status, body = client.json("GET", f"/api/v1/sync-status/sync/batch/progress/{task_id}")
                assert status == 200, body
                data: dict[str, Any] = body["data"]
                return data if data["status"] not in ("pending", "running") else None

            progress = wait_until(finished, timeout=TIMEOUT, interval=0.5, what="the job to finish")
        except AssertionError:
            web_log = (tmp_path / "web.log").read_text(errors="replace")
            raise AssertionError(f"web:\n{web_log[-3000:]}\nworker:\n{cluster.log()[-3000:]}") from None
        assert progress["status"] == SyncJobStatus.SUCCEEDED, progress
        # The ASGI server streams the job's events: a finished job's state, then the end.
        status, headers, content = client.request(
            "GET", f"/api/v1/sync-status/sync/batch/progress/{task_id}/events"
        )
        assert (status, headers["Content-Type"]) == (200, "text/event-stream"), content
        assert (
            content.startswith(b"retry: 3000\n\nevent: job\ndata: ") and b'"status": "succeeded"' in content
        )
        assert DailyBar.objects.filter(trade_date=dt.date(2025, 10, 9)).count() == 5500

        # Static files: collected by the release step, served by whitenoise (gzip when asked).
        source = Path(django.__file__).parent / "contrib" / "admin" / "static" / "admin" / "css" / "base.css"
        status, headers, content = client.request("GET", "/static/admin/css/base.css")
        assert (status, content) == (200, source.read_bytes())
        assert headers["Content-Type"].startswith("text/css")
        status, headers, _ = client.request("GET", "/static/admin/css/base.css", accept_encoding="gzip")
        assert (status, headers.get("Content-Encoding")) == (200, "gzip")

        # Production behaviour: plain HTTP is sent to HTTPS, an unknown page is a plain 404.
        status, headers, _ = client.request("GET", "/admin/", https=False)
        assert (status, headers["Location"]) == (301, f"https://{HOST}/admin/")
        status, _, content = client.request("GET", "/no-such-page/")
        assert status == 404
        assert b"Traceback" not in content and b"DEBUG = True" not in content
        _, headers, _ = client.request("GET", "/static/admin/css/base.css")
        assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
