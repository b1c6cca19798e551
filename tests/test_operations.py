"""The operations registry: one entry per operator transition, with labels in both languages."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser, Permission, User
from django.utils.translation import override

from batchsync import dispatch, operations, services
from batchsync.models import SyncJobStatus
from tests.factories import SyncJobFactory


def test_every_transition_has_one_operation_and_every_operation_a_transition() -> None:
    assert list(operations.OPERATIONS) == list(services.TRANSITIONS)
    assert all(name == operation.name for name, operation in operations.OPERATIONS.items())


@pytest.mark.parametrize("name", list(operations.OPERATIONS))
def test_labels_exist_in_english_and_chinese(name: str) -> None:
    operation = operations.OPERATIONS[name]
    for label in (operation.label, operation.action_label):
        with override("en"):
            english = str(label)
        with override("zh-hans"):
            chinese = str(label)
        assert english and chinese and english != chinese, (english, chinese)


@pytest.mark.django_db
def test_allowed_operations_need_the_status_and_the_permissions() -> None:
    job = SyncJobFactory.create(status=SyncJobStatus.RUNNING)
    controller = User.objects.create_user("controller")
    controller.user_permissions.add(Permission.objects.get(codename="change_syncjob"))
    controller = User.objects.get(pk=controller.pk)  # a fresh permission cache
    assert operations.operations_allowed(job, controller) == ["cancel", "pause"]
    assert operations.operations_allowed(job, AnonymousUser()) == []
    assert [op.name for op in operations.operations_permitted(controller)] == ["cancel", "pause", "resume"]
    finished = SyncJobFactory.create(status=SyncJobStatus.FAILED)
    assert operations.operations_allowed(finished, controller) == []  # retry needs add too
    root = User.objects.create_superuser("root")
    assert operations.operations_allowed(finished, root) == ["retry"]


@pytest.mark.django_db(transaction=True)
@dispatch.handoff(foreground=True)
def test_run_calls_the_service_and_retry_answers_with_the_new_job_requested_by_the_user() -> None:
    job = SyncJobFactory.create(status=SyncJobStatus.FAILED, total_days=9)
    retried = operations.OPERATIONS["retry"].run(job, requested_by="alice")
    assert retried.pk != job.pk and retried.retry_of_id == job.pk and retried.requested_by == "alice"
    cancelled = operations.OPERATIONS["cancel"].run(retried, requested_by="alice")
    assert cancelled.pk == retried.pk and cancelled.status == SyncJobStatus.CANCELLED
