"""Structured log events: fields go through `extra=`, rendered as `key=value` text or as JSON.

Every log call of batchsync is `log_event(logger, "day_done", job=..., date=..., rows=...)`.
The record's message is the `key=value` line users and tests parse (`job=... event=day_done
date=... rows=...`): the subject fields given first (job, job_id, worker) lead, then `event`,
then the others in the order given. The same fields ride on the record (`extra=`), for
`JsonFormatter` (BATCHSYNC_LOG_FORMAT=json: one JSON object per line, for log shippers).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass
from typing import Any

# Fields naming who the event is about: given first, they come before `event=` in the text.
SUBJECT_FIELDS = ("job", "job_id", "worker")
EVENT_ATTRIBUTE = "batchsync_event"
FIELDS_ATTRIBUTE = "batchsync_fields"


@dataclass(frozen=True)
class Shown:
    """A field whose text differs from its value (`3.04` shown `3.0s`); `bare` drops the `key=`."""

    value: Any
    text: str
    bare: bool = False


def seconds(value: float) -> Shown:
    """Seconds, shown with one decimal and a unit: `waited=1.5s`."""
    return Shown(value, f"{value:.1f}s")


def render_text(event: str, fields: dict[str, Any]) -> str:
    """The `key=value` line of an event (the format users and tests parse)."""
    parts: list[str] = []
    rest = list(fields.items())
    while rest and rest[0][0] in SUBJECT_FIELDS:
        key, value = rest.pop(0)
        parts.append(_text_part(key, value))
    parts.append(f"event={event}")
    parts.extend(_text_part(key, value) for key, value in rest)
    return " ".join(parts)


def _text_part(key: str, value: Any) -> str:
    if isinstance(value, Shown):
        return value.text if value.bare else f"{key}={value.text}"
    return f"{key}={value}"


class _EventMessage:
    """A record's message, rendered only when a handler formats it."""

    def __init__(self, event: str, fields: dict[str, Any]) -> None:
        self.event = event
        self.fields = fields

    def __str__(self) -> str:
        return render_text(self.event, self.fields)


def log_event(
    logger: logging.Logger, event: str, *, level: int = logging.INFO, exc_info: bool = False, **fields: Any
) -> None:
    """Log `event` with its fields (`extra=`); its message is the event's `key=value` line."""
    if logger.isEnabledFor(level):
        logger.log(
            level,
            _EventMessage(event, fields),
            exc_info=exc_info,
            extra={EVENT_ATTRIBUTE: event, FIELDS_ATTRIBUTE: fields},
        )


def _json_value(value: Any) -> Any:
    if isinstance(value, Shown):
        value = value.value
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_json_value(item) for item in value]
    return str(value)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, event and its fields (or the message)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
        }
        event = getattr(record, EVENT_ATTRIBUTE, None)
        if event is not None:
            entry["event"] = event
            fields: dict[str, Any] = getattr(record, FIELDS_ATTRIBUTE, {})
            entry.update({key: _json_value(value) for key, value in fields.items() if key not in entry})
        else:
            entry["message"] = record.getMessage()
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)
