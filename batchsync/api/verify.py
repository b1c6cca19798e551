"""POST /api/v1/sync-status/verify/batch: start a verify job (its progress: the sync job endpoints)."""

from __future__ import annotations

import dataclasses
from typing import Any

from django.utils.translation import gettext_lazy
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from batchsync import bounds, dispatch, services
from batchsync.api import envelopes, views
from batchsync.api import serializers as s
from batchsync.api.fields import IsoDateField, JsonIntegerField
from batchsync.api.permissions import ADD_JOBS
from batchsync.exceptions import InvalidJobRequest
from batchsync.services.verify import VERIFY_MODES


class VerifyJobStartInputSerializer(s.QueueInputSerializer):
    """Body of POST .../verify/batch; every rule is checked by `services.verify_request_build`."""

    start_date = IsoDateField(help_text=gettext_lazy("First day to verify, YYYY-MM-DD."))
    end_date = IsoDateField(help_text=gettext_lazy("Last day to verify, YYYY-MM-DD (inclusive)."))
    mode = serializers.ChoiceField(
        choices=VERIFY_MODES,
        required=False,
        default=VERIFY_MODES[0],
        help_text=gettext_lazy(
            "checksum (default): each loaded day's rows and checksum against its load record; "
            "against_source: also fetch each day again from its source and compare (loads nothing); "
            "checks: also run today's data checks over each day's rows (an error finding fails the day)."
        ),
    )
    parallelism = JsonIntegerField(
        required=False,
        **bounds.PARALLELISM.limits,
        help_text=gettext_lazy("Days verified at once (workers on the cluster)."),
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        try:
            attrs["job_request"] = services.verify_request_build(
                start_date=attrs["start_date"],
                end_date=attrs["end_date"],
                mode=attrs.get("mode", VERIFY_MODES[0]),
                parallelism=attrs.get("parallelism"),
                priority=attrs.get("priority", 0),
                queue=attrs.get("queue", False),
            )
        except InvalidJobRequest as error:
            raise serializers.ValidationError({error.field: [error.message]}) from None
        return attrs


class VerifyJobBatchApi(views.SyncApiView):
    """Start a verify job: a sync job whose days are compared with what was loaded, not loaded."""

    required_permissions = {"POST": (ADD_JOBS,)}
    throttle_scope = "batchsync_start"

    @extend_schema(
        operation_id="verify_batch_start",
        tags=[views.TAG],
        summary="Start a verify job",
        description=(
            "Creates a verify job over the range and hands it to the cluster; it takes the running "
            "slot like a sync job (409 while one runs, unless `queue`). Follow it with the sync "
            "job endpoints (progress, days, errors, cancel, pause, resume, retry): a day that "
            "differs from what was loaded is a failed day whose error says what differs and "
            "the `batch_sync run --force` command that repairs it."
        ),
        request=VerifyJobStartInputSerializer,
        examples=[
            OpenApiExample(
                "Verify October against the source",
                value={"start_date": "2025-10-01", "end_date": "2025-10-31", "mode": "against_source"},
                request_only=True,
            )
        ],
        responses={
            200: OpenApiResponse(envelopes.SyncJobStartEnvelopeSerializer, description="The started job."),
            202: OpenApiResponse(
                envelopes.SyncJobStartEnvelopeSerializer,
                description="Created, but the cluster's broker could not be reached: `message` says so.",
            ),
            **views.WRITE_ERRORS,
        },
    )
    def post(self, request: Request) -> Response:
        serializer = VerifyJobStartInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        job_request = serializer.validated_data["job_request"]
        with dispatch.handoff() as handoff:
            job = services.verify_job_create(
                dataclasses.replace(job_request, requested_by=request.user.get_username())
            )
        return views.job_started_response(job, handoff)
