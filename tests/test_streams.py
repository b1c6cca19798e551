"""Server-sent events from a real `uvicorn syncproject.asgi:application` on this test database,
read by a plain HTTP client: each day's event arrives within 1 s of the day's commit.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test import AsyncClient, Client
from rest_framework.authtoken.models import Token

from batchsync import runner, services
from batchsync.api.streams import APPLICATION_NAME
from batchsync.models import SyncDay, SyncDayStatus, SyncJobStatus
from tests.asgi_server import Uvicorn, env_on_test_database, uvicorn_server
from tests.browser import wait_until
from tests.conftest import PROJECT_DIR

BATCH = "/api/v1/sync-status/sync/batch"
HEARTBEAT_SECONDS = 0.5


@pytest.fixture(scope="module")
def uvicorn_process(
    django_db_setup: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Uvicorn]:
    """One server for the module (it holds no state: each test's rows are its own)."""
    env = env_on_test_database(BATCHSYNC_EVENTS_HEARTBEAT=str(HEARTBEAT_SECONDS))
    with django_db_blocker.unblock(), uvicorn_server(env, tmp_path_factory.mktemp("uvicorn")) as server:
        yield server


@pytest.fixture
def uvicorn(uvicorn_process: Uvicorn, transactional_db: None) -> Uvicorn:
    return uvicorn_process


@dataclass
class Received:
    kind: str  # the `event:` name, or "comment" for a heartbeat
    data: dict[str, Any]
    at: float  # time.time() when its blank line arrived


@dataclass
class SseClient:
    """A plain HTTP client reading an event stream line by line, in a thread of its own."""

    port: int
    path: str
    token: str
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    events: list[Received] = field(default_factory=list)
    retry: str = ""
    connected: threading.Event = field(default_factory=threading.Event)
    ended: threading.Event = field(default_factory=threading.Event)

    def start(self) -> SseClient:
        self.http = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        self.http.request("GET", self.path, headers={"Authorization": f"Token {self.token}"})
        self.response = self.http.getresponse()
        self.status = self.response.status
        self.headers = dict(self.response.getheaders())
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def _read(self) -> None:
        kind, data = "message", ""
        try:
            for raw in self.response:
                line = raw.decode().rstrip("\n")
                if line.startswith("retry:"):
                    self.retry = line.partition(":")[2].strip()
                    self.connected.set()
                elif line.startswith(":"):
                    self.events.append(Received("comment", {}, time.time()))
                elif line.startswith("event:"):
                    kind = line.partition(":")[2].strip()
                elif line.startswith("data:"):
                    data += line.partition(":")[2].strip()
                elif line == "" and data:
                    self.events.append(Received(kind, json.loads(data), time.time()))
                    kind, data = "message", ""
        except (OSError, ValueError, AttributeError, http.client.HTTPException):
            pass  # closed by the test
        finally:
            self.ended.set()

    def close(self) -> None:
        with suppress(OSError):
            self.http.sock.shutdown(socket.SHUT_RDWR) if self.http.sock else None
        self.http.close()

    def of_kind(self, kind: str) -> list[Received]:
        return [event for event in list(self.events) if event.kind == kind]


def token_for(username: str, *, superuser: bool = True) -> str:
    if superuser:
        user = User.objects.create_superuser(username, f"{username}@example.com", "not-used")
    else:
        user = User.objects.create_user(username, password="not-used")
    return str(Token.objects.create(user=user).key)


def create_job(start: dt.date, end: dt.date, **options: Any) -> Any:
    request = services.JobRequest(start_date=start, end_date=end, source="demo", source_options={}, **options)
    return services.sync_job_create(request)


def listening_sessions() -> int:
    """Open event streams' connections (they name themselves: `api.streams.APPLICATION_NAME`)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [APPLICATION_NAME]
        )
        row = cursor.fetchone()
    return int(row[0]) if row else 0


@pytest.mark.slow
@pytest.mark.usefixtures("foreground")
def test_each_days_event_arrives_within_a_second_of_its_commit(uvicorn: Uvicorn) -> None:
    token = token_for("operator")
    job = create_job(dt.date(2025, 10, 9), dt.date(2025, 10, 17))  # 7 trading days of 9
    client = SseClient(uvicorn.port, f"{BATCH}/progress/{job.task_id}/events", token).start()
    try:
        assert client.status == 200, uvicorn.log()[-2000:]
        assert client.headers["Content-Type"].startswith("text/event-stream")
        assert client.headers["Cache-Control"] == "no-cache"
        assert client.connected.wait(10)
        assert client.retry == "3000"
        # The job's state as the stream opened: the first event, before any day ran.
        wait_until(lambda: client.of_kind("job"), timeout=10, what="the first job event")
        first = client.of_kind("job")[0].data
        assert (first["task_id"], first["status"], first["processed_days"]) == (job.task_id, "pending", 2)

        outcome = runner.sync_job_run(job.pk)
        assert outcome.job.status == SyncJobStatus.SUCCEEDED
        assert client.ended.wait(10), "the stream did not end when the job finished"
    finally:
        client.close()

    days = {
        day.date.isoformat(): day
        for day in SyncDay.objects.filter(job=job, status=SyncDayStatus.SUCCEEDED).order_by("date")
    }
    assert len(days) == 7
    day_events = {event.data["date"]: event for event in client.of_kind("day")}
    assert sorted(day_events) == sorted(days)
    delays = {}
    for date, event in day_events.items():
        assert event.data["day_status"] == "succeeded" and event.data["day_rows"] == 5500
        committed = days[date].finished_at
        assert committed is not None
        delays[date] = event.at - committed.timestamp()
    assert all(-0.1 < delay < 1.0 for delay in delays.values()), delays
    # Counts follow each day, and the last event is the finished job (then the stream ends).
    processed = [event.data["processed_days"] for event in client.of_kind("job")]
    assert processed == sorted(processed) and processed[-1] == 9
    last = client.events[-1]
    assert (last.kind, last.data["status"], last.data["success_days"]) == ("job", "succeeded", 7)


@pytest.mark.slow
@pytest.mark.usefixtures("foreground")
def test_every_jobs_stream_heartbeats_and_closes_its_connection_when_the_client_goes(
    uvicorn: Uvicorn,
) -> None:
    token = token_for("operator")
    before = listening_sessions()
    client = SseClient(uvicorn.port, f"{BATCH}/events", token).start()
    try:
        assert client.status == 200
        assert client.connected.wait(10)
        wait_until(lambda: listening_sessions() == before + 1, timeout=10, what="the stream's LISTEN")
        # Idle: heartbeat comments, a little over every BATCHSYNC_EVENTS_HEARTBEAT seconds.
        wait_until(lambda: len(client.of_kind("comment")) >= 2, timeout=10, what="two heartbeats")
        beats = [event.at for event in client.of_kind("comment")]
        assert beats[1] - beats[0] == pytest.approx(HEARTBEAT_SECONDS, abs=0.4)
        # Any job's changes: a new job's event arrives on commit.
        job = create_job(dt.date(2025, 10, 9), dt.date(2025, 10, 9))
        wait_until(
            lambda: [e for e in client.of_kind("job") if e.data["task_id"] == job.task_id],
            timeout=5,
            what="the new job's event",
        )
    finally:
        client.close()
    # The client went away: the server cancels the stream, which closes its connection.
    wait_until(lambda: listening_sessions() == before, timeout=10, what="the stream's connection to close")


@pytest.mark.slow
def test_static_files_are_served_under_uvicorn(uvicorn: Uvicorn) -> None:
    """whitenoise's middleware serves them under ASGI too (from the apps here; collected in production)."""
    connection = http.client.HTTPConnection("127.0.0.1", uvicorn.port, timeout=10)
    connection.request("GET", "/static/batchsync/live_events.js")
    response = connection.getresponse()
    source = PROJECT_DIR / "batchsync" / "static" / "batchsync" / "live_events.js"
    assert (response.status, response.read()) == (200, source.read_bytes())
    assert response.getheader("Content-Type", "").startswith("text/javascript")
    connection.close()


@pytest.mark.slow
def test_a_finished_jobs_stream_sends_its_state_and_ends(uvicorn: Uvicorn) -> None:
    token = token_for("operator")
    job = services.sync_job_cancel(create_job(dt.date(2025, 10, 9), dt.date(2025, 10, 9)))
    client = SseClient(uvicorn.port, f"{BATCH}/progress/{job.task_id}/events", token).start()
    assert client.ended.wait(10)
    assert [(e.kind, e.data["status"]) for e in client.events] == [("job", "cancelled")]


@pytest.mark.slow
def test_the_stream_is_refused_as_the_progress_endpoint_refuses(uvicorn: Uvicorn) -> None:
    job = create_job(dt.date(2025, 10, 9), dt.date(2025, 10, 9))
    nobody = SseClient(uvicorn.port, f"{BATCH}/progress/{job.task_id}/events", "").start()
    assert nobody.status == 401
    follower = token_for("follower", superuser=False)
    refused = SseClient(uvicorn.port, f"{BATCH}/progress/{job.task_id}/events", follower).start()
    assert refused.status == 403
    User.objects.get(username="follower").user_permissions.add(
        Permission.objects.get(codename="view_syncjob")
    )
    missing = SseClient(uvicorn.port, f"{BATCH}/progress/no-such-job/events", follower).start()
    assert missing.status == 404
    for client in (nobody, refused, missing):
        assert client.ended.wait(5)
        client.close()


@pytest.mark.django_db
def test_under_wsgi_the_stream_answers_204_so_the_page_keeps_polling(admin_client: Client) -> None:
    job = create_job(dt.date(2025, 10, 9), dt.date(2025, 10, 9))
    assert admin_client.get(f"{BATCH}/progress/{job.task_id}/events").status_code == 204
    assert admin_client.get(f"{BATCH}/events").status_code == 204


@pytest.mark.django_db(transaction=True)
def test_under_asgi_the_stream_starts_with_the_retry_hint_and_the_jobs_state(admin_user: User) -> None:
    job = services.sync_job_cancel(create_job(dt.date(2025, 10, 11), dt.date(2025, 10, 12)))

    async def read_stream() -> tuple[int, str]:
        client = AsyncClient()
        await client.aforce_login(admin_user)
        response = await client.get(f"{BATCH}/progress/{job.task_id}/events")
        chunks = [chunk async for chunk in response.streaming_content]  # type: ignore[attr-defined]
        return response.status_code, b"".join(chunks).decode()

    status, body = async_to_sync(read_stream)()
    assert status == 200
    retry, event, end = body.split("\n\n")
    assert (retry, end) == ("retry: 3000", "")
    kind, data = event.split("\n")
    assert kind == "event: job"
    state = json.loads(data.removeprefix("data: "))
    assert (state["task_id"], state["status"], state["total_days"]) == (job.task_id, "cancelled", 2)
