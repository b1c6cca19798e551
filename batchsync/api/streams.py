"""Server-sent events: a job's (or every job's) changes as PostgreSQL delivers their NOTIFY.

Async views: each stream holds one psycopg `AsyncConnection` that LISTENs, and no worker
thread, under an ASGI server (`uvicorn syncproject.asgi:application`, docs/deploy.md). Under
WSGI a stream would tie a worker for its whole life, so there the views answer 204 (an
EventSource then stops reconnecting) and the pages keep polling.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, cast

import psycopg
from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.db import connections
from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.utils.translation import gettext as _
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request
from rest_framework.settings import api_settings

from batchsync import selectors, sql
from batchsync.api.middleware import error_envelope
from batchsync.api.permissions import VIEW_JOBS
from batchsync.conf import get_settings
from batchsync.exceptions import JobNotFound
from batchsync.models import FINISHED_STATUSES
from batchsync.services.notify import JobEventKind

EVENT_STREAM = "text/event-stream"
# Keys Django adds for its own connections that a plain psycopg connection does not take.
_DJANGO_ONLY_PARAMS = ("cursor_factory", "context", "prepare_threshold")
# The streams' sessions in pg_stat_activity.
APPLICATION_NAME = "batchsync event stream"


def _authorize(request: HttpRequest, task_id: str | None) -> tuple[int | None, HttpResponse | None]:
    """The job's id (None for every job), or the error answer: as the progress endpoint decides."""
    authenticators = cast(list[type[BaseAuthentication]], list(api_settings.DEFAULT_AUTHENTICATION_CLASSES))
    drf_request = Request(request, authenticators=[authenticator() for authenticator in authenticators])
    try:
        user = drf_request.user
    except exceptions.AuthenticationFailed as error:
        return None, error_envelope(401, str(error.detail))
    if not (user and user.is_authenticated):
        return None, error_envelope(401, _("Authentication credentials were not provided."))
    if not user.has_perm(VIEW_JOBS):
        return None, error_envelope(403, _("You do not have permission to perform this action."))
    if task_id is None:
        return None, None
    try:
        return selectors.sync_job_detail(task_id).pk, None
    except JobNotFound as error:
        return None, error_envelope(404, str(error))


def listen_connection_params() -> dict[str, Any]:
    """The libpq parameters of Django's default database (the test database under tests)."""
    params = connections["default"].get_connection_params()
    for key in _DJANGO_ONLY_PARAMS:
        params.pop(key, None)
    return {**params, "application_name": APPLICATION_NAME}


def sse_message(kind: str, data: dict[str, Any] | str) -> str:
    """One server-sent event: `event:` names the kind, `data:` is the JSON payload."""
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return f"event: {kind}\ndata: {payload}\n\n"


async def job_event_stream(job_id: int | None) -> AsyncIterator[str]:
    """The `retry:` hint, the job's state now, then its events as they commit, with heartbeats.

    LISTEN comes before the state is read, so no change committed in between is lost. The
    stream ends when the job finishes (never for every job's stream); its connection is closed
    however it ends, including when the server cancels it because the client went away.
    """
    config = get_settings()
    connection = await psycopg.AsyncConnection.connect(**listen_connection_params(), autocommit=True)
    try:
        await connection.execute(sql.EVENTS_LISTEN)
        yield f"retry: {config.events_retry_ms}\n\n"
        task_id = None
        if job_id is not None:
            cursor = await connection.execute(
                sql.JOB_EVENT_PAYLOAD, {"kind": JobEventKind.JOB.value, "job": job_id, "day": None}
            )
            row = await cursor.fetchone()
            if row is None:
                return
            state = json.loads(row[0])
            task_id = state["task_id"]
            yield sse_message(JobEventKind.JOB, state)
            if state["status"] in FINISHED_STATUSES:
                return
        while True:
            async for notify in connection.notifies(timeout=config.events_heartbeat_seconds):
                event = json.loads(notify.payload)
                if task_id is not None and event["task_id"] != task_id:
                    continue
                yield sse_message(event["kind"], notify.payload)
                if (
                    task_id is not None
                    and event["kind"] == JobEventKind.JOB
                    and event["status"] in FINISHED_STATUSES
                ):
                    return
            yield ": heartbeat\n\n"
    finally:
        await connection.close()


async def _events_response(request: HttpRequest, task_id: str | None) -> HttpResponseBase:
    job_id, refusal = await sync_to_async(_authorize)(request, task_id)
    if refusal is not None:
        return refusal
    if not isinstance(request, ASGIRequest):
        return HttpResponse(status=204)  # WSGI: no stream (see the module's docstring)
    response = StreamingHttpResponse(job_event_stream(job_id), content_type=EVENT_STREAM)
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    return response


def _method_not_allowed() -> HttpResponse:
    response = error_envelope(405, _("Method not allowed"))
    response["Allow"] = "GET"
    return response


async def sync_job_events_view(request: HttpRequest, task_id: str) -> HttpResponseBase:
    """GET .../progress/<task_id>/events: one job's events, until it finishes."""
    if request.method != "GET":
        return _method_not_allowed()
    return await _events_response(request, task_id)


async def sync_jobs_events_view(request: HttpRequest) -> HttpResponseBase:
    """GET .../batch/events: every job's events (the job list follows them)."""
    if request.method != "GET":
        return _method_not_allowed()
    return await _events_response(request, None)
