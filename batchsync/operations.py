"""The operator operations (cancel, pause, resume, retry), defined once.

Each names its label in the pages, the service it calls and the permissions it needs; the admin's
actions and buttons, the API's control endpoints, the command and the job page all read them here.
Which operations a job's *status* allows is the services' transition table
(`services.sync_job_allowed_operations`); this module adds who may apply them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.utils.translation import gettext_lazy, gettext_noop

from batchsync import services
from batchsync.models import SyncJob
from batchsync.permissions import ADD_JOBS, CHANGE_JOBS

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User
    from django_stubs_ext import StrPromise

    AnyUser = User | AnonymousUser


@dataclass(frozen=True)
class Operation:
    """One operator operation: what it is called, what it calls, and who may apply it."""

    name: str  # marked with gettext_noop: services translate it in `InvalidTransition` messages
    label: StrPromise  # the job page's button
    action_label: StrPromise  # the admin list's action on the selected jobs
    description: str  # the API schema's description (the schema is in English)
    service: Callable[..., SyncJob]
    permissions: tuple[str, ...]
    creates_job: bool = False  # retry answers with a new job, requested by the user
    # The job page asks this (with the job's %(task_id)s) before applying it: a multi-hour job
    # must not stop on one stray click. None: applied at once.
    confirm_question: StrPromise | None = None

    def run(self, job: SyncJob, *, requested_by: str, **options: Any) -> SyncJob:
        """Call the service as `requested_by` (on the job's timeline); retry returns the new job."""
        return self.service(job, requested_by=requested_by, **options)

    @property
    def needs_confirmation(self) -> bool:
        return self.confirm_question is not None

    def label_for(self, job: SyncJob) -> StrPromise:
        """The button's label for this job: retry says what it loads (see `RETRY_FAILED_LABEL`)."""
        if self.name == "retry" and job.failed_days and not job.days_left:
            return RETRY_FAILED_LABEL
        return self.label

    def permitted(self, user: AnyUser) -> bool:
        """Whether the user holds every permission the operation needs."""
        return bool(user.has_perms(self.permissions))


# Retry loads the failed AND the never-run days: named so, unless only failed days are left.
RETRY_FAILED_LABEL = gettext_lazy("Retry failed days")

OPERATIONS: dict[str, Operation] = {
    operation.name: operation
    for operation in (
        Operation(
            name=gettext_noop("cancel"),
            label=gettext_lazy("Cancel"),
            action_label=gettext_lazy("Cancel selected jobs"),
            description="Cancel at once when nothing runs, else after the day in flight.",
            service=services.sync_job_cancel,
            permissions=(CHANGE_JOBS,),
            confirm_question=gettext_lazy(
                "Cancel job %(task_id)s? Its workers stop after the day in flight; the days loaded "
                "stay, and the others can be loaded later with a new job."
            ),
        ),
        Operation(
            name=gettext_noop("pause"),
            label=gettext_lazy("Pause"),
            action_label=gettext_lazy("Pause selected jobs"),
            description="Pause after the day in flight; workers are released.",
            service=services.sync_job_pause,
            permissions=(CHANGE_JOBS,),
        ),
        Operation(
            name=gettext_noop("resume"),
            label=gettext_lazy("Resume"),
            action_label=gettext_lazy("Resume selected jobs"),
            description="Continue a paused job from its first undone day.",
            service=services.sync_job_resume,
            permissions=(CHANGE_JOBS,),
        ),
        # Retry starts a new job (add) from an existing one the operator acts on (change).
        Operation(
            name=gettext_noop("retry"),
            label=gettext_lazy("Load remaining days"),
            action_label=gettext_lazy("Load remaining days of selected jobs"),
            description=(
                "Load remaining days: starts a new job over the same range and source; `reprocess` "
                "picks the days that load again (default: failed and never-run, so it also finishes "
                "a cancelled job). Answers with the NEW job in the progress shape."
            ),
            service=services.sync_job_retry,
            permissions=(ADD_JOBS, CHANGE_JOBS),
            creates_job=True,
        ),
    )
}


def operations_permitted(user: AnyUser) -> list[Operation]:
    """The operations the user may apply to some job (the buttons the job page can show)."""
    return [operation for operation in OPERATIONS.values() if operation.permitted(user)]


def operations_allowed(job: SyncJob, user: AnyUser) -> list[str]:
    """The operations this user may apply to this job now: its status allows them, and the user may."""
    return [name for name in services.sync_job_allowed_operations(job) if OPERATIONS[name].permitted(user)]
