"""Alerts for real: a local SMTP server (aiosmtpd) and a local HTTP server receive them.

A failing day sends one e-mail and one signed webhook; a second failure of the same scope is
grouped (nothing sent); the next success sends one recovery. A missed freshness deadline is
alerted by `batch_sync alerts check` with no cluster and no job at all.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connections, transaction
from django.utils.module_loading import import_string
from django_q.models import OrmQ
from django_q.signing import SignedPackage
from rest_framework.test import APIClient

from batchsync import dispatch, runner, services
from batchsync.alert_models import Alert, AlertDelivery, AlertKind
from batchsync.api.outputs import SyncJobProgressOutputSerializer
from batchsync.conf import get_settings
from batchsync.models import LoadedDay, SyncJob, SyncJobStatus, SyncSchedule
from batchsync.services.alerts import AlertEvent, alert_record
from batchsync.sources.demo import demo_day_csv
from tests.factories import SyncJobFactory
from tests.faults import Process, qcluster, wait_until, worker_env

SEP_29, SEP_30 = dt.date(2025, 9, 29), dt.date(2025, 9, 30)
SECRET = "test-webhook-secret"
ADDRESSES = ("ops@example.com", "oncall@example.com")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- a real SMTP server ----------------------------------------------------------------------


class Inbox:
    """aiosmtpd handler: every message the server accepted, parsed."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 Message accepted for delivery"


@pytest.fixture
def inbox(settings: Any) -> Iterator[Inbox]:
    """A local SMTP server; Django's SMTP backend points at it."""
    handler = Inbox()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", controller.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.DEFAULT_FROM_EMAIL = "batchsync@example.com"
    try:
        yield handler
    finally:
        controller.stop()


# --- a real webhook receiver -----------------------------------------------------------------


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.body)
        return loaded

    def signed_with(self, secret: str) -> bool:
        """The receiver's check, as docs/alerts.md shows it."""
        timestamp = self.headers["X-Batchsync-Timestamp"]
        expected = hmac.new(secret.encode(), timestamp.encode() + b"." + self.body, hashlib.sha256)
        return hmac.compare_digest(self.headers["X-Batchsync-Signature"], f"sha256={expected.hexdigest()}")


@dataclass
class Receiver:
    """What the webhook server received, and how it answers: `statuses` in turn, then 200."""

    url: str = ""
    statuses: list[int] = field(default_factory=list)
    hang: threading.Event | None = None  # set: answer nothing until the test ends
    requests: list[Received] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A local HTTP server in a thread, receiving the webhook's POSTs."""
    state = Receiver()
    release = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.requests.append(Received(dict(self.headers.items()), body))
            if state.hang is not None:
                release.wait(10)
                return
            status = state.statuses.pop(0) if state.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/batchsync"
    try:
        yield state
    finally:
        release.set()
        server.shutdown()
        server.server_close()


@pytest.fixture
def channels(settings: Any, inbox: Inbox, receiver: Receiver) -> dict[str, Any]:
    """Both channels configured, short timeouts and backoffs; alerts in English."""
    settings.LANGUAGE_CODE = "en"
    settings.BATCHSYNC = {
        **settings.BATCHSYNC,
        "ALERT_EMAILS": ",".join(ADDRESSES),
        "ALERT_WEBHOOK_URL": receiver.url,
        "ALERT_WEBHOOK_SECRET": SECRET,
        "ALERT_TIMEOUT_SECONDS": 2.0,
        "ALERT_RETRIES": 2,
        "ALERT_RETRY_BACKOFF_SECONDS": 0.05,
        "ALERT_RETRY_BACKOFF_MAX_SECONDS": 0.1,
    }
    overridden: dict[str, Any] = settings.BATCHSYNC
    return overridden


# --- helpers ---------------------------------------------------------------------------------


def csv_run(csv_dir: Path, start: dt.date, end: dt.date, **kwargs: Any) -> SyncJob:
    """A csv job run here to its end, as the command's foreground does."""
    with dispatch.handoff(foreground=True):
        request = services.JobRequest(
            start, end, source="csv", source_options={"path": str(csv_dir)}, **kwargs
        )
        job = services.sync_job_create(request)
    return runner.sync_job_run(job.pk).job


def run_queued_alert_tasks() -> list[str]:
    """Run the alert tasks waiting on the ORM broker, as a cluster worker would; their results."""
    results = []
    for queued in OrmQ.objects.order_by("id"):
        task = SignedPackage.loads(queued.payload)
        if task["func"] == dispatch.ALERT_TASK:
            results.append(import_string(task["func"])(*task["args"]))
        queued.delete()
    return results


def kinds_sent(inbox: Inbox, receiver: Receiver) -> tuple[list[str], list[str]]:
    subjects = [str(message["Subject"]) for message in inbox.messages]
    return subjects, [request.json["alert"]["kind"] for request in receiver.requests]


# --- the acceptance: one failing day, one e-mail, one signed webhook -------------------------


@pytest.mark.usefixtures("foreground")
@pytest.mark.django_db(transaction=True)
def test_a_failing_day_sends_one_email_and_one_signed_webhook_then_groups_then_recovers_once(
    csv_dir: Path, channels: dict[str, Any], inbox: Inbox, receiver: Receiver
) -> None:
    (csv_dir / f"{SEP_29:%Y%m%d}.csv").write_bytes(demo_day_csv(SEP_29))  # Sep 30 has no file: it fails
    job = csv_run(csv_dir, SEP_29, SEP_30)
    assert (job.status, job.success_days, job.failed_days) == (SyncJobStatus.FAILED, 1, 1)

    # Recorded with the run's end, queued for the cluster on commit; nothing sent on the day path.
    alert = Alert.objects.get()
    assert (alert.kind, alert.scope, alert.job_id, alert.occurrences) == (
        AlertKind.FAILED_DAYS,
        "source:csv",
        job.pk,
        1,
    )
    assert sorted(AlertDelivery.objects.values_list("channel", "status")) == [
        ("email", "pending"),
        ("webhook", "pending"),
    ]
    assert inbox.messages == [] and receiver.requests == []
    assert run_queued_alert_tasks() == ["email sent, webhook sent"]

    (mail,) = inbox.messages
    assert sorted(mail["To"].addresses[i].addr_spec for i in range(2)) == sorted(ADDRESSES)
    assert mail["Subject"].startswith("[batchsync] job finished with failed days: Job ")
    body = mail.get_content()
    assert job.task_id in body and "1 failed day(s); 1 loaded" in body and "2025-09-30:" in body

    (hook,) = receiver.requests
    assert hook.signed_with(SECRET) and not hook.signed_with("another secret")
    assert hook.headers["X-Batchsync-Event"] == "failed_days"
    assert hook.headers["Content-Type"].startswith("application/json")
    payload = hook.json
    # The job's part is exactly the progress endpoint's object.
    assert set(payload["job"]) == set(SyncJobProgressOutputSerializer().fields)
    assert (payload["job"]["task_id"], payload["job"]["failed"], payload["job"]["success"]) == (
        job.task_id,
        1,
        1,
    )
    assert payload["job"]["errors"][0]["date"] == "2025-09-30"
    assert payload["alert"]["id"] == alert.pk and payload["alert"]["kind"] == "failed_days"
    assert payload["alert"]["message"] == alert.message
    delivery = AlertDelivery.objects.get(channel="webhook")
    assert (delivery.status, delivery.attempts, hook.headers["X-Batchsync-Delivery"]) == (
        "sent",
        1,
        str(delivery.pk),
    )

    # The same scope fails again: grouped into the open incident, nothing new is sent.
    again = csv_run(csv_dir, SEP_29, SEP_30)
    assert again.status == SyncJobStatus.FAILED
    assert run_queued_alert_tasks() == []
    call_command("batch_sync", "alerts", "check", stdout=StringIO())
    assert len(inbox.messages) == 1 and len(receiver.requests) == 1
    alert.refresh_from_db()
    assert alert.occurrences == 2 and alert.resolved_at is None
    assert Alert.objects.get(job=again).grouped_into_id == alert.pk
    assert not AlertDelivery.objects.filter(alert__job=again).exists()

    # Fixed: the next successful run of the scope closes it and sends one recovery.
    (csv_dir / f"{SEP_30:%Y%m%d}.csv").write_bytes(demo_day_csv(SEP_30))
    fixed = csv_run(csv_dir, SEP_29, SEP_30)
    assert fixed.status == SyncJobStatus.SUCCEEDED
    assert run_queued_alert_tasks() == ["email sent, webhook sent"]
    subjects, hooks = kinds_sent(inbox, receiver)
    assert hooks == ["failed_days", "recovered"] and subjects[1].startswith("[batchsync] recovered: ")
    recovered = Alert.objects.get(kind=AlertKind.RECOVERED)
    alert.refresh_from_db()
    assert alert.resolved_by_id == recovered.pk and recovered.job_id == fixed.pk
    assert receiver.requests[1].json["job"]["status"] == "succeeded"

    # Another success: nothing open, nothing sent.
    csv_run(csv_dir, SEP_29, SEP_30, reprocess="all")
    assert run_queued_alert_tasks() == []
    assert len(inbox.messages) == 2 and len(receiver.requests) == 2


@pytest.mark.usefixtures("foreground")
@pytest.mark.django_db(transaction=True)
def test_a_schedules_failures_are_grouped_apart_from_jobs_started_by_hand(csv_dir: Path) -> None:
    nightly = SyncSchedule.objects.create(name="nightly", cron="0 18 * * 1-5", source="csv")
    (csv_dir / f"{SEP_29:%Y%m%d}.csv").write_bytes(demo_day_csv(SEP_29))
    csv_run(csv_dir, SEP_29, SEP_30, schedule_id=nightly.pk)
    csv_run(csv_dir, SEP_29, SEP_30, schedule_id=nightly.pk)
    csv_run(csv_dir, SEP_29, SEP_30)  # by hand: the source's scope, not the schedule's
    scheduled, by_hand = f"schedule:{nightly.pk}", "source:csv"
    incidents = {alert.scope: alert for alert in Alert.objects.open_incidents()}
    assert set(incidents) == {scheduled, by_hand}
    assert (incidents[scheduled].occurrences, incidents[scheduled].schedule_id) == (2, nightly.pk)
    assert incidents[by_hand].occurrences == 1

    (csv_dir / f"{SEP_30:%Y%m%d}.csv").write_bytes(demo_day_csv(SEP_30))
    csv_run(csv_dir, SEP_29, SEP_30, schedule_id=nightly.pk)
    (recovered,) = Alert.objects.filter(kind=AlertKind.RECOVERED)
    assert recovered.scope == scheduled
    assert list(Alert.objects.open_incidents().values_list("scope", flat=True)) == [by_hand]


# --- delivery: retries, timeouts, a failing channel ------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_webhook_is_retried_after_a_500_with_the_same_delivery_id_and_a_fresh_signature(
    channels: dict[str, Any], inbox: Inbox, receiver: Receiver
) -> None:
    receiver.statuses = [500, 503]
    out = StringIO()
    call_command("batch_sync", "alerts", "test", stdout=out)
    assert len(receiver.requests) == 3  # 500, 503, then 200
    assert all(request.signed_with(SECRET) for request in receiver.requests)
    assert len({request.headers["X-Batchsync-Delivery"] for request in receiver.requests}) == 1
    webhook = AlertDelivery.objects.get(channel="webhook")
    assert (webhook.status, webhook.attempts, webhook.last_error) == (
        "sent",
        3,
        "HTTP 503 Service Unavailable",
    )
    assert len(inbox.messages) == 1 and inbox.messages[0]["Subject"].startswith("[batchsync] test alert: ")
    assert receiver.requests[0].json["job"] is None
    assert "webhook sent (3 attempts)" in out.getvalue() and "email sent (1 attempt)" in out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_a_hanging_webhook_is_bounded_by_the_timeout_and_fails_only_its_own_delivery(
    channels: dict[str, Any], inbox: Inbox, receiver: Receiver, settings: Any
) -> None:
    settings.BATCHSYNC = {**channels, "ALERT_TIMEOUT_SECONDS": 0.3, "ALERT_RETRIES": 1}
    receiver.hang = threading.Event()
    alert = services.alert_test_record()
    started = time.monotonic()
    deliveries = {d.channel: d for d in services.alert_deliver(alert.pk)}
    took = time.monotonic() - started
    bound = get_settings().alert_delivery_bound_seconds
    assert bound == pytest.approx(2 * 0.3 + 0.05)
    assert 0.6 <= took < bound + 1.0  # two attempts of 0.3 s each, then given up
    assert (deliveries["webhook"].status, deliveries["webhook"].attempts) == ("failed", 2)
    assert "timed out" in deliveries["webhook"].last_error
    assert deliveries["email"].status == "sent" and len(inbox.messages) == 1


@pytest.mark.django_db(transaction=True)
def test_a_refused_webhook_is_not_retried_and_a_dead_smtp_server_never_fails_the_job(
    csv_dir: Path, channels: dict[str, Any], receiver: Receiver, settings: Any
) -> None:
    receiver.statuses = [403]
    settings.EMAIL_PORT = free_port()  # nobody listens there
    (csv_dir / f"{SEP_29:%Y%m%d}.csv").write_bytes(demo_day_csv(SEP_29))
    job = csv_run(csv_dir, SEP_29, SEP_30)
    assert job.status == SyncJobStatus.FAILED  # the job's own outcome, alerts aside
    run_queued_alert_tasks()
    deliveries = dict(AlertDelivery.objects.values_list("channel", "status"))
    assert deliveries == {"email": "failed", "webhook": "failed"}
    webhook = AlertDelivery.objects.get(channel="webhook")
    assert (webhook.attempts, webhook.last_error) == (1, "HTTP 403 Forbidden")
    smtp = AlertDelivery.objects.get(channel="email")
    assert smtp.attempts == 3 and "refused" in smtp.last_error.lower()


# --- the deadline check: no cluster, no job --------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_missed_deadline_with_no_cluster_running_is_alerted_once_by_the_command(
    channels: dict[str, Any], inbox: Inbox, receiver: Receiver
) -> None:
    schedule = SyncSchedule.objects.create(
        name="nightly", cron="0 18 * * 1-5", source="demo", freshness_deadline=dt.time(18, 30)
    )
    LoadedDay.objects.create(trade_date=SEP_30, source="demo", options_fingerprint="-", rows=1, checksum="-")

    def check(now: str) -> str:
        out = StringIO()
        call_command("batch_sync", "alerts", "check", "--now", now, stdout=out)
        return out.getvalue()

    assert "(deadline 18:30): not yet" in check("2025-10-09T18:29:00+08:00")
    assert "not a trading day" in check("2025-10-06T20:00:00+08:00")  # National Day holiday
    assert inbox.messages == [] and receiver.requests == []

    output = check("2025-10-09T18:31:00+08:00")
    alert = Alert.objects.get()
    assert f"missed, 2025-10-09 not loaded (newest 2025-09-30); alert #{alert.pk}" in output
    assert "webhook sent (1 attempt)" in output and "email sent (1 attempt)" in output
    assert (alert.kind, alert.scope, alert.schedule_id, alert.trade_date, alert.job_id) == (
        AlertKind.DEADLINE_MISSED,
        f"schedule:{schedule.pk}",
        schedule.pk,
        dt.date(2025, 10, 9),
        None,
    )
    (mail,) = inbox.messages
    assert (
        "Schedule nightly missed its freshness deadline: 2025-10-09 was not loaded by 18:30"
        in mail["Subject"]
    )
    (hook,) = receiver.requests
    assert hook.signed_with(SECRET) and hook.json["alert"]["trade_date"] == "2025-10-09"
    assert hook.json["job"] is None

    # Every minute after, and from several processes: the same day is alerted once.
    assert "alerted before" in check("2025-10-09T18:32:00+08:00")
    assert len(inbox.messages) == 1 and len(receiver.requests) == 1
    # Loaded: met, and the open miss is recovered (one alert). The next day's miss is new.
    LoadedDay.objects.create(
        trade_date=dt.date(2025, 10, 9), source="demo", options_fingerprint="-", rows=1, checksum="-"
    )
    assert "met, 2025-10-09 loaded; recovered, alert #" in check("2025-10-09T19:00:00+08:00")
    assert check("2025-10-09T19:01:00+08:00").count("recovered") == 0
    alert.refresh_from_db()
    assert alert.resolved_by is not None and alert.resolved_by.kind == AlertKind.RECOVERED
    check("2025-10-10T18:31:00+08:00")
    assert kinds_sent(inbox, receiver)[1] == ["deadline_missed", "recovered", "deadline_missed"]
    assert "Recovered: schedule nightly is fresh again, 2025-10-09 is loaded from demo" in str(
        inbox.messages[1]["Subject"]
    )


# --- as deployed: a real cluster, and the command in a process of its own --------------------


def alerting_env(subprocess_env: dict[str, str], inbox_port: int, receiver: Receiver) -> dict[str, str]:
    """A `manage.py` process's environment: this test database and both channels (docs/alerts.md)."""
    return worker_env(
        subprocess_env,
        DJANGO_EMAIL_HOST="127.0.0.1",
        DJANGO_EMAIL_PORT=str(inbox_port),
        DJANGO_DEFAULT_FROM_EMAIL="batchsync@example.com",
        BATCHSYNC_ALERT_EMAILS=",".join(ADDRESSES),
        BATCHSYNC_ALERT_WEBHOOK_URL=receiver.url,
        BATCHSYNC_ALERT_WEBHOOK_SECRET=SECRET,
        BATCHSYNC_ALERT_RETRY_BACKOFF="0.05",
    )


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_on_the_cluster_a_failing_day_is_mailed_and_posted_once_by_the_clusters_task(
    csv_dir: Path,
    channels: dict[str, Any],
    inbox: Inbox,
    receiver: Receiver,
    settings: Any,
    subprocess_env: dict[str, str],
    tmp_path: Path,
) -> None:
    (csv_dir / f"{SEP_29:%Y%m%d}.csv").write_bytes(demo_day_csv(SEP_29))
    env = alerting_env(subprocess_env, settings.EMAIL_PORT, receiver)
    with qcluster(env, tmp_path / "cluster.log", workers=1) as cluster:
        request = services.JobRequest(SEP_29, SEP_30, source="csv", source_options={"path": str(csv_dir)})
        job = services.sync_job_create(request)  # handed to the cluster on commit
        wait_until(lambda: len(inbox.messages) and len(receiver.requests), timeout=60, what="the alert")
        wait_until(
            lambda: not OrmQ.objects.exists() and AlertDelivery.objects.filter(status="sent").count() == 2,
            timeout=30,
            what="the queue to empty",
        )
        assert "event=alert_sent" in cluster.log()
    job.refresh_from_db()
    assert job.status == SyncJobStatus.FAILED
    assert len(inbox.messages) == 1 and len(receiver.requests) == 1
    (hook,) = receiver.requests
    assert hook.signed_with(SECRET) and hook.json["job"]["task_id"] == job.task_id
    assert hook.json["alert"]["kind"] == "failed_days" and hook.json["job"]["failed"] == 1
    assert job.task_id in inbox.messages[0].get_content()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_with_no_cluster_the_check_command_in_its_own_process_sends_the_missed_deadline(
    channels: dict[str, Any],
    inbox: Inbox,
    receiver: Receiver,
    settings: Any,
    subprocess_env: dict[str, str],
    tmp_path: Path,
) -> None:
    SyncSchedule.objects.create(
        name="nightly", cron="0 18 * * 1-5", source="demo", freshness_deadline=dt.time(18, 30)
    )
    LoadedDay.objects.create(trade_date=SEP_30, source="demo", options_fingerprint="-", rows=1, checksum="-")
    env = alerting_env(subprocess_env, settings.EMAIL_PORT, receiver)
    check = Process(
        ["batch_sync", "alerts", "check", "--now", "2025-10-09T18:31:00+08:00"], env, tmp_path / "check.log"
    )
    assert check.start().wait() == 0, check.log()
    assert "missed, 2025-10-09 not loaded (newest 2025-09-30)" in check.log()
    (mail,) = inbox.messages
    (hook,) = receiver.requests
    assert hook.signed_with(SECRET) and hook.json["alert"]["kind"] == "deadline_missed"
    # The site's language (zh-hans by default) for the people it reaches.
    assert "错过了数据新鲜度截止时间" in hook.json["alert"]["message"] and "nightly" in str(mail["Subject"])


# --- stalled jobs, the records, the API, the admin, the command ------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_job_the_reaper_recovered_n_times_raises_one_stalled_alert(settings: Any) -> None:
    settings.BATCHSYNC = {**settings.BATCHSYNC, "ALERT_STALLED_RECOVERIES": 2}
    job = SyncJobFactory.create(status=SyncJobStatus.RUNNING, total_days=1)
    for _ in range(3):
        SyncJob.objects.filter(pk=job.pk).update(lease_expires_at=None)
        services.sync_jobs_recover_stalled()
    job.refresh_from_db()
    assert job.recoveries == 3
    (alert,) = Alert.objects.all()
    assert (alert.kind, alert.job_id, alert.occurrences) == (AlertKind.JOB_STALLED, job.pk, 1)
    assert "回收器已恢复它 2 次" in alert.message  # the site's language, zh-hans by default
    assert not AlertDelivery.objects.exists()  # no channel configured: recorded, nothing to send


@pytest.mark.django_db(transaction=True)
def test_an_event_is_recorded_once_and_the_database_refuses_a_second_open_incident() -> None:
    event = AlertEvent(AlertKind.JOB_FAILED, "source:demo", "job_failed:job:1", "failed")
    first = alert_record(event)
    assert first is not None and alert_record(event) is None
    with pytest.raises(IntegrityError), transaction.atomic():
        Alert.objects.create(kind=AlertKind.JOB_FAILED, scope="source:demo", event_key="other", message="x")


@pytest.mark.django_db(transaction=True)
def test_failures_recorded_at_once_by_many_connections_open_one_incident_and_group_the_rest() -> None:
    """Each thread has its own database connection, like separate processes; all start together."""
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def record(n: int) -> None:
        try:
            start.wait()
            kind = AlertKind.JOB_FAILED if n % 2 else AlertKind.FAILED_DAYS  # one family
            alert_record(AlertEvent(kind, "source:demo", f"{kind}:job:{n}", f"failure {n}"))
            alert_record(AlertEvent(kind, "source:demo", f"{kind}:job:{n}", f"failure {n}"))  # again
        except BaseException as error:  # pragma: no cover (reported below)
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=record, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    (incident,) = Alert.objects.open_incidents()
    assert incident.occurrences == 4 and Alert.objects.count() == 4
    assert Alert.objects.filter(grouped_into=incident).count() == 3


@pytest.mark.django_db(transaction=True)
def test_alerts_are_listed_by_the_api_the_admin_and_the_command(
    channels: dict[str, Any], inbox: Inbox, receiver: Receiver, client: Any
) -> None:
    receiver.statuses = [500, 500, 500]
    alert = services.alert_test_record()
    services.alert_deliver(alert.pk)
    user = User.objects.create_superuser("root", "root@example.com", "pw")

    api = APIClient()
    api.force_authenticate(user)
    body = api.get("/api/v1/alerts").json()
    assert body["status"] == "success" and body["data"]["count"] == 1
    (item,) = body["data"]["results"]
    assert (item["id"], item["kind"], item["occurrences"], item["grouped_into"]) == (
        alert.pk,
        "test",
        1,
        None,
    )
    deliveries = {d["channel"]: d for d in item["deliveries"]}
    assert deliveries["webhook"]["status"] == "failed" and deliveries["webhook"]["attempts"] == 3
    assert deliveries["webhook"]["last_error"] == "HTTP 500 Internal Server Error"
    assert deliveries["email"]["status"] == "sent"
    assert api.get("/api/v1/alerts", {"kind": "recovered"}).json()["data"]["count"] == 0
    bad = api.get("/api/v1/alerts", {"kind": "nope"})
    assert bad.status_code == 400 and "kind" in bad.json()["errors"]
    assert APIClient().get("/api/v1/alerts").status_code == 401

    client.force_login(user)
    page = client.get("/admin/batchsync/alert/")
    assert page.status_code == 200 and "Test alert from batchsync" in page.content.decode()
    assert client.get(f"/admin/batchsync/alert/{alert.pk}/change/").status_code == 200
    assert client.get("/admin/batchsync/alert/add/").status_code == 403

    out = StringIO()
    call_command("batch_sync", "alerts", "list", stdout=out)
    assert f"{alert.pk}" in out.getvalue() and "email sent, webhook failed" in out.getvalue()


@pytest.mark.django_db
def test_alerts_test_without_a_channel_and_now_outside_check_are_refused(settings: Any) -> None:
    with pytest.raises(CommandError, match="No alert channel is configured"):
        call_command("batch_sync", "alerts", "test")
    with pytest.raises(CommandError, match="--now is an option of alerts check only"):
        call_command("batch_sync", "alerts", "list", "--now", "2025-10-09T18:31:00+08:00")
    with pytest.raises(CommandError, match="is not a date and time in ISO form"):
        call_command("batch_sync", "alerts", "check", "--now", "at half past six")
    settings.BATCHSYNC = {**settings.BATCHSYNC, "ALERT_WEBHOOK_URL": "http://example.com/hook"}
    with pytest.raises(ValueError, match="needs ALERT_WEBHOOK_SECRET"):
        get_settings()
