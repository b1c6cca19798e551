"""Thin views: parse with an input serializer, call services/selectors, answer in the seed's envelope."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest, JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_view,
)
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from batchsync import dispatch, selectors, services
from batchsync.api import envelopes, outputs
from batchsync.api import serializers as s
from batchsync.api.pagination import EnvelopePagination
from batchsync.api.permissions import ADD_JOBS, VIEW_JOBS, SyncJobWriteThrottle
from batchsync.models import SyncJob
from batchsync.operations import OPERATIONS

TAG = "sync"


# Query strings may carry parameters of their own (cache busters); only bodies are strict.
QUERY = {"reject_unknown_fields": False}


def _query(request: Request) -> dict[str, str]:
    """The query string as plain values: an empty `status=` is then an invalid status, not "no filter".

    (DRF reads a QueryDict as an HTML form, where an empty optional field counts as left out.)
    """
    return request.query_params.dict()


def _success(data: Any, code: int = status.HTTP_200_OK) -> Response:
    return Response({"status": "success", "data": data}, status=code)


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(outputs.ErrorEnvelopeSerializer, description=description)


READ_ERRORS = {
    400: _error("Invalid query parameter: `message` and `errors` name the parameter and the reason."),
    401: _error("Not authenticated (no or bad token / session)."),
    403: _error("Authenticated, but without the view permission on sync jobs."),
    404: _error("No job with this id, or no such page."),
    429: _error("Too many requests."),
    500: _error("A fault of the server: `request_id` names it in the server's log (no traceback is sent)."),
}
WRITE_ERRORS = {
    400: _error("Invalid body: `message` and `errors` name each field and the reason."),
    401: _error("Not authenticated (no or bad token / session)."),
    403: _error("Without the add/change permission on sync jobs, or a missing CSRF token with a session."),
    404: _error("No job with this id."),
    409: _error("A job is already running, or the job's status does not allow this operation."),
    415: _error("The body is not JSON."),
    413: _error("The body is larger than DATA_UPLOAD_MAX_MEMORY_SIZE."),
    429: _error("Too many starts or control requests (see BATCHSYNC_API_*_RATE)."),
    500: _error("A fault of the server: `request_id` names it in the server's log (no traceback is sent)."),
}
# A task id (`2025-10-01_2025-10-09_1697587200`, maybe `_2`) or a job's numeric id.
TASK_ID_REGEX = r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,79}"
TASK_ID = OpenApiParameter(
    "task_id",
    str,
    OpenApiParameter.PATH,
    pattern=f"^{TASK_ID_REGEX}$",
    examples=[OpenApiExample("The seed's task id", value="2025-10-01_2025-10-09_1697587200")],
    description="Task id of the job, as returned by the start (e.g. 2025-10-01_2025-10-09_1697587200).",
)


def _progress(job: SyncJob) -> dict[str, Any]:
    return dict(outputs.SyncJobProgressOutputSerializer(selectors.sync_job_progress(job)).data)


class SyncApiView(APIView):
    """Common ground of the API's views: permissions per method, throttled writes."""

    required_permissions: dict[str, tuple[str, ...]] = {"GET": (VIEW_JOBS,)}
    throttle_classes = [SyncJobWriteThrottle]
    throttle_scope = "batchsync_control"

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        """A method the view does not answer is a 405 with `Allow`, for everyone, before any permission."""
        method = str(request.method).lower()
        if method not in self.http_method_names or not hasattr(self, method):
            raise exceptions.MethodNotAllowed(str(request.method))
        super().initial(request, *args, **kwargs)

    def paginated(
        self,
        request: Request,
        items: QuerySet[Any],
        output: type[serializers.Serializer[Any]],
        shape: Callable[[Any], Any] | None = None,
    ) -> Response:
        """One page of `items` in the envelope, each row shaped (optionally) and serialized by `output`."""
        paginator = EnvelopePagination()
        page = paginator.paginate_queryset(items, request, view=self) or []
        rows = [shape(item) for item in page] if shape else page
        return paginator.get_paginated_response(output(rows, many=True).data)


class SyncJobBatchApi(SyncApiView):
    """The seed's start endpoint (POST) and the job history (GET)."""

    required_permissions = {"GET": (VIEW_JOBS,), "POST": (ADD_JOBS,)}
    throttle_scope = "batchsync_start"

    @extend_schema(
        operation_id="sync_batch_list",
        tags=[TAG],
        summary="List sync jobs (history)",
        description="Jobs newest first, each in the progress shape; filter by status, source and date.",
        parameters=[s.SyncJobListFilterSerializer],
        responses={200: envelopes.SyncJobPageEnvelopeSerializer, **READ_ERRORS},
    )
    def get(self, request: Request) -> Response:
        filters = s.SyncJobListFilterSerializer(data=_query(request), context=QUERY)
        filters.is_valid(raise_exception=True)
        jobs = selectors.sync_job_list(
            status=filters.validated_data.get("status"),
            source=filters.validated_data.get("source"),
            date=filters.validated_data.get("date"),
        )
        return self.paginated(
            request,
            jobs,
            outputs.SyncJobProgressOutputSerializer,
            lambda job: selectors.sync_job_progress(job, job.recent_errors),
        )

    @extend_schema(
        operation_id="sync_batch_start",
        tags=[TAG],
        summary="Start a batch sync (the seed's endpoint)",
        description=(
            "Creates the job and hands it to the django-q2 cluster; answers at once with the seed's "
            "`{task_id, total_days, message}`. A second start while a job runs is a 409 (unless "
            "`queue` is true). With `dry_run` the answer is the plan and nothing is created."
        ),
        request=s.SyncJobStartInputSerializer,
        examples=[
            OpenApiExample(
                "The seed's example",
                value={"start_date": "2025-10-01", "end_date": "2025-10-09"},
                request_only=True,
            ),
            OpenApiExample("Latest", value={"latest": True, "source": "demo"}, request_only=True),
            OpenApiExample(
                "Dry run with options",
                value={
                    "start_date": "2025-10-01",
                    "end_date": "2025-10-09",
                    "source": "demo",
                    "reprocess": "all",
                    "parallelism": 2,
                    "dry_run": True,
                },
                request_only=True,
            ),
            OpenApiExample(
                "Started",
                value={
                    "status": "success",
                    "data": {
                        "task_id": "2025-10-01_2025-10-09_1697587200",
                        "total_days": 9,
                        "message": "批量同步任务已启动，将同步 9 天的数据",  # noqa: RUF001
                    },
                },
                response_only=True,
            ),
        ],
        responses={
            200: OpenApiResponse(
                PolymorphicProxySerializer(
                    component_name="SyncJobStartOrPlanEnvelope",
                    serializers=[
                        envelopes.SyncJobStartEnvelopeSerializer,
                        envelopes.SyncJobPlanEnvelopeSerializer,
                        envelopes.SyncJobUpToDateEnvelopeSerializer,
                    ],
                    resource_type_field_name=None,
                ),
                description=(
                    "The started job, or with dry_run=true the plan, or with latest=true and "
                    "nothing to load `up_to_date`."
                ),
            ),
            202: OpenApiResponse(
                envelopes.SyncJobStartEnvelopeSerializer,
                description=(
                    "The job was created (pending) but the cluster's broker (Redis) could not be "
                    "reached: `message` says so; it starts when the broker is back."
                ),
            ),
            **WRITE_ERRORS,
        },
    )
    def post(self, request: Request) -> Response:
        serializer = s.SyncJobStartInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        if "up_to_date" in serializer.validated_data:
            return _success({"up_to_date": True, "message": serializer.validated_data["up_to_date"]})
        job_request = serializer.job_request(requested_by=request.user.get_username())
        if serializer.validated_data["dry_run"]:
            plan = services.sync_days_plan(
                job_request.start_date, job_request.end_date, job_request.reprocess, source=job_request.source
            )
            return _success(outputs.SyncJobPlanOutputSerializer(_plan_data(plan)).data)
        with dispatch.handoff() as handoff:
            job = services.sync_job_create(job_request)
        return job_started_response(job, handoff)


def job_started_response(job: SyncJob, handoff: dispatch.Handoff) -> Response:
    """A start's answer: the job and its message, or 202 with the broker's failure.

    A broker that could not be reached leaves the job saved (pending); it starts when the broker
    is back: accepted, not started.
    """
    data = {"task_id": job.task_id, "total_days": job.total_days, "message": job.message}
    if handoff.failure is not None:
        return _success({**data, "message": handoff.failure.message}, status.HTTP_202_ACCEPTED)
    return _success(data)


def _plan_data(plan: list[services.DayPlan]) -> dict[str, Any]:
    summary = services.sync_days_plan_summary(plan)
    return {
        "dry_run": True,
        "total_days": summary.days,
        "to_load": summary.to_load,
        "skipped": summary.skipped,
        "skipped_other_source": summary.other_source,
        "message": summary.message,
        "days": [
            {
                "date": day.date,
                "action": "load" if day.loads else "skip",
                "skip_reason": day.skip_reason,
                "loaded_from": day.loaded_from,
            }
            for day in plan
        ],
    }


class SyncJobProgressApi(SyncApiView):
    """The seed's progress endpoint."""

    @extend_schema(
        operation_id="sync_batch_progress",
        tags=[TAG],
        summary="Progress of a job (the seed's endpoint)",
        description="Every field of the seed's example, plus batchsync's own; times are ISO 8601 with zone.",
        parameters=[TASK_ID],
        responses={200: envelopes.SyncJobProgressEnvelopeSerializer, **READ_ERRORS},
    )
    def get(self, request: Request, task_id: str) -> Response:
        return _success(_progress(selectors.sync_job_detail(task_id)))


class SyncJobControlApi(SyncApiView):
    """POST .../<task_id>/cancel, /pause, /resume: one operator transition."""

    required_permissions = {"POST": OPERATIONS["cancel"].permissions}
    operation = "cancel"

    def post(self, request: Request, task_id: str) -> Response:
        s.SyncJobControlInputSerializer(data=request.data).is_valid(raise_exception=True)
        operation = OPERATIONS[self.operation]
        job = operation.run(selectors.sync_job_detail(task_id), requested_by=request.user.get_username())
        return _success(_progress(selectors.sync_job_detail(job.task_id)))


def _control_view(operation: str) -> Callable[..., Any]:
    """The view of one operation, with its own schema entry."""
    description = OPERATIONS[operation].description
    view_class: type[SyncJobControlApi] = type(
        f"SyncJob{operation.capitalize()}Api",
        (SyncJobControlApi,),
        {
            "operation": operation,
            "required_permissions": {"POST": OPERATIONS[operation].permissions},
            "__doc__": f"POST .../<task_id>/{operation}.",
        },
    )
    schema = extend_schema_view(
        post=extend_schema(
            operation_id=f"sync_batch_{operation}",
            tags=[TAG],
            summary=f"{operation.capitalize()} a job",
            description=f"{description} Answers with the job in the progress shape; 409 when not allowed.",
            parameters=[TASK_ID],
            request=s.SyncJobControlInputSerializer,
            responses={200: envelopes.SyncJobProgressEnvelopeSerializer, **WRITE_ERRORS},
        )
    )
    documented: type[SyncJobControlApi] = schema(view_class)
    return documented.as_view()


sync_job_cancel_view = _control_view("cancel")
sync_job_pause_view = _control_view("pause")
sync_job_resume_view = _control_view("resume")


class SyncJobRetryApi(SyncApiView):
    """POST .../<task_id>/retry: a new run of a finished job's range."""

    required_permissions = {"POST": OPERATIONS["retry"].permissions}

    @extend_schema(
        operation_id="sync_batch_retry",
        tags=[TAG],
        summary="Retry a finished job",
        description=OPERATIONS["retry"].description,
        parameters=[TASK_ID],
        request=s.SyncJobRetryInputSerializer,
        responses={200: envelopes.SyncJobProgressEnvelopeSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, task_id: str) -> Response:
        options = s.SyncJobRetryInputSerializer(data=request.data)
        options.is_valid(raise_exception=True)
        job = OPERATIONS["retry"].run(
            selectors.sync_job_detail(task_id),
            requested_by=request.user.get_username(),
            reprocess=options.validated_data["reprocess"],
            queue=options.validated_data["queue"],
            priority=options.validated_data["priority"],
        )
        return _success(_progress(selectors.sync_job_detail(job.task_id)))


class SyncJobDaysApi(SyncApiView):
    """Per-day state of a job."""

    @extend_schema(
        operation_id="sync_batch_days",
        tags=[TAG],
        summary="Days of a job",
        description="Every calendar day of the job's range with its state, in date order.",
        parameters=[TASK_ID, s.SyncDayListFilterSerializer],
        responses={200: envelopes.SyncDayPageEnvelopeSerializer, **READ_ERRORS},
    )
    def get(self, request: Request, task_id: str) -> Response:
        filters = s.SyncDayListFilterSerializer(data=_query(request), context=QUERY)
        filters.is_valid(raise_exception=True)
        job = selectors.sync_job_detail(task_id)
        days = selectors.sync_day_list(job, status=filters.validated_data.get("status"))
        waits = {wait.date: wait.as_dict() for wait in selectors.sync_job_lock_waits(job)}
        fields = set(outputs.SyncDayOutputSerializer().fields.keys()) - {"lock_wait"}
        return self.paginated(
            request,
            days,
            outputs.SyncDayOutputSerializer,
            lambda day: {**{name: getattr(day, name) for name in fields}, "lock_wait": waits.get(day.date)},
        )


class SyncJobErrorsApi(SyncApiView):
    """All errors of a job."""

    @extend_schema(
        operation_id="sync_batch_errors",
        tags=[TAG],
        summary="Errors of a job",
        description="Every error of every attempt, newest first (the progress shows only the last 10).",
        parameters=[TASK_ID, s.PageFilterSerializer],
        responses={200: envelopes.SyncErrorPageEnvelopeSerializer, **READ_ERRORS},
    )
    def get(self, request: Request, task_id: str) -> Response:
        s.PageFilterSerializer(data=_query(request), context=QUERY).is_valid(raise_exception=True)
        job = selectors.sync_job_detail(task_id)
        return self.paginated(request, selectors.sync_error_list(job), outputs.SyncErrorOutputSerializer)


@csrf_exempt  # it changes nothing, and an unknown URL should say so, whatever the method
def api_not_found(request: HttpRequest, path: str = "") -> JsonResponse:
    """Any other /api/ URL: a 404 in the envelope, not an HTML page."""
    return JsonResponse(
        {"status": "error", "message": _("No such API endpoint: %(path)s") % {"path": request.path}},
        status=404,
        json_dumps_params={"ensure_ascii": False},
    )
