"""What an alert says: the webhook's JSON and the e-mail's text, built from the API's serializers.

The job's part is exactly the progress endpoint's object (`SyncJobProgressOutputSerializer`
over `selectors.sync_job_progress`), and the alert's part the alert list's item: one shape
each, wherever they are read.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _

from batchsync import alert_selectors, selectors
from batchsync.alert_models import AlertKind
from batchsync.api.alert_outputs import AlertOutputSerializer
from batchsync.api.outputs import SyncJobProgressOutputSerializer


def alert_payload(alert_id: int) -> dict[str, Any]:
    """The webhook's JSON object: `{"alert": {...}, "job": {progress fields} | null}`."""
    alert = alert_selectors.alert_detail(alert_id)
    with translation.override(settings.LANGUAGE_CODE):
        job = None
        if alert.job is not None:
            job = dict(SyncJobProgressOutputSerializer(selectors.sync_job_progress(alert.job)).data)
        return {"alert": dict(AlertOutputSerializer(alert).data), "job": job}


def alert_subject(payload: dict[str, Any]) -> str:
    """The e-mail's subject: `[batchsync] <kind>: <message>`, on one line."""
    alert = payload["alert"]
    with translation.override(settings.LANGUAGE_CODE):
        kind = _kind_label(alert["kind"])
    first_line = " ".join(str(alert["message"]).split())
    return f"[batchsync] {kind}: {first_line}"[:200]


def alert_text(payload: dict[str, Any]) -> str:
    """The e-mail's body: the message, then the job's progress and its recent errors."""
    alert, job = payload["alert"], payload["job"]
    with translation.override(settings.LANGUAGE_CODE):
        lines = [str(alert["message"]), "", f"{_('kind')}: {_kind_label(alert['kind'])}"]
        lines.append(f"{_('scope')}: {alert['scope']}")
        if alert["trade_date"]:
            lines.append(f"{_('trade date')}: {alert['trade_date']}")
        lines.append(f"{_('time')}: {alert['created_at']}")
        if job is not None:
            lines += ["", f"{_('job')}: {job['task_id']} ({job['status']})", str(job["message"])]
            lines.append(
                f"{job['start_date']}..{job['end_date']}  {_('source')}: {job['source']}  "
                f"{job['success']}/{job['failed']}/{job['skipped']} "
                f"({_('succeeded')}/{_('failed')}/{_('skipped')})"
            )
            lines += [f"  {error['date']}: {error['error']}" for error in job["errors"]]
    return "\n".join(lines) + "\n"


def _kind_label(kind: str) -> str:
    return str(AlertKind(kind).label)
