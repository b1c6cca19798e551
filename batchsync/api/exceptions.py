"""The one place that turns errors into the seed's envelope `{"status": "error", "message": ...}`."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from batchsync.exceptions import (
    BatchSyncError,
    InvalidJobRequest,
    InvalidTransition,
    JobNotFound,
    ScheduleNotFound,
    SyncAlreadyRunning,
)


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


def _as_api_exception(error: Exception) -> Exception:
    """batchsync's own errors as the DRF exceptions that carry their HTTP status."""
    if isinstance(error, InvalidJobRequest):
        return exceptions.ValidationError({error.field: [error.message]})
    if isinstance(error, SyncAlreadyRunning | InvalidTransition):
        return Conflict(error.message)
    if isinstance(error, JobNotFound | ScheduleNotFound):
        return exceptions.NotFound(error.message)
    if isinstance(error, BatchSyncError):
        return exceptions.ValidationError(error.message)
    return error


def _field_errors(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """Flatten DRF's nested error detail to {"field" or "field.key": [reasons]}."""
    if isinstance(detail, dict):
        flat: dict[str, list[str]] = {}
        for name, value in detail.items():
            flat.update(_field_errors(value, f"{prefix}.{name}" if prefix else str(name)))
        return flat
    if isinstance(detail, list) and any(isinstance(item, dict | list) for item in detail):
        flat = {}
        for index, value in enumerate(detail):
            flat.update(_field_errors(value, f"{prefix}.{index}" if prefix else str(index)))
        return flat
    reasons = [str(item) for item in detail] if isinstance(detail, list) else [str(detail)]
    return {prefix or "non_field_errors": reasons}


def api_exception_handler(error: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, with batchsync's errors mapped and every body in the error envelope."""
    response = exception_handler(_as_api_exception(error), context)
    if response is None:
        return None
    if isinstance(response.data, dict) and set(response.data) == {"detail"}:
        response.data = {"status": "error", "message": str(response.data["detail"])}
        if isinstance(error, SyncAlreadyRunning) and error.facts:
            response.data["running_job"] = error.facts  # what the command's refusal says
        return response
    errors = _field_errors(response.data)
    message = "; ".join(
        reasons[0] if field in ("non_field_errors", "0") else f"{field}: {reasons[0]}"
        for field, reasons in errors.items()
    )
    response.data = {"status": "error", "message": message or _("Invalid request"), "errors": errors}
    return response
