"""Log events: the same `key=value` lines as the hand-built strings they replace, and JSON."""

from __future__ import annotations

import datetime as dt
import json
import logging
import subprocess

import pytest

from batchsync.logs import JsonFormatter, Shown, log_event, render_text, seconds
from tests.conftest import PROJECT_DIR

LOGGER = logging.getLogger("batchsync.test_logs")
OCT_9 = dt.date(2025, 10, 9)


def test_text_lines_are_the_hand_built_lines_of_before(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="batchsync")
    log_event(
        LOGGER,
        "day_start",
        job="J",
        worker="W",
        position=Shown((3, 10), "[3/10]", bare=True),
        date=OCT_9,
        attempt=1,
        percent=Shown(20.0, "(20.0%)", bare=True),
    )
    # The format string the runner used before structured logging, with the same values.
    before = "job=%s worker=%s event=day_start [%s/%s] date=%s attempt=%s (%.1f%%)" % (  # noqa: UP031
        *("J", "W", 3, 10, OCT_9, 1, 20.0),
    )
    log_event(
        LOGGER,
        "taken_over",
        level=logging.WARNING,
        job="J",
        status="running",
        worker="W",
        previous_worker="-",
    )
    log_event(LOGGER, "fenced", level=logging.WARNING, sessions=2, workers="a,b")
    log_event(LOGGER, "finished", job="J", status="paused", message=Shown("", "", bare=True))
    log_event(LOGGER, "db_reconnected", worker="W", attempt=2, outage=seconds(1.26))
    assert caplog.messages == [
        before,
        "job=J event=taken_over status=running worker=W previous_worker=-",
        "event=fenced sessions=2 workers=a,b",
        "job=J event=finished status=paused ",
        "worker=W event=db_reconnected attempt=2 outage=1.3s",
    ]
    assert [record.levelno for record in caplog.records] == [
        logging.INFO,
        logging.WARNING,
        logging.WARNING,
    ] + [logging.INFO] * 2


def test_json_keeps_the_fields_and_their_types(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="batchsync")
    log_event(
        LOGGER, "lock_wait", worker="W", date=OCT_9, waited=seconds(2.25), range=Shown((OCT_9, OCT_9), "x")
    )
    LOGGER.info("plain %s", "text")
    try:
        raise ValueError("boom")
    except ValueError:
        log_event(LOGGER, "day_failed", level=logging.ERROR, exc_info=True, error=ValueError("boom"))
    lines = [JsonFormatter().format(record) for record in caplog.records]
    assert all("\n" not in line for line in lines)
    event, plain, failed = (json.loads(line) for line in lines)
    assert {key: event[key] for key in ("level", "logger", "event", "worker", "date", "waited", "range")} == {
        "level": "INFO",
        "logger": "batchsync.test_logs",
        "event": "lock_wait",
        "worker": "W",
        "date": "2025-10-09",
        "waited": 2.25,
        "range": ["2025-10-09", "2025-10-09"],
    }
    assert "message" not in event and plain["message"] == "plain text" and "event" not in plain
    assert failed["error"] == "boom" and "ValueError: boom" in failed["traceback"]


def test_nothing_is_rendered_for_a_level_that_is_off() -> None:
    class Loud:
        def __str__(self) -> str:
            raise AssertionError("rendered although DEBUG is off")

    LOGGER.setLevel(logging.INFO)
    log_event(LOGGER, "quiet", level=logging.DEBUG, value=Loud())
    assert (
        render_text("e", {"job": 1, "worker": 2, "x": 3, "job_id": 4})
        == "job=1 worker=2 event=e x=3 job_id=4"
    )


@pytest.mark.django_db(transaction=True)
def test_the_command_logs_json_lines_when_asked(manage_py: list[str], subprocess_env: dict[str, str]) -> None:
    env = {**subprocess_env, "BATCHSYNC_LOG_FORMAT": "json"}
    argv = ["batch_sync", "--start", "2025-10-09", "--end", "2025-10-09", "--reprocess", "all"]
    done = subprocess.run(
        [*manage_py, *argv], env=env, cwd=PROJECT_DIR, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    by_event = {entry["event"]: entry for entry in events if "event" in entry}
    assert {"created", "started", "day_start", "day_done", "finished"} <= set(by_event)
    assert by_event["day_done"]["date"] == "2025-10-09" and by_event["day_done"]["rows"] == 5500


def test_an_unknown_log_format_stops_start_up_with_its_name(
    manage_py: list[str], subprocess_env: dict[str, str]
) -> None:
    env = {**subprocess_env, "BATCHSYNC_LOG_FORMAT": "xml"}
    done = subprocess.run(
        [*manage_py, "check"], env=env, cwd=PROJECT_DIR, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert "BATCHSYNC_LOG_FORMAT must be text or json, not 'xml'" in done.stderr
