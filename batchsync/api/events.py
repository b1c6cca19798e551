"""GET .../batch/<task_id>/timeline: a job's timeline (who did what to it, and what happened, when)."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from batchsync import selectors
from batchsync.api import serializers as s
from batchsync.api.envelopes import _page, _success_envelope
from batchsync.api.views import QUERY, READ_ERRORS, TAG, TASK_ID, SyncApiView, _query
from batchsync.event_models import SyncJobEvent, SyncJobEventKind


class SyncJobEventOutputSerializer(serializers.Serializer[Any]):
    """One event of a job's timeline."""

    kind = serializers.ChoiceField(
        choices=SyncJobEventKind.choices,
        help_text=gettext_lazy("What happened: created, queued, started, paused, resumed, cancelled, ..."),
    )
    label = serializers.CharField(  # type: ignore[assignment]
        source="get_kind_display", help_text=gettext_lazy("The event, in the request's language.")
    )
    actor = serializers.CharField(
        allow_blank=True,
        help_text=gettext_lazy(
            "Who: a user name, cli (the command), worker <id>, reaper; empty for batchsync itself."
        ),
    )
    time = serializers.DateTimeField(source="created_at", help_text=gettext_lazy("When (ISO 8601)."))
    detail = serializers.DictField(
        help_text=gettext_lazy("Its facts: the status it led to, days, the new job of a retry, ...")
    )
    text = serializers.SerializerMethodField(
        help_text=gettext_lazy("Those facts as a sentence, in the request's language.")
    )

    def get_text(self, event: SyncJobEvent) -> str:
        return selectors.sync_job_event_text(event)


SyncJobEventPageEnvelopeSerializer = _success_envelope(
    "SyncJobEventPageEnvelopeSerializer",
    _page("SyncJobEventPageSerializer", SyncJobEventOutputSerializer, gettext_lazy("Events, oldest first.")),
    gettext_lazy("One page of a job's events."),
)


class SyncJobEventsApi(SyncApiView):
    """A job's timeline."""

    @extend_schema(
        operation_id="sync_batch_timeline",
        tags=[TAG],
        summary="Timeline of a job",
        description=(
            "Every recorded event of the job, oldest first: created, queued, started, paused/resumed/"
            "cancelled by whom, recovered after a dead worker, finished with its outcome."
        ),
        parameters=[TASK_ID, s.PageFilterSerializer],
        responses={200: SyncJobEventPageEnvelopeSerializer, **READ_ERRORS},
    )
    def get(self, request: Request, task_id: str) -> Response:
        s.PageFilterSerializer(data=_query(request), context=QUERY).is_valid(raise_exception=True)
        job = selectors.sync_job_detail(task_id)
        return self.paginated(request, selectors.sync_job_events(job), SyncJobEventOutputSerializer)
