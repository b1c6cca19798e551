"""Output serializers of the API: the `data` of every answer, and the error envelope."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy
from rest_framework import serializers

from batchsync.api.fields import JsonBooleanField
from batchsync.api.finding_fields import DayFindingFieldsSerializer
from batchsync.api.provenance import LoadedDayFieldsSerializer
from batchsync.models import Reprocess, SkipReason, SyncDayStatus, SyncJobKind, SyncJobStatus, VerifyMode


class SyncJobStartOutputSerializer(serializers.Serializer[Any]):
    """`data` of a started job, exactly the seed's three fields."""

    task_id = serializers.CharField(help_text=gettext_lazy("Stable id of the job (the seed's form)."))
    total_days = serializers.IntegerField(help_text=gettext_lazy("Calendar days in the range."))
    message = serializers.CharField(
        help_text=gettext_lazy(
            "What happened (started, or queued with queue=true), in the request's language."
        )
    )


class SyncJobUpToDateOutputSerializer(serializers.Serializer[Any]):
    """`data` of a `latest` start with nothing to load: no job was created."""

    up_to_date = serializers.BooleanField(help_text=gettext_lazy("Always true: nothing was published since."))
    message = serializers.CharField(
        help_text=gettext_lazy(
            "The newest loaded day and the time it was checked, in the request's language."
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
        help_text=gettext_lazy(
            "The seed's figure: current / total in percent, 1 decimal (skipped days count as done: "
            "see load_percent)."
        )
    )
    days_to_load = serializers.IntegerField(
        help_text=gettext_lazy("Days the job loads: total minus skipped (non-trading, already loaded).")
    )
    days_loaded = serializers.IntegerField(help_text=gettext_lazy("Of those, days loaded so far."))
    load_percent = serializers.FloatField(
        help_text=gettext_lazy("days_loaded / days_to_load in percent, 1 decimal: the honest progress.")
    )
    load_summary = serializers.CharField(
        help_text=gettext_lazy(
            "The headline, in the request's language: loaded N of M to load, failed and skipped apart."
        )
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
    source = serializers.CharField(  # type: ignore[assignment]
        allow_blank=True, help_text=gettext_lazy("Data source name (empty for a verify job).")
    )
    kind = serializers.ChoiceField(
        choices=SyncJobKind.choices, help_text=gettext_lazy("sync (loads days) or verify (compares them).")
    )
    verify_mode = serializers.ChoiceField(
        choices=VerifyMode.choices,
        allow_blank=True,
        help_text=gettext_lazy("What a verify job compares days with (empty for a sync job)."),
    )
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
    queue_position = serializers.IntegerField(
        allow_null=True,
        help_text=gettext_lazy("A queued job's place in the queue (1: runs next); null otherwise."),
    )
    queue_length = serializers.IntegerField(
        allow_null=True, help_text=gettext_lazy("Jobs in the queue, when this one is queued; null otherwise.")
    )
    queued_behind = serializers.CharField(
        allow_null=True,
        help_text=gettext_lazy("Task id of the job holding the slot a queued job waits for; null otherwise."),
    )


class SyncDayOutputSerializer(LoadedDayFieldsSerializer, DayFindingFieldsSerializer):
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
