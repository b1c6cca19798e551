"""Who may call the API: model permissions on SyncJob, and throttles for starts and control."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle

from batchsync.permissions import ADD_JOBS, CHANGE_JOBS, VIEW_JOBS

if TYPE_CHECKING:  # rest_framework.views imports the default permission classes (this module)
    from rest_framework.views import APIView

__all__ = ["ADD_JOBS", "CHANGE_JOBS", "VIEW_JOBS", "SyncJobPermission", "SyncJobWriteThrottle"]


class SyncJobPermission(BasePermission):
    """A logged-in user holding the model permissions the view lists for the request's method.

    Views declare `required_permissions = {"GET": (...), "POST": (...)}`; a method that is not
    listed is refused. Superusers hold every permission; staff get them through groups.
    """

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        required: dict[str, tuple[str, ...]] = getattr(view, "required_permissions", {})
        method = "GET" if request.method in ("HEAD", "OPTIONS") else str(request.method)
        if method not in required:
            return False
        return bool(user.has_perms(required[method]))


class SyncJobWriteThrottle(ScopedRateThrottle):
    """Scoped rate limit on starts and control, read from settings at request time.

    DRF's throttles copy `DEFAULT_THROTTLE_RATES` at import; reading it per request lets
    `override_settings` and the env-driven settings change the rates. Reads are not throttled.
    """

    def allow_request(self, request: Request, view: APIView) -> bool:
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return True
        return super().allow_request(request, view)

    def get_rate(self) -> str | None:
        rates: dict[str, Any] = api_settings.DEFAULT_THROTTLE_RATES
        rate = rates.get(self.scope or "")
        return str(rate) if rate else None
