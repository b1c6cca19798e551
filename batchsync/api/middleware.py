"""Every answer under /api/ is the JSON envelope, whatever went wrong and wherever it did.

DRF's exception handler (batchsync.api.exceptions) shapes the errors it knows. This middleware
catches the rest: an unexpected exception in a view (500, logged here with a request id, never
shown), a body over DATA_UPLOAD_MAX_MEMORY_SIZE (413), and any non-JSON error page Django or
another middleware produced (a 400 for a bad Host, a CSRF 403, ...).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from http import HTTPStatus

from django.conf import settings
from django.core.exceptions import BadRequest, PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _

logger = logging.getLogger("batchsync.api")

API_PREFIX = "/api/"
REQUEST_ID_HEADER = "X-Request-ID"


def request_id_of(request: HttpRequest) -> str:
    """The id of this request: in the `X-Request-ID` answer header and in the server's log."""
    request_id = getattr(request, "batchsync_request_id", "")
    if not request_id:
        request_id = uuid.uuid4().hex
        setattr(request, "batchsync_request_id", request_id)  # noqa: B010 - HttpRequest has no slot for it
    return str(request_id)


def error_envelope(status: int, message: str, request_id: str = "") -> JsonResponse:
    """`{"status": "error", "message": ...}` (with `request_id` on a 500) as a response."""
    body: dict[str, str] = {"status": "error", "message": message}
    if status >= 500 and request_id:
        body["request_id"] = request_id
    return JsonResponse(body, status=status, json_dumps_params={"ensure_ascii": False})


def body_too_large() -> JsonResponse:
    return error_envelope(
        HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
        _("The request body is too large (at most %(max)s bytes)")
        % {"max": settings.DATA_UPLOAD_MAX_MEMORY_SIZE},
    )


def server_error(request: HttpRequest, error: BaseException | None = None) -> JsonResponse:
    """A 500 in the envelope; the traceback goes to the log under the request id, not to the client."""
    request_id = request_id_of(request)
    if error is not None:
        logger.error(
            "request_id=%s %s %s failed",
            request_id,
            request.method,
            request.path,
            exc_info=(type(error), error, error.__traceback__),
        )
    return error_envelope(
        HTTPStatus.INTERNAL_SERVER_ERROR,
        _("Internal server error; quote request id %(id)s when reporting it") % {"id": request_id},
        request_id,
    )


def _status_message(status: int) -> str:
    """A short, translated message for an error page Django or a middleware made."""
    messages = {400: _("Bad request"), 403: _("Forbidden"), 404: _("Not found")}
    if status in messages:
        return messages[status]
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return str(status)


def _is_json(response: HttpResponse) -> bool:
    return str(response.get("Content-Type", "")).startswith("application/json")


class ApiEnvelopeMiddleware:
    """Keeps /api/ answers in the envelope; first in MIDDLEWARE so it sees every other layer's answer."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(API_PREFIX):
            return self.get_response(request)
        request_id = request_id_of(request)
        response = self.get_response(request)
        if response.status_code >= 400 and not _is_json(response):
            response = self._as_envelope(request, response)
        response[REQUEST_ID_HEADER] = request_id
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """A view's unexpected exception: 413 for a body too large, else a logged 500."""
        if not request.path.startswith(API_PREFIX):
            return None
        if isinstance(exception, RequestDataTooBig):
            return body_too_large()
        if isinstance(exception, Http404 | PermissionDenied | SuspiciousOperation | BadRequest):
            return None  # Django answers these (404, 403, 400); `__call__` puts them in the envelope
        return server_error(request, exception)

    def _as_envelope(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        status = response.status_code
        if status >= 500:
            logger.error(
                "request_id=%s %s %s answered %s",
                request_id_of(request),
                request.method,
                request.path,
                status,
            )
            enveloped = server_error(request)
        else:
            enveloped = error_envelope(status, _status_message(status))
        for header in ("Allow", "WWW-Authenticate", "Retry-After"):
            if header in response:
                enveloped[header] = response[header]
        return enveloped
