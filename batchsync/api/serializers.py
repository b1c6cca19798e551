"""Input and output serializers of the API."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from django.core.validators import RegexValidator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from rest_framework import serializers

from batchsync import bounds, services
from batchsync.api.fields import (
    IsoDateField,
    JsonBooleanField,
    JsonIntegerField,
    JsonScalarField,
    JsonStringField,
)
from batchsync.api.provenance import LoadedDayFieldsSerializer
from batchsync.exceptions import InvalidJobRequest
from batchsync.models import Reprocess, SkipReason, SyncDayStatus, SyncJobStatus

if TYPE_CHECKING:
    pass

# Fields the server owns: a client sending one of these gets a 400 that says so.
SERVER_OWNED_FIELDS = frozenset(
    {
        "task_id",
        "status",
        "total",
        "total_days",
        "current",
        "success",
        "failed",
        "skipped",
        "current_date",
        "message",
        "progress_percent",
        "start_time",
        "end_time",
        "duration_seconds",
        "estimated_completion",
        "errors",
        "rows_loaded",
        "requested_by",
        "created_time",
        "retry_of",
        "fence",
        "worker_id",
    }
)
# PostgreSQL text cannot hold NUL; DRF refuses it, and this says so in the schema (a pattern).
NO_NUL = RegexValidator(r"^[^\x00]*$", gettext_lazy("Null characters are not allowed."))


class StrictInputSerializer(serializers.Serializer[Any]):
    """Rejects fields it does not declare (400 naming each), so typos and server fields never pass."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping) and self.context.get("reject_unknown_fields", True):
            unknown = sorted(str(name) for name in data if name not in self.fields)
            if unknown:
                raise serializers.ValidationError(
                    {
                        name: [
                            _("This field is set by the server and cannot be sent")
                            if name in SERVER_OWNED_FIELDS
                            else _("Unknown field; allowed fields: %(fields)s")
                            % {"fields": ", ".join(self.fields)}
                        ]
                        for name in unknown
                    }
                )
        return super().to_internal_value(data)


class SyncJobStartInputSerializer(StrictInputSerializer):
    """Body of POST .../sync/batch: the seed's two dates plus batchsync's start options.

    `validated_data["job_request"]` is the `services.JobRequest`; every rule (force, path,
    range, bounds, source) is checked by `services.sync_request_build`, the one place that
    holds them; this serializer only parses types.
    """

    start_date = IsoDateField(help_text=gettext_lazy("First day to sync, YYYY-MM-DD."))
    end_date = IsoDateField(
        help_text=gettext_lazy(
            "Last day to sync, YYYY-MM-DD (inclusive; not after today; the range is capped by "
            "BATCHSYNC MAX_RANGE_DAYS)."
        )
    )
    source = JsonStringField(  # type: ignore[assignment]
        required=False,
        max_length=50,
        help_text=gettext_lazy("Data source name (see BATCHSYNC SOURCES); default: the configured default."),
    )
    source_options = serializers.DictField(
        child=JsonScalarField(),
        required=False,
        help_text=gettext_lazy('Options passed to the source, e.g. {"path": "/data/daily"} for csv.'),
    )
    path = JsonStringField(
        required=False,
        max_length=1000,
        help_text=gettext_lazy("Shortcut for source_options.path: the directory of the csv source."),
    )
    force = JsonBooleanField(
        required=False,
        default=False,
        help_text=gettext_lazy("Reload days that are already loaded (the same as reprocess=all)."),
    )
    reprocess = serializers.ChoiceField(
        choices=Reprocess.choices,
        required=False,
        help_text=gettext_lazy(
            "Which days load again: failed (default: failed and never-run days), all, "
            "none (only days never attempted)."
        ),
    )
    parallelism = JsonIntegerField(
        required=False,
        **bounds.PARALLELISM.limits,
        help_text=gettext_lazy(
            "Days loaded at once (workers on the cluster). Default: the server's "
            "BATCHSYNC_DEFAULT_PARALLELISM, else one per CPU, at most 4."
        ),
    )
    priority = JsonIntegerField(
        required=False,
        default=0,
        **bounds.PRIORITY.limits,
        help_text=gettext_lazy("Queue priority; a higher number runs first."),
    )
    queue = JsonBooleanField(
        required=False,
        default=False,
        help_text=gettext_lazy("Queue behind a running job instead of answering 409."),
    )
    dry_run = JsonBooleanField(
        required=False,
        default=False,
        help_text=gettext_lazy("Only return the plan (which days load, which skip and why); create nothing."),
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        try:
            # API and admin only: server paths stay under BATCHSYNC_FILE_ROOTS (confine_paths).
            attrs["job_request"] = services.sync_request_build(
                start_date=attrs["start_date"],
                end_date=attrs["end_date"],
                source=attrs.get("source"),
                source_options=attrs.get("source_options"),
                path=attrs.get("path"),
                force=attrs.get("force", False),
                reprocess=attrs.get("reprocess"),
                parallelism=attrs.get("parallelism"),
                priority=attrs.get("priority", 0),
                queue=attrs.get("queue", False),
            )
        except InvalidJobRequest as error:
            raise serializers.ValidationError({error.field: [error.message]}) from None
        return attrs

    def job_request(self, *, requested_by: str = "") -> services.JobRequest:
        """The validated request, stamped with who asked (call after `is_valid()`)."""
        request: services.JobRequest = self.validated_data["job_request"]
        if requested_by:
            request = dataclasses.replace(request, requested_by=requested_by)
        return request


class SyncJobRetryInputSerializer(StrictInputSerializer):
    """Body of POST .../batch/<task_id>/retry (optional)."""

    reprocess = serializers.ChoiceField(
        choices=Reprocess.choices,
        required=False,
        default=Reprocess.FAILED,
        help_text=gettext_lazy("Which days of the range load again (default: failed and never-run days)."),
    )
    queue = JsonBooleanField(
        required=False,
        default=False,
        help_text=gettext_lazy("Queue behind a running job instead of answering 409."),
    )


class SyncJobControlInputSerializer(StrictInputSerializer):
    """Body of POST .../cancel, /pause, /resume: nothing (an empty object or no body)."""


class PageFilterSerializer(StrictInputSerializer):
    """Query parameters of a plain paginated list."""

    page = serializers.IntegerField(required=False, min_value=1, help_text=gettext_lazy("Page number."))
    page_size = serializers.IntegerField(
        required=False, **bounds.PAGE_SIZE.limits, help_text=gettext_lazy("Items per page (at most 500).")
    )


class SyncJobListFilterSerializer(PageFilterSerializer):
    """Query parameters of GET .../sync/batch."""

    status = serializers.ChoiceField(
        choices=SyncJobStatus.choices, required=False, help_text=gettext_lazy("Only jobs in this status.")
    )
    source = serializers.CharField(  # type: ignore[assignment]
        required=False,
        max_length=50,
        trim_whitespace=False,
        validators=[NO_NUL],
        help_text=gettext_lazy("Only jobs of this source."),
    )
    date = IsoDateField(
        required=False, help_text=gettext_lazy("Only jobs whose range contains this day (YYYY-MM-DD).")
    )


class SyncDayListFilterSerializer(PageFilterSerializer):
    """Query parameters of GET .../batch/<task_id>/days."""

    status = serializers.ChoiceField(
        choices=SyncDayStatus.choices, required=False, help_text=gettext_lazy("Only days in this status.")
    )


# --- outputs ---------------------------------------------------------------------------


class SyncJobStartOutputSerializer(serializers.Serializer[Any]):
    """`data` of a started job, exactly the seed's three fields."""

    task_id = serializers.CharField(help_text=gettext_lazy("Stable id of the job (the seed's form)."))
    total_days = serializers.IntegerField(help_text=gettext_lazy("Calendar days in the range."))
    message = serializers.CharField(
        help_text=gettext_lazy(
            "What happened (started, or queued with queue=true), in the request's language."
        )
    )


class SyncDayPlanOutputSerializer(serializers.Serializer[Any]):
    date = serializers.DateField(help_text=gettext_lazy("The day."))
    action = serializers.ChoiceField(
        choices=[("load", "load"), ("skip", "skip")], help_text=gettext_lazy("load or skip.")
    )
    skip_reason = serializers.ChoiceField(
        choices=SkipReason.choices, help_text=gettext_lazy("Why the day is skipped (empty when loaded).")
    )
    loaded_from = serializers.CharField(
        allow_blank=True, help_text=gettext_lazy("The source whose rows the day holds (empty: none).")
    )


class SyncJobPlanOutputSerializer(serializers.Serializer[Any]):
    """`data` of a dry run: the plan, nothing created."""

    dry_run = JsonBooleanField(help_text=gettext_lazy("Always true: nothing was created."))
    total_days = serializers.IntegerField(help_text=gettext_lazy("Calendar days in the range."))
    to_load = serializers.IntegerField(help_text=gettext_lazy("Days that would load."))
    skipped = serializers.IntegerField(help_text=gettext_lazy("Days that would be skipped."))
    skipped_other_source = serializers.IntegerField(
        help_text=gettext_lazy("Of those, days another source loaded (force replaces them).")
    )
    message = serializers.CharField(help_text=gettext_lazy("Summary, in the request's language."))
    days = SyncDayPlanOutputSerializer(many=True, help_text=gettext_lazy("Every day of the range, in order."))


class SyncJobErrorItemOutputSerializer(serializers.Serializer[Any]):
    """One of the seed's recent errors."""

    date = serializers.DateField(allow_null=True, help_text=gettext_lazy("Day that failed."))
    error = serializers.CharField(help_text=gettext_lazy("What went wrong."))
    time = serializers.DateTimeField(help_text=gettext_lazy("When (ISO 8601 with time zone)."))


class LockBlockerOutputSerializer(serializers.Serializer[Any]):
    """A database session holding the lock a day waits for."""

    pid = serializers.IntegerField(help_text=gettext_lazy("Process id of the blocking session."))
    application_name = serializers.CharField(
        allow_blank=True, help_text=gettext_lazy("Its application name (a worker id, psql, ...).")
    )
    state = serializers.CharField(
        allow_blank=True, help_text=gettext_lazy("Its state, e.g. idle in transaction.")
    )
    transaction_seconds = serializers.FloatField(
        allow_null=True, help_text=gettext_lazy("How long its transaction has been open, in seconds.")
    )


class LockWaitOutputSerializer(serializers.Serializer[Any]):
    """A running day whose worker waits on a lock held by another session."""

    date = serializers.DateField(help_text=gettext_lazy("The day being loaded."))
    worker_id = serializers.CharField(help_text=gettext_lazy("The worker loading it."))
    pid = serializers.IntegerField(help_text=gettext_lazy("Process id of the waiting session."))
    waiting_seconds = serializers.FloatField(help_text=gettext_lazy("How long it has waited, in seconds."))
    lock = serializers.CharField(help_text=gettext_lazy("The lock it waits for, and on what."))
    blocking_pids = serializers.ListField(
        child=serializers.IntegerField(), help_text=gettext_lazy("Process ids of the sessions it waits for.")
    )
    blockers = LockBlockerOutputSerializer(many=True, help_text=gettext_lazy("Those sessions."))


class SyncJobProgressOutputSerializer(serializers.Serializer[Any]):
    """The seed's progress object (every field of its example) plus batchsync's own fields."""

    task_id = serializers.CharField(help_text=gettext_lazy("Stable id of the job."))
    status = serializers.ChoiceField(choices=SyncJobStatus.choices, help_text=gettext_lazy("Job status."))
    total = serializers.IntegerField(help_text=gettext_lazy("Calendar days in the range."))
    current = serializers.IntegerField(
        help_text=gettext_lazy("Days processed (succeeded + failed + skipped).")
    )
    success = serializers.IntegerField(help_text=gettext_lazy("Days loaded."))
    failed = serializers.IntegerField(help_text=gettext_lazy("Days that failed."))
    skipped = serializers.IntegerField(
        help_text=gettext_lazy("Days skipped (non-trading or already loaded).")
    )
    skipped_other_source = serializers.IntegerField(
        help_text=gettext_lazy("Of those, days another source loaded (force replaces them).")
    )
    current_date = serializers.DateField(
        allow_null=True, help_text=gettext_lazy("Day being loaded, or the last one claimed.")
    )
    message = serializers.CharField(
        help_text=gettext_lazy("The seed's one-line status, in the request's language.")
    )
    progress_percent = serializers.FloatField(
        help_text=gettext_lazy("current / total in percent, 1 decimal.")
    )
    start_time = serializers.DateTimeField(allow_null=True, help_text=gettext_lazy("When the job first ran."))
    end_time = serializers.DateTimeField(allow_null=True, help_text=gettext_lazy("When it finished."))
    duration_seconds = serializers.FloatField(
        allow_null=True, help_text=gettext_lazy("Running time without pauses, in seconds.")
    )
    estimated_completion = serializers.DateTimeField(
        allow_null=True, help_text=gettext_lazy("Estimated finish time while it runs.")
    )
    errors = SyncJobErrorItemOutputSerializer(  # type: ignore[assignment]
        many=True, help_text=gettext_lazy("The 10 most recent errors, newest first.")
    )
    start_date = serializers.DateField(help_text=gettext_lazy("First day of the range."))
    end_date = serializers.DateField(help_text=gettext_lazy("Last day of the range."))
    source = serializers.CharField(help_text=gettext_lazy("Data source name."))  # type: ignore[assignment]
    rows_loaded = serializers.IntegerField(help_text=gettext_lazy("Bars loaded by the job."))
    parallelism = serializers.IntegerField(help_text=gettext_lazy("Days loaded at once."))
    priority = serializers.IntegerField(help_text=gettext_lazy("Queue priority."))
    reprocess = serializers.ChoiceField(
        choices=Reprocess.choices, help_text=gettext_lazy("Which days were chosen to load again.")
    )
    requested_by = serializers.CharField(allow_blank=True, help_text=gettext_lazy("Who started the job."))
    created_time = serializers.DateTimeField(help_text=gettext_lazy("When the job was created."))
    retry_of = serializers.CharField(
        allow_null=True, help_text=gettext_lazy("Task id of the job this one retries.")
    )
    lock_waits = LockWaitOutputSerializer(
        many=True,
        help_text=gettext_lazy(
            "Days of the running job that wait on a lock another database session holds "
            "(e.g. a LOCK TABLE daily_bar left open); empty when none."
        ),
    )


class SyncDayOutputSerializer(LoadedDayFieldsSerializer):
    """The state of one day of a job."""

    date = serializers.DateField(help_text=gettext_lazy("The day."))
    status = serializers.ChoiceField(choices=SyncDayStatus.choices, help_text=gettext_lazy("Day status."))
    skip_reason = serializers.ChoiceField(
        choices=SkipReason.choices, help_text=gettext_lazy("Why it was skipped (empty otherwise).")
    )
    rows = serializers.IntegerField(help_text=gettext_lazy("Bars loaded for the day."))
    duration_seconds = serializers.FloatField(
        allow_null=True, help_text=gettext_lazy("Load time in seconds.")
    )
    attempts = serializers.IntegerField(help_text=gettext_lazy("Attempts so far."))
    last_error = serializers.CharField(
        allow_blank=True, help_text=gettext_lazy("The last error (empty if none).")
    )
    started_at = serializers.DateTimeField(
        allow_null=True, help_text=gettext_lazy("When the last attempt began.")
    )
    finished_at = serializers.DateTimeField(allow_null=True, help_text=gettext_lazy("When the day finished."))
    lock_wait = LockWaitOutputSerializer(
        allow_null=True,
        help_text=gettext_lazy(
            "While the day waits on a lock another database session holds: which, since when."
        ),
    )


class SyncErrorOutputSerializer(serializers.Serializer[Any]):
    """One failure of one attempt at one day: the message, file and line; never the traceback."""

    id = serializers.IntegerField(help_text=gettext_lazy("Error id."))
    date = serializers.DateField(allow_null=True, help_text=gettext_lazy("Day that failed."))
    error = serializers.CharField(help_text=gettext_lazy("What went wrong."))
    time = serializers.DateTimeField(source="created_at", help_text=gettext_lazy("When (ISO 8601)."))
    file = serializers.CharField(
        allow_blank=True, help_text=gettext_lazy("File the error points at, if any.")
    )
    line = serializers.IntegerField(allow_null=True, help_text=gettext_lazy("Line in that file, if known."))
    attempt = serializers.IntegerField(help_text=gettext_lazy("Which attempt at the day failed."))


class RunningJobOutputSerializer(serializers.Serializer[Any]):
    """The job holding the slot, in a refused start's 409 (`selectors.sync_job_slot_holder`)."""

    task_id = serializers.CharField(help_text=gettext_lazy("The blocking job's task id."))
    status = serializers.CharField(
        help_text=gettext_lazy("Its status (pending, running, pausing, cancelling).")
    )
    start_date = serializers.DateField(help_text=gettext_lazy("First day of its range."))
    end_date = serializers.DateField(help_text=gettext_lazy("Last day of its range."))
    source = serializers.CharField(help_text=gettext_lazy("Its data source."))  # type: ignore[assignment]
    processed_days = serializers.IntegerField(help_text=gettext_lazy("Days done so far."))
    total_days = serializers.IntegerField(help_text=gettext_lazy("Days in its range."))
    progress_percent = serializers.FloatField(help_text=gettext_lazy("Percent done."))
    worker_id = serializers.CharField(
        allow_null=True, help_text=gettext_lazy("Its last worker (host:pid:id).")
    )
    worker_last_seen = serializers.DateTimeField(
        allow_null=True, help_text=gettext_lazy("When that worker last renewed its lease.")
    )
    worker_last_seen_seconds_ago = serializers.FloatField(
        allow_null=True, help_text=gettext_lazy("Seconds since then.")
    )
    lease_expires_at = serializers.DateTimeField(
        allow_null=True, help_text=gettext_lazy("When its lease runs out unless a worker renews it.")
    )
    takeover_in_seconds = serializers.FloatField(
        allow_null=True,
        help_text=gettext_lazy(
            "Seconds until `batch_sync resume <task_id>` (or a rerun of its command) can take it "
            "over in the foreground; 0: now; null for a pausing or cancelling job."
        ),
    )
    ways_on = serializers.ListField(
        child=serializers.CharField(),
        help_text=gettext_lazy("How to go on: take it over, queue, or a cluster."),
    )


class ErrorEnvelopeSerializer(serializers.Serializer[Any]):
    """Every error response: the seed's envelope, plus per-field reasons on a 400."""

    status = serializers.ChoiceField(choices=[("error", "error")], help_text=gettext_lazy('Always "error".'))
    message = serializers.CharField(help_text=gettext_lazy("What went wrong, in the request's language."))
    errors = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text=gettext_lazy("On a 400: each offending field with its reasons."),
    )
    running_job = RunningJobOutputSerializer(
        required=False, help_text=gettext_lazy("On a refused start (409): the job holding the slot.")
    )
    request_id = serializers.CharField(
        required=False,
        help_text=gettext_lazy("On a 500: the id the server logged the failure under (also X-Request-ID)."),
    )
