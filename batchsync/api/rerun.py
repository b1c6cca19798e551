"""POST .../batch/<task_id>/rerun: a new job re-running exactly the chosen days of a job."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from batchsync import bounds, selectors, services
from batchsync.api import envelopes
from batchsync.api.fields import IsoDateField, JsonBooleanField
from batchsync.api.serializers import StrictInputSerializer
from batchsync.api.views import TAG, TASK_ID, WRITE_ERRORS, SyncApiView, _progress, _success
from batchsync.permissions import CHANGE_JOBS


class SyncJobRerunInputSerializer(StrictInputSerializer):
    """Body of POST .../batch/<task_id>/rerun."""

    days = serializers.ListField(
        child=IsoDateField(),
        allow_empty=False,
        min_length=1,
        max_length=bounds.RERUN_DAYS_MAX,
        help_text=gettext_lazy("The days to load again (YYYY-MM-DD), each inside the job's range."),
    )
    queue = JsonBooleanField(
        required=False,
        default=False,
        help_text=gettext_lazy("Queue behind a running job instead of answering 409."),
    )


class SyncJobRerunApi(SyncApiView):
    """Re-run chosen days of a job (Airflow's "clear"): a new job of exactly those days, force reload."""

    required_permissions = {"POST": (CHANGE_JOBS,)}

    @extend_schema(
        operation_id="sync_batch_rerun",
        tags=[TAG],
        summary="Re-run chosen days of a job",
        description=(
            "A new job loading exactly `days` again (force reload) with the job's source and options; "
            "the job itself is not changed. While another job runs: 409, or queued with `queue: true`."
        ),
        parameters=[TASK_ID],
        request=SyncJobRerunInputSerializer,
        responses={200: envelopes.SyncJobProgressEnvelopeSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, task_id: str) -> Response:
        body = SyncJobRerunInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data: dict[str, Any] = body.validated_data
        job = selectors.sync_job_detail(task_id)
        new = services.sync_job_rerun_days(
            job, data["days"], requested_by=request.user.get_username(), queue=data["queue"]
        )
        return _success(_progress(selectors.sync_job_detail(new.task_id)))
