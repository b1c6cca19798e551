"""One exception root for everything batchsync raises on purpose."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _


class BatchSyncError(Exception):
    """Root of batchsync's errors; `message` is safe to show to a user."""

    default_message: str = "batchsync error"

    def __init__(self, message: str | None = None) -> None:
        self.message = str(message if message is not None else self.default_message)
        super().__init__(self.message)


class SyncAlreadyRunning(BatchSyncError):
    """A job is already running and the caller did not ask to queue.

    `job_id` names the job holding the slot (when known) and `facts` says what it is doing
    (`selectors.sync_job_slot_holder`): the command prints them, the API's 409 carries them.
    """

    # Chinese by default (the seed's exact words come from the zh_Hans catalog).
    default_message = _("A sync job is already running")  # type: ignore[assignment]

    def __init__(
        self, message: str | None = None, *, job_id: int | None = None, facts: dict[str, Any] | None = None
    ) -> None:
        self.job_id = job_id
        self.facts = facts
        super().__init__(message)


class JobNotFound(BatchSyncError):
    """No job has this task id."""


class InvalidTransition(BatchSyncError):
    """The job's current status does not allow the requested operation."""


class InvalidJobRequest(BatchSyncError):
    """A job request is invalid; `field` names the offending input."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


class BrokerUnavailable(BatchSyncError):
    """The job is saved but the cluster's broker (Redis) could not be reached to hand it over."""


class LeaseLost(BatchSyncError):
    """This worker no longer owns the day (lease expired and reclaimed, or job stopped)."""


class DatabaseUnavailable(BatchSyncError):
    """The database stayed unreachable for the whole outage window; the worker stopped."""


class SourceError(BatchSyncError):
    """A data source could not deliver a day; `transient` errors are retried with backoff."""

    def __init__(
        self, message: str, *, transient: bool = False, file: str = "", line: int | None = None
    ) -> None:
        self.transient = transient
        self.file = file
        self.line = line
        super().__init__(message)


class SourceJobStop(SourceError):
    """The source can serve no day of the job (a refused token, a missing permission).

    The runner fails the job's remaining days with this one message instead of trying each.
    """

    def __init__(self, message: str, *, file: str = "") -> None:
        super().__init__(message, transient=False, file=file)


class LoadError(BatchSyncError):
    """A day's data was rejected by the loader; nothing of the day was written."""

    def __init__(self, message: str, *, file: str = "", line: int | None = None, column: str = "") -> None:
        self.file = file
        self.line = line
        self.column = column
        super().__init__(message)


class DataCheckFailed(LoadError):
    """An error-severity data check flagged rows of the day just copied; the day rolls back.

    `check` names the check, `count` the rows it flagged, `examples` up to 5 of them.
    """

    def __init__(
        self,
        message: str,
        *,
        check: str,
        count: int,
        examples: list[dict[str, Any]],
        file: str = "",
        line: int | None = None,
        column: str = "",
    ) -> None:
        self.check = check
        self.count = count
        self.examples = examples
        super().__init__(message, file=file, line=line, column=column)


class VerifyMismatch(BatchSyncError):
    """A verified day does not hold what was loaded (or its source sends something else now)."""


class SyncUpToDate(BatchSyncError):
    """`--latest` found nothing to load: a success for every caller, with this message."""


class ScheduleNotFound(BatchSyncError):
    """No sync schedule has this name."""


class AlertDeliveryError(BatchSyncError):
    """A channel could not deliver an alert; `retryable` errors (timeouts, 5xx) are tried again."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        self.retryable = retryable
        super().__init__(message)
