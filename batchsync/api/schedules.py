"""API of sync schedules: list, create, read, update, delete, pause, resume and run-now."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from batchsync import bounds, schedule_selectors, services
from batchsync.api.envelopes import _page, _success_envelope
from batchsync.api.fields import JsonBooleanField, JsonIntegerField, JsonScalarField, JsonStringField
from batchsync.api.serializers import StrictInputSerializer
from batchsync.api.views import READ_ERRORS, WRITE_ERRORS, SyncApiView, _success
from batchsync.models import ScheduleOutcome, SyncJobStatus

TAG = "schedules"
VIEW = ("batchsync.view_syncschedule",)
ADD = ("batchsync.add_syncschedule",)
CHANGE = ("batchsync.change_syncschedule",)
DELETE = ("batchsync.delete_syncschedule",)
# A run-now starts a job: it needs the right to start jobs too.
RUN_NOW = ("batchsync.change_syncschedule", "batchsync.add_syncjob")
NAME_REGEX = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}"
NAME = OpenApiParameter(
    "name", str, OpenApiParameter.PATH, pattern=f"^{NAME_REGEX}$", description="Schedule name."
)


class SyncScheduleInputSerializer(StrictInputSerializer):
    """Body of POST (every setting) and PATCH (some) of a schedule; the services check the rules."""

    name = serializers.RegexField(
        f"^{NAME_REGEX}$", max_length=100, help_text=gettext_lazy("Unique name: letters, digits, _ . -")
    )
    cron = JsonStringField(
        max_length=100,
        help_text=gettext_lazy(
            "Cron expression (five fields) in the exchange's time zone, e.g. 30 18 * * 1-5."
        ),
    )
    source = JsonStringField(  # type: ignore[assignment]
        required=False, max_length=50, help_text=gettext_lazy("Data source; default: the configured default.")
    )
    source_options = serializers.DictField(
        child=JsonScalarField(),
        required=False,
        help_text=gettext_lazy("Options of the source; never secrets."),
    )
    lookback_days = JsonIntegerField(
        required=False,
        allow_null=True,
        **bounds.LOOKBACK_DAYS.limits,
        help_text=gettext_lazy("Trading days reloaded with new ones; null: BATCHSYNC LATEST_LOOKBACK_DAYS."),
    )
    parallelism = JsonIntegerField(
        required=False,
        allow_null=True,
        **bounds.PARALLELISM.limits,
        help_text=gettext_lazy("Days loaded at once; null: BATCHSYNC DEFAULT_PARALLELISM."),
    )
    priority = JsonIntegerField(
        required=False, **bounds.PRIORITY.limits, help_text=gettext_lazy("Queue priority.")
    )
    paused = JsonBooleanField(required=False, help_text=gettext_lazy("A paused schedule starts no run."))
    freshness_deadline = serializers.TimeField(
        required=False,
        allow_null=True,
        help_text=gettext_lazy("HH:MM in the exchange's time zone: the latest trading day loaded by then."),
    )


class SyncScheduleControlInputSerializer(StrictInputSerializer):
    """Body of POST .../pause, /resume, /run-now: nothing (an empty object or no body)."""


class SyncScheduleOutputSerializer(serializers.Serializer[Any]):
    """A schedule: its settings, its last run (job), the outcome and the next run time."""

    name = serializers.CharField(help_text=gettext_lazy("Unique name of the schedule."))
    cron = serializers.CharField(help_text=gettext_lazy("Cron expression, in the exchange's time zone."))
    timezone = serializers.CharField(help_text=gettext_lazy("The exchange's time zone (cron and times)."))
    source = serializers.CharField(help_text=gettext_lazy("Data source of its runs."))  # type: ignore[assignment]
    source_options = serializers.DictField(
        child=JsonScalarField(), help_text=gettext_lazy("Options of the source; never secrets.")
    )
    lookback_days = serializers.IntegerField(
        allow_null=True,
        help_text=gettext_lazy("Trading days reloaded with new ones; null: the server's default."),
    )
    parallelism = serializers.IntegerField(
        allow_null=True, help_text=gettext_lazy("Days loaded at once; null: the server's default.")
    )
    priority = serializers.IntegerField(help_text=gettext_lazy("Queue priority of its runs."))
    paused = serializers.BooleanField(help_text=gettext_lazy("A paused schedule starts no run."))
    freshness_deadline = serializers.TimeField(
        allow_null=True, help_text=gettext_lazy("The latest trading day loaded by then (exchange time zone).")
    )
    next_run_at = serializers.DateTimeField(
        allow_null=True, help_text=gettext_lazy("Next run; null while paused.")
    )
    last_run_at = serializers.DateTimeField(
        allow_null=True, help_text=gettext_lazy("When it last ran; null: never.")
    )
    last_job = serializers.CharField(
        allow_null=True, help_text=gettext_lazy("Task id of the last job started.")
    )
    last_job_status = serializers.ChoiceField(
        choices=SyncJobStatus.choices, allow_null=True, help_text=gettext_lazy("Status of that job.")
    )
    last_outcome = serializers.ChoiceField(
        choices=ScheduleOutcome.choices, help_text=gettext_lazy("What the last tick did.")
    )
    outcome = serializers.CharField(help_text=gettext_lazy("The last run's outcome in words."))
    last_message = serializers.CharField(
        allow_blank=True, help_text=gettext_lazy("Why the last tick skipped, found nothing or failed.")
    )
    created_at = serializers.DateTimeField(help_text=gettext_lazy("When the schedule was created."))
    updated_at = serializers.DateTimeField(help_text=gettext_lazy("When its settings last changed."))


class SyncScheduleRunOutputSerializer(serializers.Serializer[Any]):
    """What a run-now did, and the schedule after it."""

    outcome = serializers.ChoiceField(
        choices=ScheduleOutcome.choices, help_text=gettext_lazy("What the run did.")
    )
    job = serializers.CharField(
        allow_null=True, help_text=gettext_lazy("Task id of the job started, if any.")
    )
    message = serializers.CharField(help_text=gettext_lazy("Why, in the request's language."))
    schedule = SyncScheduleOutputSerializer(help_text=gettext_lazy("The schedule after the run."))


ScheduleEnvelope = _success_envelope(
    "SyncScheduleEnvelopeSerializer", SyncScheduleOutputSerializer, gettext_lazy("The schedule.")
)
SchedulePageEnvelope = _success_envelope(
    "SyncSchedulePageEnvelopeSerializer",
    _page("SyncSchedulePageSerializer", SyncScheduleOutputSerializer, gettext_lazy("Schedules by name.")),
    gettext_lazy("One page of schedules."),
)
ScheduleRunEnvelope = _success_envelope(
    "SyncScheduleRunEnvelopeSerializer", SyncScheduleRunOutputSerializer, gettext_lazy("What the run did.")
)
DeletedEnvelope = _success_envelope(
    "SyncScheduleDeletedEnvelopeSerializer",
    type(
        "SyncScheduleDeletedSerializer",
        (serializers.Serializer,),
        {"name": serializers.CharField(help_text=gettext_lazy("The removed schedule's name."))},
    ),
    gettext_lazy("The removed schedule's name."),
)


def _schedule(name: str) -> dict[str, Any]:
    facts = schedule_selectors.sync_schedule_facts(services.schedule_get(name))
    return dict(SyncScheduleOutputSerializer(facts).data)


def _spec_changes(serializer: SyncScheduleInputSerializer) -> dict[str, Any]:
    changes = dict(serializer.validated_data)
    if "source_options" in changes:
        changes["source_options"] = dict(changes["source_options"])
    return changes


EXAMPLE = OpenApiExample(
    "Nightly",
    value={
        "name": "nightly",
        "cron": "30 18 * * 1-5",
        "source": "demo",
        "lookback_days": 1,
        "freshness_deadline": "19:30",
    },
    request_only=True,
)


class SyncScheduleListApi(SyncApiView):
    """GET: every schedule; POST: a new one."""

    required_permissions = {"GET": VIEW, "POST": ADD}

    @extend_schema(
        operation_id="sync_schedule_list",
        tags=[TAG],
        summary="List sync schedules",
        description="Schedules by name, each with its last run (job), its outcome and its next run time.",
        responses={200: SchedulePageEnvelope, **READ_ERRORS},
    )
    def get(self, request: Request) -> Response:
        return self.paginated(
            request,
            schedule_selectors.sync_schedule_list(),
            SyncScheduleOutputSerializer,
            schedule_selectors.sync_schedule_facts,
        )

    @extend_schema(
        operation_id="sync_schedule_create",
        tags=[TAG],
        summary="Create a sync schedule",
        description="Each tick of its cron starts a `latest` run of its source (docs/schedules.md).",
        request=SyncScheduleInputSerializer,
        examples=[EXAMPLE],
        responses={201: ScheduleEnvelope, **WRITE_ERRORS},
    )
    def post(self, request: Request) -> Response:
        serializer = SyncScheduleInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        schedule = services.sync_schedule_create(services.ScheduleSpec(**_spec_changes(serializer)))
        return _success(_schedule(schedule.name), 201)


class SyncScheduleDetailApi(SyncApiView):
    """GET, PATCH, DELETE one schedule by name."""

    required_permissions = {"GET": VIEW, "PATCH": CHANGE, "DELETE": DELETE}

    @extend_schema(
        operation_id="sync_schedule_detail",
        tags=[TAG],
        summary="A sync schedule",
        description="Its settings, its last run (job), the outcome and the next run time.",
        parameters=[NAME],
        responses={200: ScheduleEnvelope, **READ_ERRORS},
    )
    def get(self, request: Request, name: str) -> Response:
        return _success(_schedule(name))

    @extend_schema(
        operation_id="sync_schedule_update",
        tags=[TAG],
        summary="Change a sync schedule",
        description="Only the fields sent change; a new cron expression moves the next run time.",
        parameters=[NAME],
        request=SyncScheduleInputSerializer(partial=True),
        responses={200: ScheduleEnvelope, **WRITE_ERRORS},
    )
    def patch(self, request: Request, name: str) -> Response:
        serializer = SyncScheduleInputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        schedule = services.sync_schedule_update(name, _spec_changes(serializer))
        return _success(_schedule(schedule.name))

    @extend_schema(
        operation_id="sync_schedule_delete",
        tags=[TAG],
        summary="Remove a sync schedule",
        description="The jobs it started stay.",
        parameters=[NAME],
        responses={200: DeletedEnvelope, **WRITE_ERRORS},
    )
    def delete(self, request: Request, name: str) -> Response:
        services.sync_schedule_delete(name)
        return _success({"name": name})


class SyncScheduleActionApi(SyncApiView):
    """POST .../pause, /resume, /run-now."""

    action = "pause"
    required_permissions = {"POST": CHANGE}

    def post(self, request: Request, name: str) -> Response:
        SyncScheduleControlInputSerializer(data=request.data).is_valid(raise_exception=True)
        if self.action == "pause":
            services.sync_schedule_pause(name)
        elif self.action == "resume":
            services.sync_schedule_resume(name)
        else:
            run = services.sync_schedule_run_now(name)
            data = {
                "outcome": run.outcome,
                "job": run.job.task_id if run.job else None,
                "message": run.message,
                "schedule": _schedule(name),
            }
            return _success(data)
        return _success(_schedule(name))


def _action_view(action: str, summary: str, description: str) -> Any:
    """The view of one action, with its own schema entry."""

    def post(self: SyncScheduleActionApi, request: Request, name: str) -> Response:
        # A function of its own per action: extend_schema marks the function it decorates, so a
        # shared inherited `post` would carry the last action's schema for all three.
        return SyncScheduleActionApi.post(self, request, name)

    schema = extend_schema(
        operation_id=f"sync_schedule_{action.replace('-', '_')}",
        tags=[TAG],
        summary=summary,
        description=description,
        parameters=[NAME],
        request=SyncScheduleControlInputSerializer,
        responses={200: ScheduleRunEnvelope if action == "run-now" else ScheduleEnvelope, **WRITE_ERRORS},
    )
    view_class: type[SyncScheduleActionApi] = type(
        f"SyncSchedule{action.title().replace('-', '')}Api",
        (SyncScheduleActionApi,),
        {
            "action": action,
            "required_permissions": {"POST": RUN_NOW if action == "run-now" else CHANGE},
            "post": schema(post),
        },
    )
    return view_class.as_view()


sync_schedule_pause_view = _action_view("pause", "Pause a sync schedule", "It starts no run until resumed.")
sync_schedule_resume_view = _action_view(
    "resume",
    "Resume a sync schedule",
    "The next run is the cron expression's next time (missed ticks are not run).",
)
sync_schedule_run_now_view = _action_view(
    "run-now",
    "Run a sync schedule now",
    "Starts its `latest` run now by the tick's rules: skipped while its previous run is active, "
    "up to date when nothing is published since.",
)
