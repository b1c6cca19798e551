"""Input serializers of the API: they parse and type the request; the services decide (outputs: `outputs`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

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
from batchsync.exceptions import InvalidJobRequest, SyncUpToDate
from batchsync.models import Reprocess, SyncDayStatus, SyncJobStatus

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


class QueueInputSerializer(StrictInputSerializer):
    """The queue options every job start takes (a sync job, a verify job, a retry)."""

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


class SyncJobStartInputSerializer(QueueInputSerializer):
    """Body of POST .../sync/batch: the seed's two dates plus batchsync's start options.

    `validated_data["job_request"]` is the `services.JobRequest`; every rule (force, path,
    range, bounds, source) is checked by `services.sync_request_build`, the one place that
    holds them; this serializer only parses types.
    """

    start_date = IsoDateField(
        required=False, help_text=gettext_lazy("First day to sync, YYYY-MM-DD (required unless latest).")
    )
    end_date = IsoDateField(
        required=False,
        help_text=gettext_lazy(
            "Last day to sync, YYYY-MM-DD (inclusive; not after today; the range is capped by "
            "BATCHSYNC MAX_RANGE_DAYS; required unless latest)."
        ),
    )
    latest = JsonBooleanField(
        required=False,
        default=False,
        help_text=gettext_lazy(
            "Compute the range instead of giving dates: from the day after the newest day loaded "
            "from the source to the latest trading day published by now. Nothing to load is a "
            "success with up_to_date=true."
        ),
    )
    lookback_days = JsonIntegerField(
        required=False,
        **bounds.LOOKBACK_DAYS.limits,
        help_text=gettext_lazy(
            "With latest: trading days before the newest loaded one reloaded (forced) with the new "
            "ones. Default: BATCHSYNC LATEST_LOOKBACK_DAYS."
        ),
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
    dry_run = JsonBooleanField(
        required=False,
        default=False,
        help_text=gettext_lazy("Only return the plan (which days load, which skip and why); create nothing."),
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs.get("latest"):  # the dates are required then, with DRF's own message
            missing = [name for name in ("start_date", "end_date") if attrs.get(name) is None]
            if missing:
                raise serializers.ValidationError(
                    {name: [self.fields[name].error_messages["required"]] for name in missing}
                )
        try:
            # API and admin only: server paths stay under BATCHSYNC_FILE_ROOTS (confine_paths).
            attrs["job_request"] = services.sync_request_build(
                start_date=attrs.get("start_date"),
                end_date=attrs.get("end_date"),
                latest=attrs.get("latest", False),
                lookback_days=attrs.get("lookback_days"),
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
        except SyncUpToDate as done:  # a success: the view answers with its message
            attrs["job_request"], attrs["up_to_date"] = None, done.message
        return attrs

    def job_request(self, *, requested_by: str = "") -> services.JobRequest:
        """The validated request, stamped with who asked (call after `is_valid()`)."""
        request: services.JobRequest | None = self.validated_data["job_request"]
        assert request is not None, "up to date: no request (see validated_data['up_to_date'])"
        if requested_by:
            request = dataclasses.replace(request, requested_by=requested_by)
        return request


class SyncJobRetryInputSerializer(QueueInputSerializer):
    """Body of POST .../batch/<task_id>/retry (optional)."""

    reprocess = serializers.ChoiceField(
        choices=Reprocess.choices,
        required=False,
        default=Reprocess.FAILED,
        help_text=gettext_lazy("Which days of the range load again (default: failed and never-run days)."),
    )
    priority = JsonIntegerField(
        required=False,
        allow_null=True,
        default=None,
        **bounds.PRIORITY.limits,
        help_text=gettext_lazy("Queue priority of the new job (default: the retried job's)."),
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
